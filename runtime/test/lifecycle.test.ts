// The OCI lifecycle as a user drives it through the CLI (runtime.md "Lifecycle").
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { cleanEnv, makeBundle, makeRoot, RUNTIME, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

t.test('run propagates stdout and the exit code', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sh', '-c', 'echo hello from $(hostname); exit 7']));
  t.teardown(() => (b.cleanup(), c1()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('run')]);
  t.equal(r.stdout, 'hello from lxr\n');
  t.equal(r.status, 7);
  t.same(JSON.parse(runtime(root, ['list', '--format', 'json']).stdout), [], 'run removes the container when it exits');
});

t.test('run exits 128+signal when the init is killed by a signal', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '1000']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('sig');
  const child = spawn(process.execPath, [RUNTIME, '--root', root, 'run', '-b', b.dir, id], { stdio: 'ignore', env: cleanEnv() });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitForStatus(root, id, 'running');
  t.equal(runtime(root, ['kill', id, 'KILL']).status, 0);
  t.equal(await exited, 137);
});

t.test('run forwards signals it receives to the container', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sh', '-c', 'trap "exit 42" TERM; touch /tmp/trapped; while true; do sleep 0.05; done']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('fwd');
  const child = spawn(process.execPath, [RUNTIME, '--root', root, 'run', '-b', b.dir, id], { stdio: 'ignore', env: cleanEnv() });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitForStatus(root, id, 'running');
  // the shell has set its trap once it has made the file
  for (let i = 0; i < 500 && !existsSync(join(b.rootfs, 'tmp', 'trapped')); i++) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  t.equal(await exited, 42, 'the container trapped the forwarded SIGTERM');
});

t.test('create, start, kill, delete and the states between', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sh', '-c', 'echo started > /tmp/marker; exec sleep 1000']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('life');
  const pidFile = join(b.dir, 'pid');
  let r = runtime(root, ['create', '-b', b.dir, '--pid-file', pidFile, id]);
  t.equal(r.status, 0, r.stderr);
  let st = JSON.parse(runtime(root, ['state', id]).stdout);
  t.equal(st.status, 'created');
  t.equal(st.id, id);
  t.equal(st.bundle, b.dir);
  t.equal(Number(readFileSync(pidFile, 'utf8')), st.pid, '--pid-file holds the init pid');
  t.notOk(existsSync(join(b.rootfs, 'tmp', 'marker')), 'the user process has not run before start');
  r = runtime(root, ['start', id]);
  t.equal(r.status, 0, r.stderr);
  st = JSON.parse(runtime(root, ['state', id]).stdout);
  t.equal(st.status, 'running');
  for (let i = 0; i < 100 && !existsSync(join(b.rootfs, 'tmp', 'marker')); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(existsSync(join(b.rootfs, 'tmp', 'marker')), 'the user process ran after start');
  r = runtime(root, ['start', id]);
  t.not(r.status, 0, 'start on a running container fails');
  t.match(r.stderr, /running/);
  r = runtime(root, ['delete', id]);
  t.not(r.status, 0, 'delete without --force refuses a running container');
  r = runtime(root, ['kill', id, 'KILL']);
  t.equal(r.status, 0, r.stderr);
  await waitForStatus(root, id, 'stopped');
  st = JSON.parse(runtime(root, ['state', id]).stdout);
  t.equal(st.status, 'stopped');
  r = runtime(root, ['kill', id, 'TERM']);
  t.not(r.status, 0, 'kill on a stopped container fails');
  r = runtime(root, ['delete', id]);
  t.equal(r.status, 0, r.stderr);
  r = runtime(root, ['state', id]);
  t.not(r.status, 0);
  t.match(r.stderr, /does not exist/);
});

t.test('kill takes signal names and numbers; delete --force stops a running container', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sh', '-c', 'trap "echo got USR1 > /tmp/usr1" USR1; while true; do sleep 0.05; done']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('kill');
  t.equal(runtime(root, ['run', '-d', '-b', b.dir, id]).status, 0);
  t.equal(runtime(root, ['kill', id, 'SIGUSR1']).status, 0);
  for (let i = 0; i < 100 && !existsSync(join(b.rootfs, 'tmp', 'usr1')); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(existsSync(join(b.rootfs, 'tmp', 'usr1')), 'the init got SIGUSR1');
  const bad = runtime(root, ['kill', id, 'SIGNOPE']);
  t.not(bad.status, 0);
  t.match(bad.stderr, /invalid signal "SIGNOPE"/);
  t.equal(runtime(root, ['kill', id, '10']).status, 0, 'numbers work too');
  const st = JSON.parse(runtime(root, ['state', id]).stdout);
  t.equal(runtime(root, ['delete', '--force', id]).status, 0);
  t.notOk(existsSync(`/proc/${st.pid}/stat`) && readFileSync(`/proc/${st.pid}/stat`, 'utf8').split(') ')[1]!.startsWith('S'), 'the init is gone');
  t.equal(runtime(root, ['delete', '--force', id]).status, 0, 'delete --force of a missing container succeeds, like runc');
});

t.test('status survives pid reuse: a dead init with a recycled pid reads as stopped', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '1000']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('reuse');
  t.equal(runtime(root, ['run', '-d', '-b', b.dir, id]).status, 0);
  const stateFile = join(root, id, 'state.json');
  const rec = JSON.parse(readFileSync(stateFile, 'utf8'));
  runtime(root, ['kill', id, 'KILL']);
  // pretend the pid now belongs to another process: our own test process
  rec.pid = process.pid;
  writeFileSync(stateFile, JSON.stringify(rec));
  const st = JSON.parse(runtime(root, ['state', id]).stdout);
  t.equal(st.status, 'stopped', 'a live process with another start time is not the container');
  t.equal(runtime(root, ['delete', id]).status, 0);
});

t.test('list prints a table, JSON and ids', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '1000']));
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('list');
  t.equal(runtime(root, ['create', '-b', b.dir, id]).status, 0);
  t.match(runtime(root, ['list']).stdout, new RegExp(`^ID\\s+PID\\s+STATUS\\s+BUNDLE\\s+CREATED\\s+OWNER\\n${id}\\s+\\d+\\s+created`));
  t.equal(runtime(root, ['list', '-q']).stdout, `${id}\n`);
  const j = JSON.parse(runtime(root, ['list', '--format', 'json']).stdout);
  t.equal(j[0].id, id);
  t.equal(j[0].status, 'created');
  t.equal(runtime(root, ['delete', id]).status, 0, 'a created container can be deleted (as runc allows)');
});

t.test('a config without process can be created, and start then fails (runtime.md "start")', async (t) => {
  const { root, cleanup: c1 } = makeRoot();
  const b = makeBundle((s) => delete s.process);
  t.teardown(() => (b.cleanup(), c1()));
  const id = uniqueId('noproc');
  t.equal(runtime(root, ['create', '-b', b.dir, id]).status, 0);
  t.equal(JSON.parse(runtime(root, ['state', id]).stdout).status, 'created');
  const r = runtime(root, ['start', id]);
  t.not(r.status, 0);
  t.match(r.stderr, /config\.json has no process to run/);
  t.equal(await waitForStatus(root, id, 'stopped'), 'stopped');
  t.equal(runtime(root, ['delete', id]).status, 0);
});
