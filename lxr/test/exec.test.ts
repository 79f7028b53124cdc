// lxr exec (-e, -u, -w, exit codes) and -it on a real pty: script(1) gives lxr a terminal, as
// a user's shell would.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, type LxrEnv } from './helpers/env.js';

const haveScript = spawnSync('script', ['--version']).status === 0;

if (!BUSYBOX || !haveScript) {
  t.plan(0, 'busybox and script are needed (apt-get install -y busybox bsdutils)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/exec:1', { cmd: ['sleep', '600'], env: ['PATH=/bin', 'FROM_IMAGE=1'] });
    const c = lxr(env, ['create', '--name', 'box', '-e', 'FROM_CREATE=2', image]);
    if (c.status !== 0) throw new Error(c.stderr);
  });

  /** Run lxr under script(1): its stdio is a pty; `input` is typed into it. */
  const onPty = (args: string[], input: string) => {
    const cmd = [process.execPath, LXR, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return spawnSync('script', ['-qec', cmd, '/dev/null'], { input, env: env.env, encoding: 'utf8', timeout: 30000 });
  };

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
    const r = onPty(['exec', '-it', 'box', 'sh'], 'tty\necho term=$TERM\nexit 6\n');
    t.equal(r.status, 6, r.stderr);
    t.match(r.stdout, /\/dev\/pts\/\d+/);
    t.match(r.stdout, /term=xterm/);
    const plain = lxr(env, ['exec', 'box', 'sh', '-c', 'test -t 0 || echo notty']);
    t.equal(plain.stdout, 'notty\n', 'without -t there is no terminal');
  });

  t.test('run -it gets a pty and exits with the shell', async (t) => {
    const r = onPty(['run', '--rm', '-it', image, 'sh'], 'tty\nexit 5\n');
    t.equal(r.status, 5, r.stderr);
    t.match(r.stdout, /\/dev\/pts\/\d+/);
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
