// linux.resources.cpu.realtimeRuntime on cgroup v1: the container's parent cgroups get the
// realtime budget their children need (they start with none), so the write does not fail
// with EINVAL. Runs in a parent cgroup the test makes and removes.
import t from 'tap';
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, haveBusybox, waitForStatus } from './helpers/bundle.js';

const CPU = '/sys/fs/cgroup/cpu';
const rt = existsSync(join(CPU, 'cpu.rt_runtime_us'));
const skip = process.getuid?.() !== 0 ? 'needs root' : !haveBusybox ? 'needs busybox' : !rt ? 'needs cgroup v1 cpu with RT group scheduling' : false;

const read = (dir: string, f: string) => Number(readFileSync(join(dir, f), 'utf8').trim());

t.test('realtimeRuntime under a parent cgroup without a budget', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  const parent = `lxr-rt-test-${process.pid}`;
  const ids = [uniqueId('rt'), uniqueId('rt')];
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '30'];
    s.linux!.resources = { ...s.linux!.resources, cpu: { realtimeRuntime: 10000, realtimePeriod: 1000000 } };
  });
  t.teardown(() => {
    for (const id of ids) runtime(root, ['delete', '-f', id]);
    for (const e of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      for (const d of [...ids.map((id) => join('/sys/fs/cgroup', e.name, parent, id)), join('/sys/fs/cgroup', e.name, parent)]) {
        try {
          rmdirSync(d);
        } catch {
          /* not there */
        }
      }
    }
    b.cleanup();
    cleanup();
  });
  for (const [i, id] of ids.entries()) {
    const cfgPath = join(b.dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.linux.cgroupsPath = `/${parent}/${id}`;
    (await import('node:fs')).writeFileSync(cfgPath, JSON.stringify(cfg));
    const r = runtime(root, ['run', '-d', '-b', b.dir, id]);
    t.equal(r.status, 0, `container ${i + 1}: ${r.stderr}`);
    t.equal(await waitForStatus(root, id, 'running'), 'running');
    t.equal(read(join(CPU, parent, id), 'cpu.rt_runtime_us'), 10000, `container ${i + 1} has its budget`);
    t.equal(read(join(CPU, parent), 'cpu.rt_runtime_us'), 10000 * (i + 1), `the parent has the sum of its children's budgets`);
  }
});
