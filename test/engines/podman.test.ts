// lxr-runtime under podman (`podman --runtime bin/lxr-runtime.js`), with a private store
// (cgroupfs manager, file events backend, own containers.conf and storage.conf), and the
// same checks run against runc as a control.
import t from 'tap';
import { existsSync } from 'node:fs';
import { IMAGE, LXR_RUNTIME, imageArchive, startPodman, until, which, type Podman } from './helpers/engines.js';
import { BUSYBOX } from './helpers/image.js';

const missing = ['podman', 'conmon', 'runc', 'setsid'].filter((c) => !which(c));
if (process.getuid?.() !== 0) t.plan(0, 'podman tests need root');
else if (missing.length) t.plan(0, `not installed: ${missing.join(', ')} (apt-get install podman conmon runc util-linux)`);
else if (!BUSYBOX) t.plan(0, 'busybox is not installed (apt-get install busybox-static)');
else if (!existsSync(new URL('../../dist/lxr-runtime.js', import.meta.url))) t.fail('dist/lxr-runtime.js is missing: run npm run build');
else {
  let p: Podman;
  t.before(async () => {
    p = await startPodman();
    const r = p.podman('runc', ['load', '-q', '-i', imageArchive(p.dir)]);
    if (r.status !== 0) throw new Error(`podman load failed: ${r.stderr}`);
  });
  t.teardown(async () => {
    await p?.stop();
  });

  for (const [label, runtime] of [['runc', 'runc'], ['lxr-runtime', LXR_RUNTIME]] as const) {
    t.test(label, async (t) => {
      const pm = (args: string[]) => p.podman(runtime, args);
      const name = (s: string) => `${label.replace(/\W/g, '')}-${s}`;

      t.test('podman run --rm: output and exit code', async (t) => {
        const r = pm(['run', '--rm', '--name', name('rm'), IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
        t.equal(r.stdout, 'out\n');
        t.match(r.stderr, /err/);
        t.equal(r.status, 3);
        t.notOk(pm(['ps', '-a', '--format', '{{.Names}}']).stdout.includes(name('rm')), '--rm removed it');
      });

      t.test('podman run --rm -t', async (t) => {
        const r = await p.podmanTty(runtime, ['run', '--rm', '-t', IMAGE, 'sh', '-c', 'tty; exit 4']);
        t.match(r.stdout, /\/dev\/pts\/\d+/);
        t.equal(r.status, 4);
      });

      t.test('--memory, --pids-limit, --user, --read-only, -e, --network none', async (t) => {
        const r = pm([
          'run', '--rm', '--memory', '64m', '--pids-limit', '50', '--user', '1000:1000', '--read-only', '-e', 'FOO=bar', '--network', 'none', IMAGE,
          'sh', '-c', 'id -u; id -g; echo $FOO; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; touch /x 2>/dev/null || echo ro; touch /tmp/y && echo tmp-rw; ls /sys/class/net',
        ]);
        t.equal(r.status, 0, r.stderr);
        t.same(r.stdout.trim().split('\n'), ['1000', '1000', 'bar', String(64 << 20), '50', 'ro', 'tmp-rw', 'lo']);
        // runc brings up lo in a network namespace it creates; podman relies on it for --network none
        const lo = pm(['run', '--rm', '--network', 'none', IMAGE, 'ip', 'link', 'show', 'lo']);
        t.match(lo.stdout, /<LOOPBACK,UP/, 'lo is up');
      });

      t.test('the default network', async (t) => {
        const r = pm(['run', '--rm', IMAGE, 'sh', '-c', 'ls /sys/class/net; ip -4 addr show eth0']);
        t.equal(r.status, 0, r.stderr);
        t.match(r.stdout, /eth0/);
        t.match(r.stdout, /inet \d+\.\d+\.\d+\.\d+/, 'eth0 has an address');
      });

      t.test('-d, exec, stop, rm', async (t) => {
        const n = name('d');
        // sh as pid 1 has no default action for SIGTERM: the trap makes stop quick and clean
        const run = pm(['run', '-d', '--name', n, IMAGE, 'sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.2; done']);
        t.equal(run.status, 0, `run -d: ${run.stderr}`);
        const state = () => pm(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', n]).stdout.trim();
        t.equal(state(), 'running 0');
        const cid = pm(['inspect', '-f', '{{.Id}}', n]).stdout.trim();
        const cgroup = `/sys/fs/cgroup/memory/libpod_parent/libpod-${cid}`;
        t.ok(existsSync(cgroup), `the container has its cgroup ${cgroup}`);
        const ex = pm(['exec', '-e', 'X=1', n, 'sh', '-c', 'echo exec $X; exit 5']);
        t.equal(ex.stdout, 'exec 1\n');
        t.equal(ex.status, 5, 'exec exit code');
        const ext = await p.podmanTty(runtime, ['exec', '-t', n, 'sh', '-c', 'tty; exit 6']);
        t.match(ext.stdout, /\/dev\/pts\/\d+/, 'exec -t has a terminal');
        t.equal(ext.status, 6);
        const exu = pm(['exec', '--user', '1000', n, 'id', '-u']);
        t.equal(exu.stdout, '1000\n', 'exec --user');
        const top = pm(['top', n, 'pid', 'args']);
        t.equal(top.status, 0, `top: ${top.stderr}`);
        const stop = pm(['stop', '-t', '20', n]);
        t.equal(stop.status, 0, `stop: ${stop.stderr}`);
        t.ok(await until(() => state().startsWith('exited')), 'exited');
        t.equal(state(), 'exited 7', 'stopped by SIGTERM (the trap ran), not SIGKILL');
        const rm = pm(['rm', n]);
        t.equal(rm.status, 0, `rm: ${rm.stderr}`);
        t.equal(pm(['ps', '-a', '-q']).stdout.trim(), '', 'no container left');
        t.notOk(existsSync(cgroup), 'its cgroup is gone');
      });

      t.test('rm -f of a running container, and kill', async (t) => {
        const n = name('f');
        t.equal(pm(['run', '-d', '--name', n, IMAGE, 'sleep', '1000']).status, 0);
        const k = pm(['kill', '-s', 'KILL', n]);
        t.equal(k.status, 0, `kill: ${k.stderr}`);
        t.ok(await until(() => pm(['inspect', '-f', '{{.State.Status}}', n]).stdout.trim() === 'exited'), 'exited after kill');
        t.equal(pm(['inspect', '-f', '{{.State.ExitCode}}', n]).stdout.trim(), '137');
        t.equal(pm(['rm', n]).status, 0);
        t.equal(pm(['run', '-d', '--name', n, IMAGE, 'sleep', '1000']).status, 0);
        const rm = pm(['rm', '-f', '-t', '0', n]);
        t.equal(rm.status, 0, `rm -f: ${rm.stderr}`);
        t.equal(pm(['ps', '-a', '-q']).stdout.trim(), '', 'no container left');
      });
    });
  }
}
