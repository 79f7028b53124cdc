// `kill --all` and `delete` on a stopped container whose cgroup still holds processes
// (issue 13): a container in a pid namespace shared with a "sandbox" container (as a CRI
// pod with shareProcessNamespace) whose init exits while a child it started with setsid
// lives on. containerd's shim sends `kill --all ID 9` whenever such an init exits and
// waits for the cgroup to empty; runc signals what is left and exits 0.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';
import { haveBusybox } from './helpers/bundle.js';
import { until } from '../../test/helpers/until.js';

const alive = (pid: number): boolean => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !'ZX'.includes(s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
};

/** A sandbox holding a pid namespace, and a stopped container in it whose child lives on. */
async function leftover(t: Test) {
  const { root, cleanup } = makeRoot();
  const sandbox = makeBundle((s) => (s.process!.args = ['sleep', '1000']));
  const sid = uniqueId('sandbox');
  const id = uniqueId('left');
  const b = makeBundle((s) => {
    s.process!.args = ['sh', '-c', 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/go ]; do sleep 0.05; done'];
  });
  t.teardown(() => {
    runtime(root, ['delete', '-f', id]);
    runtime(root, ['delete', '-f', sid]);
    b.cleanup();
    sandbox.cleanup();
    cleanup();
  });
  t.equal(runtime(root, ['run', '-d', '-b', sandbox.dir, sid]).status, 0, 'the sandbox runs');
  const spid = JSON.parse(runtime(root, ['state', sid]).stdout).pid as number;
  const config = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
  config.linux.namespaces = config.linux.namespaces.map((n: { type: string }) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${spid}/ns/pid` } : n));
  writeFileSync(join(b.dir, 'config.json'), JSON.stringify(config));
  const r = runtime(root, ['run', '-d', '-b', b.dir, id]);
  t.equal(r.status, 0, `the container runs in the sandbox's pid namespace: ${r.stderr}`);
  // the child as the host sees it: in the container's cgroup, beside the init
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const sleeper = (): number | undefined => (JSON.parse(runtime(root, ['ps', '--format', 'json', id]).stdout || '[]') as number[]).find((p) => cmdline(p) === 'sleep\u00001000\u0000');
  t.ok(await until(() => sleeper() !== undefined), 'the init started its child');
  const child = sleeper()!;
  writeFileSync(join(b.rootfs, 'tmp', 'go'), '');
  t.equal(await waitForStatus(root, id, 'stopped'), 'stopped', 'the init exited');
  t.ok(alive(child), 'its child lives on');
  return { root, id, child };
}

t.test('kill and delete on a stopped container with processes left', { skip: process.getuid?.() !== 0 ? 'needs root' : !haveBusybox ? 'needs busybox-static' : false }, async (t) => {
  t.test('kill --all ID 9 signals what is left and exits 0', async (t) => {
    const c = await leftover(t);
    const plain = runtime(c.root, ['kill', c.id, '9']);
    t.not(plain.status, 0, 'kill without --all still refuses a stopped container (runc too)');
    t.match(plain.stderr, /not running/);
    const r = runtime(c.root, ['kill', '--all', c.id, '9']);
    t.same([r.status, r.stderr], [0, ''], 'kill --all exits 0');
    t.ok(await until(() => !alive(c.child)), 'the child is gone');
    const again = runtime(c.root, ['kill', '--all', c.id, '9']);
    t.same([again.status, again.stderr], [0, ''], 'and again, with nothing left, exits 0');
    const d = runtime(c.root, ['delete', c.id]);
    t.same([d.status, d.stderr], [0, ''], 'delete removes it');
  });

  t.test('delete --force kills what is left and removes the cgroup', async (t) => {
    const c = await leftover(t);
    const cgroupFile = `/proc/${c.child}/cgroup`;
    const cgroupLine = readFileSync(cgroupFile, 'utf8').split('\n').find((l) => /:pids:/.test(l));
    const d = runtime(c.root, ['delete', '--force', c.id]);
    t.same([d.status, d.stderr], [0, ''], 'delete --force exits 0');
    t.notOk(alive(c.child), 'the child is gone');
    t.notOk(existsSync(join(c.root, c.id)), 'no state left');
    if (cgroupLine) {
      const dir = join('/sys/fs/cgroup/pids', cgroupLine.split(':')[2]!);
      t.notOk(existsSync(dir), `the cgroup ${dir} is removed`);
    }
  });
});
