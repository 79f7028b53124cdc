// state, start, kill, delete and list parse their command line without yargs (runtime/cli/
// fast.ts) when they understand all of it, and leave everything else to yargs. Both ways
// must give the same answers: the same output, the same errors, the same exit codes.
import t from 'tap';
import { parseFast } from '../cli/fast.js';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

t.test('the command lines taken without yargs, and those left to it', async (t) => {
  const fast: [string[], Record<string, unknown>][] = [
    [['state', 'c1'], { command: 'state', args: ['c1'] }],
    [['--root', '/r', 'start', 'c1'], { command: 'start', root: '/r', args: ['c1'] }],
    [['--root=/r', '--log', '/l', '--log-format', 'json', 'kill', 'c1', 'KILL'], { command: 'kill', root: '/r', log: '/l', logFormat: 'json', args: ['c1', 'KILL'] }],
    [['kill', '--all', 'c1', '9'], { command: 'kill', args: ['c1', '9'] }],
    [['delete', '-f', 'c1', '--debug'], { command: 'delete', debug: true, args: ['c1'] }],
    [['--systemd-cgroup', 'ls', '-q'], { command: 'list', word: 'ls', args: [] }],
    [['list', '--format', 'json'], { command: 'list', format: 'json' }],
    [['list', '-f', 'table'], { command: 'list', format: 'table' }],
    [['create', '-b', '/b', '--pid-file', '/p', 'c1'], { command: 'create', values: { bundle: '/b', 'pid-file': '/p' }, args: ['c1'] }],
    [['run', '-d', '--keep', '--preserve-fds', '2', '--console-socket=/s', 'c1'], { command: 'run', values: { 'preserve-fds': '2', 'console-socket': '/s' }, args: ['c1'] }],
    [['create', '--no-pivot', '--no-new-keyring', 'c1'], { command: 'create', args: ['c1'] }],
  ];
  for (const [argv, want] of fast) t.match(parseFast(argv), want, argv.join(' '));
  t.ok(parseFast(['delete', '-f', 'c1'])!.flags.has('force'), 'delete -f is --force');
  t.ok(parseFast(['kill', '-a', 'c1'])!.flags.has('all'), 'kill -a is --all');
  t.ok(parseFast(['run', '-d', 'c1'])!.flags.has('detach'), 'run -d is --detach');
  t.ok(parseFast(['create', '--no-pivot', 'c1'])!.flags.has('no-pivot'), '--no-pivot is a flag of its own');
  const toYargs = [
    [], ['--help'], ['state', '--help'], ['--version'], ['state'], ['state', 'a', 'b'], ['start', '--bogus', 'c1'],
    ['create', '--preserve-fds', 'x', 'c1'], ['run', '--preserve-fds', '1.5', 'c1'], ['run', '--bundle', 'c1'], ['create', '--detach', 'c1'],
    ['create', '--pivot', 'c1'], ['run', '-b', '/b', '-b', '/c', 'c1'], ['exec', 'c1', 'true'], ['list', '-f', 'yaml'], ['--log-format', 'xml', 'list'],
    ['delete', '--force=true', 'c1'], ['delete', '--force', 'false', 'c1'], ['delete', '-f', '-f', 'c1'], ['-f', 'list'],
    ['list', 'extra'], ['state', '1e3'], ['state', '--', 'c1'], ['--root', '', 'list'], ['--root'], ['kill', '-af', 'c1'],
    ['delete', '--logFormat', 'json', 'c1'], ['nosuchcommand'],
  ];
  for (const argv of toYargs) t.equal(parseFast(argv), undefined, `${argv.join(' ') || '(nothing)'}: left to yargs`);
});

t.test('without yargs and with it, the same answers', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '30']));
  const id = uniqueId('fast');
  t.teardown(() => {
    runtime(root, ['delete', '--force', id]);
    b.cleanup();
    cleanup();
  });
  // `--debug=false` is the same command line for yargs, and makes fast.ts leave it to yargs
  const both = (args: string[]) => [runtime(root, args), runtime(root, ['--debug=false', ...args])];
  const same = (args: string[], what: string) => {
    const [f, y] = both(args);
    t.equal(f.status, y.status, `${what}: same exit status (${f.status})`);
    t.equal(f.stdout, y.stdout, `${what}: same output`);
    t.equal(f.stderr, y.stderr, `${what}: same errors`);
    return f;
  };
  t.equal(same(['list'], 'list, no containers').stdout.split('\n')[0]!.split(/\s+/)[0], 'ID');
  t.equal(same(['list', '-q'], 'list -q, no containers').stdout, '');
  t.match(same(['state', id], 'state of a missing container').stderr, /does not exist/);
  t.match(same(['kill', id], 'kill of a missing container').stderr, /does not exist/);
  t.match(same(['start', id], 'start of a missing container').stderr, /does not exist/);
  t.match(same(['delete', id], 'delete of a missing container').stderr, /does not exist/);
  t.equal(same(['delete', '-f', id], 'delete -f of a missing container').status, 0);

  const echo = makeBundle((s) => (s.process!.args = ['sh', '-c', 'echo hi; exit 3']));
  t.teardown(() => echo.cleanup());
  const ran = same(['run', '--bundle', echo.dir, uniqueId('fast-run')], 'run');
  t.equal(ran.status, 3, 'run: the container\'s exit code');
  t.equal(ran.stdout, 'hi\n');
  t.match(same(['create', '--bundle', '/nonexistent-bundle', id], 'create with a missing bundle').stderr, /nonexistent-bundle/);

  const c = runtime(root, ['create', '--bundle', b.dir, id]);
  t.equal(c.status, 0, c.stderr);
  t.equal(JSON.parse(same(['state', id], 'state').stdout).status, 'created');
  same(['list', '--format', 'json'], 'list --format json');
  same(['list'], 'list');
  t.equal(same(['ls', '-q'], 'ls -q').stdout, `${id}\n`);
  t.match(same(['kill', id, 'SIGBOGUS'], 'kill with a bad signal').stderr, /invalid signal "SIGBOGUS"/);
  const s = runtime(root, ['start', id]);
  t.equal(s.status, 0, s.stderr);
  t.equal(await waitForStatus(root, id, 'running'), 'running');
  t.match(same(['start', id], 'start of a running container').stderr, /it is running, not created/);
  t.match(same(['delete', id], 'delete of a running container').stderr, /it is running/);
  const k = runtime(root, ['kill', '--all', id, 'KILL']);
  t.equal(k.status, 0, k.stderr);
  t.equal(await waitForStatus(root, id, 'stopped'), 'stopped');
  const d = runtime(root, ['delete', id]);
  t.equal(d.status, 0, d.stderr);
  t.equal(runtime(root, ['list', '-q']).stdout, '', 'deleted');
});
