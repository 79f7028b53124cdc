// Faults in the runtime's own state: nothing a crash or a full disk does to a state file
// may hide a running container or let `delete -f` claim it removed one that still runs.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, rmdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';
import { resolveCgroupPaths } from '../cgroups/manager/index.js';
import { isZombieOrGone } from '../container/processes.js';
import { until } from '../../test/helpers/until.js';

/** Wait for a condition, with a deadline; no sleeps for synchronisation. */
t.test('a config without process.user runs as uid 0, gid 0 (as runc)', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    delete (s.process as unknown as Record<string, unknown>).user;
    s.process!.args = ['sh', '-c', 'echo $(id -u):$(id -g)'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('nouser')]);
  t.equal(r.stderr, '');
  t.equal(r.status, 0);
  t.equal(r.stdout, '0:0\n');
});

/** A started container running sleep, and its init pid. */
function startSleeper(t: Test, id: string, edit?: Parameters<typeof makeBundle>[0]) {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '1000'];
    edit?.(s);
  });
  let r = runtime(root, ['create', '-b', b.dir, id]);
  t.equal(r.status, 0, r.stderr);
  r = runtime(root, ['start', id]);
  t.equal(r.status, 0, r.stderr);
  const st = JSON.parse(runtime(root, ['state', id]).stdout);
  const stateFile = join(root, id, 'state.json');
  return { root, b, id, pid: st.pid as number, stateFile, cleanup: () => (b.cleanup(), cleanup()) };
}

t.test('a truncated state.json: list reports it, state names it, delete -f kills through the cgroup', async (t) => {
  const c = startSleeper(t, uniqueId('torn'));
  t.teardown(() => {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
    c.cleanup();
  });
  // a torn write: the first bytes only, as after a crash or a full disk
  truncateSync(c.stateFile, 8);

  const list = runtime(c.root, ['list']);
  t.equal(list.status, 0);
  t.match(list.stderr, new RegExp(`load container ${c.id}: .*state\\.json`), 'list says which container it could not load');

  const st = runtime(c.root, ['state', c.id]);
  t.not(st.status, 0);
  t.match(st.stderr, `container "${c.id}"`);
  t.match(st.stderr, c.stateFile, 'state names the bad file');

  const cg = resolveCgroupPaths({ id: c.id });
  const r = runtime(c.root, ['delete', '-f', c.id]);
  t.equal(r.status, 0, r.stderr);
  t.ok(await until(() => isZombieOrGone(c.pid), 5000), 'the container process was killed');
  t.notOk(existsSync(join(c.root, c.id)), 'the state dir is gone');
  for (const d of new Set(Object.values(cg.dirs))) t.notOk(existsSync(d), `no cgroup left: ${d}`);
});

t.test('a state.json torn after the pid: delete -f kills the init it names, even outside the default cgroup', async (t) => {
  const id = uniqueId('torn');
  const cgroupsPath = `/lxr-faults/x-${id}`;
  const c = startSleeper(t, id, (s) => (s.linux!.cgroupsPath = cgroupsPath));
  const cg = resolveCgroupPaths({ id: c.id, cgroupsPath });
  t.teardown(() => {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    c.cleanup();
    runtimeCleanupCgroup(cg.dirs);
  });
  const text = readFileSync(c.stateFile, 'utf8');
  // keep everything up to the config: pid and pidStartTime survive, the cgroup does not
  writeFileSync(c.stateFile, text.slice(0, text.indexOf('"config"') + 3));
  const r = runtime(c.root, ['delete', '-f', c.id]);
  t.equal(r.status, 0, r.stderr);
  t.ok(await until(() => isZombieOrGone(c.pid), 5000), 'the init was killed');
  t.notOk(existsSync(join(c.root, c.id)));
  // the file no longer names the cgroup: the init's own cgroup was found through /proc
  for (const d of new Set(Object.values(cg.dirs))) t.notOk(existsSync(d), `no cgroup left: ${d}`);
});

t.test('nothing recoverable: delete -f fails, says what is left and keeps the state dir', async (t) => {
  const id = uniqueId('torn');
  const cgroupsPath = `/lxr-faults/x-${id}`;
  const c = startSleeper(t, id, (s) => (s.linux!.cgroupsPath = cgroupsPath));
  const cg = resolveCgroupPaths({ id: c.id, cgroupsPath });
  t.teardown(() => {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    c.cleanup();
  });
  writeFileSync(c.stateFile, '');
  const r = runtime(c.root, ['delete', '-f', c.id]);
  t.not(r.status, 0, 'delete -f does not claim success');
  t.match(r.stderr, c.stateFile);
  t.match(r.stderr, /may still run/);
  t.match(r.stderr, join(c.root, c.id));
  t.ok(existsSync(join(c.root, c.id)), 'the state dir is kept, so the container is still listed');
  t.match(runtime(c.root, ['list']).stderr, `load container ${c.id}`);
  // the test cleans up what it made
  process.kill(c.pid, 'SIGKILL');
  t.ok(await until(() => isZombieOrGone(c.pid), 5000));
  runtimeCleanupCgroup(cg.dirs);
});

function runtimeCleanupCgroup(dirs: Record<string, string>): void {
  for (const d of new Set(Object.values(dirs))) {
    for (const p of [d, join(d, '..')]) {
      try {
        if (existsSync(p)) rmdirSync(p);
      } catch {
        /* the parent may be shared */
      }
    }
  }
}
