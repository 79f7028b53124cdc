// What podman and docker users rely on, checked against podman in the same run where it is
// installed: HOME follows -u (run and exec), the exit codes of a command that cannot start
// (125/126/127), -w of a missing directory, HOSTNAME, ps COMMAND, /etc/hosts with
// --network none, and a raw host terminal for -t with the host's size.
import t from 'tap';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, type LxrEnv } from './helpers/env.js';
import { runOnPty } from '../../test/helpers/pty.js';
import { native } from '../../native/index.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is needed (apt-get install -y busybox-static)');
} else {
  let image: string;
  let pod: Podman | undefined;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/habits:1', {
      cmd: ['sleep', '600'],
      env: ['PATH=/bin'],
      entryLayers: [[{ path: 'bin/stty', type: 'symlink', link: 'busybox' }]],
    });
    if (which('podman') && which('runc') && !process.env.LXR_TEST_NO_PODMAN) {
      pod = await startPodman();
      const p = pod.podman('runc', ['pull', '--tls-verify=false', image]);
      if (p.status !== 0) throw new Error(`podman pull: ${p.stderr}`);
    }
  });
  t.teardown(async () => {
    await pod?.stop();
  });
  const podman = (args: string[]) => pod!.podman('runc', args);
  const run = (args: string[]) => lxr(env, ['run', '--rm', ...args]);

  t.test('HOME follows the user of -u (run and exec), as podman', async (t) => {
    const cases: [string, string][] = [['1000', '/home/dev'], ['dev', '/home/dev'], ['4242', '/'], ['nobody', '/'], ['0', '/root']];
    for (const [u, home] of cases) {
      const r = run(['-u', u, image, 'sh', '-c', 'echo $HOME']);
      t.equal(r.stdout, `${home}\n`, `run -u ${u}: ${r.stderr}`);
      if (pod) t.equal(podman(['run', '--rm', '--network', 'none', '-u', u, image, 'sh', '-c', 'echo $HOME']).stdout, r.stdout, `podman agrees for -u ${u}`);
    }
    t.equal(run(['-u', '1000', '-e', 'HOME=/x', image, 'sh', '-c', 'echo $HOME']).stdout, '/x\n', '-e HOME wins');
    t.equal(lxr(env, ['create', '--name', 'home', image]).status, 0);
    t.equal(lxr(env, ['exec', '-u', '1000', 'home', 'sh', '-c', 'echo $HOME']).stdout, '/home/dev\n', 'exec -u 1000');
    t.equal(lxr(env, ['exec', '-u', '4242', 'home', 'sh', '-c', 'echo $HOME']).stdout, '/\n', 'exec -u of a uid without an entry');
    t.equal(lxr(env, ['exec', 'home', 'sh', '-c', 'echo $HOME']).stdout, '/root\n', 'exec without -u');
    t.equal(lxr(env, ['exec', '-u', '1000', '-e', 'HOME=/y', 'home', 'sh', '-c', 'echo $HOME']).stdout, '/y\n', 'exec -e HOME wins');
    t.equal(lxr(env, ['create', '--name', 'homeset', '-e', 'HOME=/set', image]).status, 0);
    t.equal(lxr(env, ['exec', '-u', '1000', 'homeset', 'sh', '-c', 'echo $HOME']).stdout, '/set\n', 'a HOME given to create stays');
    if (pod) {
      t.equal(podman(['run', '-d', '--network', 'none', '--name', 'home', image]).status, 0);
      t.equal(podman(['exec', '-u', '1000', 'home', 'sh', '-c', 'echo $HOME']).stdout, '/home/dev\n', 'podman exec -u 1000 agrees');
    }
  });

  t.test('a command that cannot start: 127 not found, 126 not executable (run, run -d, exec), as podman', async (t) => {
    const cases: [string, number][] = [['/nonexistent', 127], ['nonexistent', 127], ['/etc/passwd', 126], ['/etc', 126]];
    t.equal(lxr(env, ['create', '--name', 'codes', image]).status, 0);
    for (const [cmd, code] of cases) {
      const r = run([image, cmd]);
      t.equal(r.status, code, `run ${cmd}: ${r.stderr}`);
      t.match(r.stderr, cmd, 'the message names the command');
      if (pod) t.equal(podman(['run', '--rm', '--network', 'none', image, cmd]).status, code, `podman run ${cmd} agrees`);
      const d = lxr(env, ['run', '-d', image, cmd]);
      t.equal(d.status, code, `run -d ${cmd}: ${d.stderr}`);
      const e = lxr(env, ['exec', 'codes', cmd]);
      t.equal(e.status, code, `exec ${cmd}: ${e.stderr}`);
    }
    const ps = JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout) as { Name: string }[];
    t.same(ps.map((p) => p.Name).sort(), ['codes', 'home', 'homeset'], 'the failed run -d left no container');
    t.equal(run([image, 'sh', '-c', 'exit 3']).status, 3, 'the command\'s own code');
  });

  t.test('-w of a missing directory: run creates it (docker\'s choice), exec fails with 126', async (t) => {
    const r = run(['-w', '/nope/deeper', image, 'sh', '-c', 'pwd; stat -c %u:%g:%a .']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '/nope/deeper\n0:0:755\n');
    const e = lxr(env, ['exec', '-w', '/nope', 'codes', 'pwd']);
    t.equal(e.status, 126, e.stderr);
    t.match(e.stderr, /working directory "\/nope"/);
  });

  t.test('HOSTNAME is in the environment, with and without --hostname, as podman', async (t) => {
    const c = lxr(env, ['create', '--name', 'hn', image]);
    const id = c.stdout.trim();
    t.equal(lxr(env, ['exec', 'hn', 'sh', '-c', 'echo $HOSTNAME']).stdout, `${id.slice(0, 12)}\n`);
    t.equal(run(['--hostname', 'box', image, 'sh', '-c', 'echo $HOSTNAME; hostname']).stdout, 'box\nbox\n');
    t.equal(run(['--hostname', 'box', '-e', 'HOSTNAME=mine', image, 'sh', '-c', 'echo $HOSTNAME']).stdout, 'mine\n', '-e wins');
    if (pod) t.equal(podman(['run', '--rm', '--network', 'none', '--hostname', 'box', image, 'sh', '-c', 'echo $HOSTNAME']).stdout, 'box\n', 'podman agrees');
  });

  t.test('ps shows the command, the image\'s CMD included, as podman', async (t) => {
    lxr(env, ['create', '--name', 'cmd1', image]);
    lxr(env, ['create', '--name', 'cmd2', image, 'sleep', '500']);
    const rows = JSON.parse(lxr(env, ['ps', '--format', 'json']).stdout) as { Name: string; Command: string }[];
    t.equal(rows.find((r) => r.Name === 'cmd1')?.Command, 'sleep 600');
    t.equal(rows.find((r) => r.Name === 'cmd2')?.Command, 'sleep 500');
    const table = lxr(env, ['ps']).stdout.split('\n');
    t.match(table[0], /COMMAND/);
    t.match(table.find((l) => l.startsWith('cmd1')), /sleep 600/);
    if (pod) {
      podman(['run', '-d', '--network', 'none', '--name', 'cmd1', image]);
      t.match(podman(['ps', '--filter', 'name=cmd1']).stdout, /sleep 600/, 'podman shows the same');
    }
  });

  t.test('/etc/hosts with --network none: the hostname and name on 127.0.0.1, as podman', async (t) => {
    const r = run(['--network', 'none', '--name', 'hostsbox', '--hostname', 'box', image, 'cat', '/etc/hosts']);
    t.equal(r.status, 0, r.stderr);
    const last = r.stdout.trim().split('\n').pop();
    t.equal(last, '127.0.0.1\tbox hostsbox');
    t.notMatch(r.stdout, /127\.0\.1\.1\tbox/);
    if (pod) {
      const p = podman(['run', '--rm', '--network', 'none', '--name', 'hostsbox', '--hostname', 'box', image, 'cat', '/etc/hosts']);
      t.equal(p.stdout.trim().split('\n').pop(), last, 'podman\'s last line is the same');
      t.match(r.stdout, /^127\.0\.0\.1\s+localhost/m);
    }
  });

  t.test('-t: the host terminal is raw (OPOST off too) and the pty has its size', async (t) => {
    const onPty = (args: string[], input = '') => runOnPty([process.execPath, LXR, ...args], { input, env: env.env, rows: 33, cols: 101 });
    const a = await onPty(['run', '--rm', '-it', image, 'sh', '-c', 'stty -opost; printf "ab\\ncd\\n"']);
    t.equal(a.status, 0);
    t.equal(a.output, 'ab\ncd\n', 'the container\'s bytes reach the terminal unchanged');
    const b = await onPty(['run', '--rm', '-t', image, 'sh', '-c', 'printf "ab\\ncd\\n"; stty size']);
    t.equal(b.output, 'ab\r\ncd\r\n33 101\r\n', 'one \\r per line (the container\'s pty), and the host terminal\'s size');
    lxr(env, ['create', '--name', 'tty', image]);
    const c = await onPty(['exec', '-it', 'tty', 'sh', '-c', 'stty -opost; printf "ab\\ncd\\n"; stty size']);
    t.equal(c.output, 'ab\ncd\n33 101\n', 'exec -it: the same');
    // the host terminal is resized: the container's pty follows (SIGWINCH reaches the shell there)
    let resized = false;
    const w = await runOnPty([process.execPath, LXR, 'run', '--rm', '-t', image, 'sh', '-c', 'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.1; done'], {
      env: env.env, rows: 33, cols: 101,
      onOutput: (out, master) => {
        if (!resized && out.includes('ready')) {
          resized = true;
          native().setWinsize(master, 40, 120);
        }
      },
    });
    t.equal(w.status, 0);
    t.equal(w.output, 'ready\r\n40 120\r\n', 'the new size, after SIGWINCH');
    if (pod) {
      const p = await pod.podmanTty('runc', ['run', '--rm', '-it', '--network', 'none', image, 'sh', '-c', 'stty -opost; printf "ab\\ncd\\n"']);
      t.equal(p.stdout, a.output, 'podman shows the same bytes');
    }
  });
}
