// `exec`: a new process in a running container, with runc's flags.
import t from 'tap';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

function running(edit?: Parameters<typeof makeBundle>[0]) {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.hostname = 'exechost';
    s.process!.args = ['sleep', '1000'];
    s.process!.env = ['PATH=/bin', 'FROM_CONFIG=yes'];
    edit?.(s);
  });
  const id = uniqueId('exec');
  const r = runtime(root, ['run', '-d', '-b', b.dir, id]);
  return {
    root, b, id, started: r,
    done: () => {
      runtime(root, ['delete', '-f', id]);
      b.cleanup();
      cleanup();
    },
  };
}

t.test('exec joins the container and propagates the exit code', async (t) => {
  const c = running();
  t.teardown(c.done);
  t.equal(c.started.status, 0, c.started.stderr);
  const r = runtime(c.root, ['exec', c.id, 'sh', '-c', 'echo $(hostname) $FROM_CONFIG; readlink /proc/self/ns/pid; exit 3']);
  t.equal(r.status, 3);
  const [host, ns] = r.stdout.trim().split('\n');
  t.equal(host, 'exechost yes', 'the container\'s uts namespace and config env');
  const init = JSON.parse(runtime(c.root, ['state', c.id]).stdout).pid;
  t.equal(ns, readlinkSync(`/proc/${init}/ns/pid`), 'the container\'s pid namespace');
  const cg = runtime(c.root, ['exec', c.id, 'cat', '/proc/self/cgroup']);
  t.match(cg.stdout, new RegExp(`memory:/lxr/${c.id}\\n`), 'the container\'s cgroup');
});

t.test('--user, --cwd, --env, --additional-gids', async (t) => {
  const c = running();
  t.teardown(c.done);
  const r = runtime(c.root, ['exec', '-u', '1000:1001', '-g', '7', '--cwd', '/tmp', '-e', 'FOO=bar', '-e', 'FROM_CONFIG=over', c.id, 'sh', '-c', 'id -u; id -g; id -G; pwd; echo $FOO $FROM_CONFIG']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '1000\n1001\n1001 7\n/tmp\nbar over\n');
});

t.test('--process takes a process.json', async (t) => {
  const c = running();
  t.teardown(c.done);
  const file = join(c.b.dir, 'process.json');
  writeFileSync(file, JSON.stringify({ args: ['sh', '-c', 'echo from json $X'], env: ['PATH=/bin', 'X=1'], cwd: '/', user: { uid: 0, gid: 0 } }));
  const r = runtime(c.root, ['exec', '--process', file, c.id]);
  t.equal(r.stdout, 'from json 1\n', r.stderr);
});

t.test('--detach with --pid-file starts the process and returns', async (t) => {
  const c = running();
  t.teardown(c.done);
  const pidFile = join(c.b.dir, 'exec.pid');
  const r = runtime(c.root, ['exec', '-d', '--pid-file', pidFile, c.id, 'sh', '-c', 'sleep 0.2; echo detached > /tmp/d']);
  t.equal(r.status, 0, r.stderr);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.ok(pid > 0 && existsSync(`/proc/${pid}`), 'the pid file names a live process');
  for (let i = 0; i < 100 && !existsSync(join(c.b.rootfs, 'tmp', 'd')); i++) await new Promise((res) => setTimeout(res, 20));
  t.equal(readFileSync(join(c.b.rootfs, 'tmp', 'd'), 'utf8'), 'detached\n');
});

t.test('exec into a paused or stopped container fails clearly', async (t) => {
  const c = running();
  t.teardown(c.done);
  t.equal(runtime(c.root, ['pause', c.id]).status, 0);
  let r = runtime(c.root, ['exec', c.id, 'true']);
  t.not(r.status, 0);
  t.match(r.stderr, /cannot exec in container .*: it is paused/);
  runtime(c.root, ['resume', c.id]);
  runtime(c.root, ['kill', c.id, 'KILL']);
  await waitForStatus(c.root, c.id, 'stopped');
  r = runtime(c.root, ['exec', c.id, 'true']);
  t.match(r.stderr, /cannot exec in container .*: it is not running/);
  r = runtime(c.root, ['exec', 'no-such-container', 'true']);
  t.match(r.stderr, /container "no-such-container" does not exist/);
});

t.test('only stdio and --preserve-fds cross into the container, and the cwd is the container\'s (CVE-2024-21626 class)', async (t) => {
  const c = running();
  t.teardown(c.done);
  const extra = openSync(join(c.b.dir, 'config.json'), 'r');
  t.teardown(() => closeSync(extra));
  const script = 'for f in /proc/self/fd/*; do n=${f##*/}; [ $n -gt 2 ] && readlink $f; done; readlink /proc/self/cwd';
  // fd 3 of the CLI is a host file: without --preserve-fds it must not reach the process
  let r = runtime(c.root, ['exec', c.id, 'sh', '-c', script], { extraFds: [extra] });
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[lines.length - 1], '/', 'cwd is the container root, not the host cwd');
  t.notOk(r.stdout.includes('config.json'), 'the host fd did not leak');
  t.notOk(r.stdout.includes('/work') || r.stdout.includes('node'), 'no runtime fd leaked');
  r = runtime(c.root, ['exec', '--preserve-fds', '1', c.id, 'sh', '-c', 'readlink /proc/self/fd/3'], { extraFds: [extra] });
  t.match(r.stdout, /config\.json\n$/, '--preserve-fds 1 passes fd 3');
});

t.test('a container process never sees the runtime\'s node binary through /proc/PID/exe (CVE-2019-5736 class)', async (t) => {
  const c = running();
  t.teardown(c.done);
  // a watcher inside the container looks at every process's exe while execs come in
  const watch = runtime(c.root, ['exec', '-d', c.id, 'sh', '-c', 'while true; do for p in /proc/[0-9]*; do readlink $p/exe; done; done 2>/dev/null | grep -m1 node > /tmp/seen']);
  t.equal(watch.status, 0);
  for (let i = 0; i < 15; i++) runtime(c.root, ['exec', c.id, 'true']);
  const seen = existsSync(join(c.b.rootfs, 'tmp', 'seen')) ? readFileSync(join(c.b.rootfs, 'tmp', 'seen'), 'utf8') : '';
  t.equal(seen, '', 'no process in the container ever showed the node binary');
});

