// lxr exec (-e, -u, -w, exit codes) and -it on a real pty, which the test gives lxr as a
// user's shell would.
import t from 'tap';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, type LxrEnv } from './helpers/env.js';
import { runOnPty } from '../../test/helpers/pty.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is needed (apt-get install -y busybox-static)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/exec:1', { cmd: ['sleep', '600'], env: ['PATH=/bin', 'FROM_IMAGE=1'] });
    const c = lxr(env, ['create', '--name', 'box', '-e', 'FROM_CREATE=2', image]);
    if (c.status !== 0) throw new Error(c.stderr);
  });

  /** Run lxr with a pty as its stdio; `input` is typed into it. */
  const onPty = (args: string[], input: string) => runOnPty([process.execPath, LXR, ...args], { input, env: env.env });

  t.test('exec runs in the container with its env, plus -e, -u, -w; the exit code comes back', async (t) => {
    const r = lxr(env, ['exec', '-e', 'X=5', '-u', 'dev', '-w', '/tmp', 'box', 'sh', '-c', 'echo $FROM_IMAGE $FROM_CREATE $X; id -u; pwd; hostname; exit 4']);
    t.equal(r.status, 4, r.stderr);
    const [envs, uid, cwd, host] = r.stdout.trim().split('\n');
    t.equal(envs, '1 2 5');
    t.equal(uid, '1000');
    t.equal(cwd, '/tmp');
    t.equal(host, JSON.parse(lxr(env, ['inspect', 'box']).stdout)[0].Id.slice(0, 12), 'in the container\'s UTS namespace');
    const pid1 = lxr(env, ['exec', 'box', 'cat', '/proc/1/cmdline']);
    t.equal(pid1.stdout.replace(/\0/g, ' ').trim(), 'sleep 600', 'in the container\'s pid namespace');
  });

  t.test('exec -it gets a pty', async (t) => {
    const r = await onPty(['exec', '-it', 'box', 'sh'], 'tty\necho term=$TERM\nexit 6\n');
    t.equal(r.status, 6, 'the shell\'s exit code');
    t.match(r.output, /\/dev\/pts\/\d+/);
    t.match(r.output, /term=xterm/);
    const plain = lxr(env, ['exec', 'box', 'sh', '-c', 'test -t 0 || echo notty']);
    t.equal(plain.stdout, 'notty\n', 'without -t there is no terminal');
  });

  t.test('run -it gets a pty and exits with the shell', async (t) => {
    const r = await onPty(['run', '--rm', '-it', image, 'sh'], 'tty\nexit 5\n');
    t.equal(r.status, 5, 'the shell\'s exit code');
    t.match(r.output, /\/dev\/pts\/\d+/);
  });

  t.test('exec in a stopped container, or an unknown user, fails clearly', async (t) => {
    const u = lxr(env, ['exec', '-u', 'ghost', 'box', 'true']);
    t.not(u.status, 0);
    t.match(u.stderr, /-u ghost/);
    t.equal(lxr(env, ['stop', '-t', '1', 'box']).status, 0);
    const r = lxr(env, ['exec', 'box', 'true']);
    t.not(r.status, 0);
    t.match(r.stderr, /cannot exec in container box: it is not running/);
  });
}
