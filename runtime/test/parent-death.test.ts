// A runtime killed in the middle of `create` (kill -9 of lxr-runtime, of the lxr launcher,
// of containerd's shim) must not leave the container's half-made init behind: the init waits
// for the runtime at each sync point, and must see the runtime's end of the channel close.
// What the killed create had made by then (its cgroups, in every hierarchy) is not in a
// state.json, which comes last: `delete -f` must still find it and remove it.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME, cleanEnv, haveBusybox, makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

const alive = (pid: number) => spawnSync('kill', ['-0', String(pid)]).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONTROLLERS = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd', 'unified'];

t.test('kill -9 of lxr-runtime create while a hook runs: the waiting init exits, and delete -f removes its cgroups', { skip: haveBusybox ? false : 'busybox is needed' }, async (t) => {
  const { root, cleanup } = makeRoot();
  const id = uniqueId('orphan');
  let out = '';
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '100'];
    s.linux!.cgroupsPath = `/lxr-test-orphan/${id}`;
    // the createRuntime hook runs while the init waits at a sync point: it records the state
    // (with the init's pid) and its own pid, then sleeps until the test kills it
    s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > "$OUT/state.json"; echo $$ > "$OUT/hook.pid"; exec sleep 60'], env: ['PATH=/bin:/usr/bin'] }] };
  });
  out = b.dir;
  const cfgPath = join(out, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.hooks.createRuntime[0].env.push(`OUT=${out}`);
  (await import('node:fs')).writeFileSync(cfgPath, JSON.stringify(cfg));
  t.teardown(() => {
    if (existsSync(join(out, 'hook.pid'))) spawnSync('kill', ['-9', readFileSync(join(out, 'hook.pid'), 'utf8').trim()]);
    for (const c of CONTROLLERS) {
      for (const d of [`/sys/fs/cgroup/${c}/lxr-test-orphan/${id}`, `/sys/fs/cgroup/${c}/lxr-test-orphan`]) {
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

  const rt = spawn(process.execPath, [RUNTIME, '--root', root, 'create', '-b', out, id], { env: cleanEnv(), stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(join(out, 'hook.pid')); i++) await sleep(25);
  t.ok(existsSync(join(out, 'hook.pid')), 'the hook runs, so the init waits for the runtime');
  const init = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')).pid as number;
  t.ok(init > 0 && alive(init), `the init (${init}) is alive while the runtime runs the hook`);
  rt.kill('SIGKILL');
  await new Promise((r) => rt.once('exit', r));
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    // it is reparented; a zombie is gone as far as the container is concerned
    const st = existsSync(`/proc/${init}/stat`) ? readFileSync(`/proc/${init}/stat`, 'utf8').split(') ')[1]?.[0] : undefined;
    gone = st === undefined || st === 'Z';
    if (!gone) await sleep(20);
  }
  t.ok(gone, 'with the runtime gone, the init sees its channel close and exits');

  // the create died after making the cgroups (the hook runs after them) and before state.json
  const cgroups = () => CONTROLLERS.map((c) => `/sys/fs/cgroup/${c}/lxr-test-orphan/${id}`).filter((d) => existsSync(d));
  t.ok(cgroups().length > 0, `the killed create left its cgroups: ${cgroups().join(' ')}`);
  t.notOk(existsSync(join(root, id, 'state.json')), 'and no state.json');
  const del = runtime(root, ['delete', '-f', id]);
  t.equal(del.status, 0, `delete -f succeeds: ${del.stderr}`);
  t.same(cgroups(), [], 'delete -f removed the cgroups the killed create had made');
  t.notOk(existsSync(join(root, id)), 'and its state directory');
});
