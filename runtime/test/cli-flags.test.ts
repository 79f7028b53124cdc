// The command line as runc has it: unknown flags and an unusable --log are errors (exit
// 1, naming the flag or the file), and the flags that containerd and podman pass work.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

t.test('unknown flags and arguments are refused, naming them', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const cases: [string[], RegExp][] = [
    [['--config', 'x', 'start', 'nosuch'], /unknown flag "--config"/],
    [['start', '--bogus', 'nosuch'], /unknown flag "--bogus"/],
    [['create', '--bundle', '.', '--no-such-thing=1', 'nosuch'], /unknown flag "--no-such-thing"/],
    [['state', 'nosuch', 'extra'], /unknown argument "extra"/],
    [['--debug', 'nosuchcommand'], /unknown command "nosuchcommand"/],
  ];
  for (const [args, want] of cases) {
    const r = runtime(root, args);
    t.equal(r.status, 1, `${args.join(' ')}: exit 1`);
    t.match(r.stderr, want, `${args.join(' ')}: names the flag`);
    t.notMatch(r.stderr, /does not exist/, `${args.join(' ')}: refused before the command runs`);
  }
});

t.test('--log: a file that cannot be opened is an error; a good one gets the errors', async (t) => {
  const { root, cleanup } = makeRoot();
  const dir = mkdtempSync(join(tmpdir(), 'lxr-log-'));
  t.teardown(() => (cleanup(), rmSync(dir, { recursive: true, force: true })));
  const bad = join(dir, 'missing', 'log.json');
  const r = runtime(root, ['--log', bad, 'list']);
  t.equal(r.status, 1, 'exit 1');
  t.match(r.stderr, `--log: cannot open "${bad}": ENOENT`, 'names the file and the reason');

  // the global flags containerd's shim and podman's conmon pass
  const good = join(dir, 'log.json');
  const ok = runtime(root, ['--log', good, '--log-format', 'json', '--systemd-cgroup', '--debug', 'list', '-q']);
  t.equal(ok.status, 0, ok.stderr);
  const fail = runtime(root, ['--log', good, '--log-format=json', 'state', 'nosuch']);
  t.equal(fail.status, 1);
  const lines = readFileSync(good, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.ok(lines.some((l) => l.level === 'error' && /nosuch/.test(l.msg)), 'the error is in the log, as JSON');
});

t.test('what follows the id of exec and ps is not read as flags', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '30']));
  const id = uniqueId('flags');
  t.teardown(() => {
    runtime(root, ['delete', '--force', id]);
    b.cleanup();
    cleanup();
  });
  const r = runtime(root, ['run', '-d', '-b', b.dir, id]);
  t.equal(r.status, 0, r.stderr);
  t.equal(await waitForStatus(root, id, 'running'), 'running');
  const ex = runtime(root, ['exec', id, 'sh', '-c', 'echo hi-$((1+1))']);
  t.equal(ex.status, 0, ex.stderr);
  t.equal(ex.stdout.trim(), 'hi-2');
  const ps = runtime(root, ['ps', id, '-ef']);
  t.equal(ps.status, 0, ps.stderr);
  t.match(ps.stdout, /sleep 30/);
  const psJson = runtime(root, ['ps', '--format', 'json', id]);
  t.equal(psJson.status, 0, psJson.stderr);
  t.equal(JSON.parse(psJson.stdout).length, 1);
});
