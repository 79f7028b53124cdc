// linux.resources through the runtime, and pause/resume/update/events/ps/kill --all
// (issue: cgroups). Runs on this host's cgroup layout (v1 or hybrid here).
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';
import { until } from '../../test/helpers/until.js';

const v1 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') || existsSync('/sys/fs/cgroup/memory');

t.test('resources, pause/resume, update, events, ps and kill --all', { skip: !v1 && 'needs cgroup v1 controllers' }, async (t) => {
  const { root, cleanup } = makeRoot();
  const id = uniqueId('cg');
  const b = makeBundle((s) => {
    s.process!.args = ['sh', '-c', 'sleep 1000 & sleep 1000 & wait'];
    s.linux!.cgroupsPath = `/lxr-test/${id}`;
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 30 }, cpu: { shares: 512 } };
  });
  t.teardown(() => (runtime(root, ['delete', '-f', id]), b.cleanup(), cleanup()));
  t.equal(runtime(root, ['run', '-d', '-b', b.dir, id]).status, 0);
  const cg = (ctrl: string, file: string) => readFileSync(`/sys/fs/cgroup/${ctrl}/lxr-test/${id}/${file}`, 'utf8').trim();
  t.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024), 'linux.resources.memory.limit');
  t.equal(cg('pids', 'pids.max'), '30', 'linux.resources.pids.limit');
  t.equal(cg('cpu', 'cpu.shares'), '512', 'linux.resources.cpu.shares');

  const pids = JSON.parse(runtime(root, ['ps', '-f', 'json', id]).stdout) as number[];
  t.equal(pids.length, 3, 'ps -f json lists the init and its two children');
  t.match(runtime(root, ['ps', id]).stdout, /^UID\s+PID\s+PPID/);

  t.equal(runtime(root, ['pause', id]).status, 0);
  t.equal(JSON.parse(runtime(root, ['state', id]).stdout).status, 'paused');
  t.equal(cg('freezer', 'freezer.state'), 'FROZEN');
  const r = runtime(root, ['pause', id]);
  t.match(r.stderr, /cannot pause container .*: it is paused, not running/);
  t.equal(runtime(root, ['resume', id]).status, 0);
  t.equal(JSON.parse(runtime(root, ['state', id]).stdout).status, 'running');

  t.equal(runtime(root, ['update', '--memory', '128m', '--pids-limit', '40', id]).status, 0);
  t.equal(cg('memory', 'memory.limit_in_bytes'), String(128 * 1024 * 1024), 'update --memory');
  t.equal(cg('pids', 'pids.max'), '40', 'update --pids-limit');
  t.equal(runtime(root, ['update', '--pids-limit', '0', id]).status, 0);
  t.equal(cg('pids', 'pids.max'), '40', 'update --pids-limit 0 changes nothing, as in runc');
  const bad = runtime(root, ['update', '--memory', 'lots', id]);
  t.not(bad.status, 0);
  t.match(bad.stderr, /--memory: invalid size "lots"/);

  const ev = JSON.parse(runtime(root, ['events', '--stats', id]).stdout);
  t.equal(ev.type, 'stats');
  t.equal(ev.id, id);
  t.equal(ev.data.pids.current, 3, 'events --stats counts the processes');
  t.equal(ev.data.memory.usage.limit, 128 * 1024 * 1024);

  t.equal(runtime(root, ['kill', '--all', id, 'KILL']).status, 0);
  t.ok(await until(() => JSON.parse(runtime(root, ['state', id]).stdout).status === 'stopped', 15000), 'kill --all stopped everything');
  t.same(pids.filter((p) => existsSync(`/proc/${p}/cmdline`) && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep')), [], 'no process of the container is left');
  t.equal(runtime(root, ['delete', id]).status, 0);
  t.notOk(existsSync(`/sys/fs/cgroup/memory/lxr-test/${id}`), 'delete removed the cgroup');
});

t.test('a memory limit is enforced: the OOM killer kills the container\'s allocator', { skip: !v1 && 'needs cgroup v1 controllers' }, async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sh', '-c', 'head -c 300m /dev/zero | tail > /dev/null; echo status $?'];
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('oom')]);
  t.equal(r.stdout, 'status 137\n', 'the process holding 300 MB was killed with SIGKILL');
});

t.test('a pids limit stops a fork bomb', { skip: !v1 && 'needs cgroup v1 controllers' }, async (t) => {
  const { root, cleanup } = makeRoot();
  const script = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; echo all forked';
  const limited = makeBundle((s) => {
    s.process!.args = ['sh', '-c', script];
    s.linux!.resources = { ...s.linux!.resources, pids: { limit: 5 } };
  });
  const free = makeBundle((s) => (s.process!.args = ['sh', '-c', script]));
  t.teardown(() => (limited.cleanup(), free.cleanup(), cleanup()));
  const ok = runtime(root, ['run', '-b', free.dir, uniqueId('nopids')]);
  t.equal(ok.stdout, 'all forked\n', 'without a limit, twelve forks work');
  const r = runtime(root, ['run', '-b', limited.dir, uniqueId('pids')]);
  t.notMatch(r.stdout, /all forked/, 'with pids.limit 5 they do not');
  t.match(r.stderr, /can't fork|Resource temporarily unavailable/);
});

t.test('bad cgroup input fails create cleanly', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.linux!.cgroupsPath = '/lxr-test/../../escape'));
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('esc')]);
  t.not(r.status, 0);
  t.match(r.stderr, /cgroupsPath/);
  const neg = makeBundle((s) => (s.linux!.resources = { memory: { limit: -5 } }));
  t.teardown(neg.cleanup);
  const r2 = runtime(root, ['create', '-b', neg.dir, uniqueId('neg')]);
  t.not(r2.status, 0);
  t.match(r2.stderr, /linux\.resources\.memory\.limit/);
});
