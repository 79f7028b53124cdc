// The lxr CLI end to end: real containers from an image pulled from a loopback registry,
// overlay rootfs, the detached monitor, logs, StopSignal, start again, rm.
import t from 'tap';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { BUSYBOX, REPO, netnsLeft, cgroupExists, lxr, lxrAsync, lxrEnv, mountsUnder, pushTestImage, until, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let reg: RegistryHandle;
  let image: string;
  let env: LxrEnv;
  t.before(async () => {
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/app:1', {
      stopSignal: 'SIGUSR1',
      cmd: ['sh', '-c', 'echo hello; trap "echo got usr1; exit 3" USR1; while true; do sleep 0.1; done'],
    });
  });
  t.teardown(() => reg?.stop());
  env = lxrEnv(t);

  const ps = (all = true): Array<Record<string, any>> => {
    const r = lxr(env, ['ps', ...(all ? ['-a'] : []), '--format', 'json']);
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };

  t.test('create pulls the image, starts the container under a monitor; ps, logs, stop with StopSignal, start, rm', async (t) => {
    const c = lxr(env, ['create', '--name', 'web', image]);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    t.match(id, /^[0-9a-f]{64}$/, 'prints the 64-hex id');
    const [row] = ps();
    t.equal(row!.Name, 'web');
    t.equal(row!.Id, id);
    t.equal(row!.State, 'running');
    t.ok(row!.Pid > 0 && existsSync(`/proc/${row!.Pid}`), 'PID is a live process');
    t.equal(row!.Image, image);
    t.ok(cgroupExists(env, id), 'the container has its cgroup');
    // its parent is the small C monitor (native/monitor.c), as conmon is podman's, not a Node process
    const ppid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${row!.Pid}/status`, 'utf8'))?.[1]);
    t.equal(readlinkSync(`/proc/${ppid}/exe`), join(REPO, 'native', 'build', 'lxr-monitor'), 'the init\'s parent is lxr-monitor');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${ppid}/status`, 'utf8'))?.[1]);
    t.ok(rssKb > 0 && rssKb < 8 * 1024, `the monitor holds ${rssKb} kB of memory, not tens of MB`);
    const merged = join(env.root, 'containers', id, 'merged');
    t.same(mountsUnder(merged), [merged], 'the rootfs overlay is mounted');

    t.ok(await until(() => lxr(env, ['logs', 'web']).stdout.includes('hello')), 'logs show the output');
    t.equal(lxr(env, ['logs', id.slice(0, 8)]).stdout, 'hello\n', 'a short id prefix works');

    const s = lxr(env, ['stop', '-t', '20', 'web']);
    t.equal(s.status, 0, s.stderr);
    const [after] = ps();
    t.equal(after!.State, 'exited');
    t.equal(after!.ExitCode, 3, 'the image StopSignal (USR1) reached the trap, which exited 3');
    t.match(after!.Status, /^Exited \(3\)/);
    t.equal(lxr(env, ['logs', 'web']).stdout, 'hello\ngot usr1\n');
    t.same(ps(false), [], 'ps without -a hides exited containers');
    t.same(mountsUnder(merged), [], 'the overlay is unmounted once the container exited');
    t.notOk(cgroupExists(env, id), 'and its cgroup is gone');

    const st = lxr(env, ['start', 'web']);
    t.equal(st.status, 0, st.stderr);
    t.equal(ps()[0]!.State, 'running', 'start brings it back');
    t.ok(await until(() => lxr(env, ['logs', '--tail', '1', 'web']).stdout === 'hello\n'), 'logs append; --tail 1 is the last line');

    const rm = lxr(env, ['rm', 'web']);
    t.not(rm.status, 0, 'rm of a running container without -f fails');
    t.match(rm.stderr, /web.*running.*-f/);
    t.equal(lxr(env, ['rm', '-f', 'web']).status, 0);
    t.same(ps(), []);
    t.notOk(existsSync(join(env.root, 'containers', id)), 'container directory (upper layer, logs) removed');
    t.same(mountsUnder(env.root), [], 'nothing mounted');
    t.notOk(cgroupExists(env, id));
    t.same(netnsLeft(env), [], 'no network namespace');
    t.notOk(existsSync(join(env.runRoot, 'runtime', id)), 'no runtime state');
    t.ok(readdirSync(join(env.root, 'snapshots')).filter((f) => !f.startsWith('.')).length > 0, 'the image snapshots stay');
  });

  t.test('rm -f: SIGKILL even for a container that ignores SIGTERM, the monitor ends, --restart always does not bring it back', async (t) => {
    const c = lxr(env, ['run', '-d', '--name', 'stubborn', '--restart', 'always', image, 'sh', '-c', 'trap "" TERM; echo up; while :; do sleep 1; done']);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    t.ok(await until(() => lxr(env, ['logs', 'stubborn']).stdout.includes('up')), 'it runs, SIGTERM ignored');
    const pid = ps()[0]!.Pid as number;
    const monitor = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    const gone = (p: number) => {
      try {
        return /^State:\s+[ZX]/m.test(readFileSync(`/proc/${p}/status`, 'utf8'));
      } catch {
        return true;
      }
    };
    t.notOk(gone(monitor), `its monitor ${monitor} runs`);
    const rm = lxr(env, ['rm', '-f', 'stubborn']);
    t.equal(rm.status, 0, rm.stderr);
    t.ok(gone(pid), 'the init is dead when rm -f returns');
    t.ok(gone(monitor), 'and so is its monitor');
    t.same(ps(), [], 'the container is gone');
    t.notOk(existsSync(join(env.root, 'containers', id)), 'with its directory');
    t.notOk(cgroupExists(env, id), 'and its cgroup');
    t.same(mountsUnder(env.root), [], 'nothing mounted');
    await new Promise((r) => setTimeout(r, 1000));
    t.same(ps(), [], 'a second later nothing has started it again');
  });

  t.test('names are unique', async (t) => {
    t.equal(lxr(env, ['create', '--name', 'dup', image]).status, 0);
    const r = lxr(env, ['create', '--name', 'dup', image]);
    t.not(r.status, 0);
    t.match(r.stderr, /name "dup" is already in use/);
    t.equal(ps().length, 1, 'the second create left nothing');
    t.equal(lxr(env, ['rm', '-f', 'dup']).status, 0);
  });

  t.test('run in the foreground: output, exit code, --rm, flags', async (t) => {
    const host = join(env.root, '..', 'hostdir');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'f'), 'from host\n');
    const envFile = join(env.root, '..', 'env.list');
    writeFileSync(envFile, '# comment\nFROMFILE=yes\n');
    const r = lxr(env, [
      'run', '--rm', '-e', 'A=1', '--env-file', envFile, '-w', '/tmp', '-u', 'dev', '--hostname', 'box', '-v', `${host}:/mnt/h:ro`,
      image, 'sh', '-c', 'echo $A $FROMFILE; pwd; id -u; hostname; cat /mnt/h/f; touch /mnt/h/x 2>/dev/null || echo ro; exit 7',
    ]);
    t.equal(r.status, 7, `exit code of the command (${r.stderr})`);
    t.equal(r.stdout, '1 yes\n/tmp\n1000\nbox\nfrom host\nro\n');
    t.same(ps(), [], '--rm removed it');
    t.equal(lxr(env, ['run', '--rm', '-v', 'vol1:/data', image, 'sh', '-c', 'echo keep > /data/v']).status, 0);
    const v = lxr(env, ['run', '--rm', '-v', 'vol1:/data', image, 'cat', '/data/v']);
    t.equal(v.stdout, 'keep\n', 'a named volume outlives the container');
    const ro = lxr(env, ['run', '--rm', '--read-only', image, 'sh', '-c', 'touch /x || echo readonly']);
    t.match(ro.stdout, /readonly/);
    const caps = lxr(env, ['run', '--rm', '--cap-drop', 'ALL', image, 'sh', '-c', 'grep CapEff /proc/self/status']);
    t.match(caps.stdout, /CapEff:\s+0+\n/, '--cap-drop ALL leaves no capabilities');
    const lim = lxr(env, ['run', '--rm', '--memory', '64m', '--pids-limit', '50', '--network', 'host', image, 'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/class/net | grep -c . ']);
    t.equal(lim.status, 0, lim.stderr);
    const [mem, pids, nets] = lim.stdout.trim().split('\n');
    t.equal(mem, String(64 * 1024 * 1024), '--memory sets the memory limit');
    t.equal(pids, '50', '--pids-limit sets pids.max');
    t.ok(Number(nets) >= 1, '--network host sees the host interfaces');
    const none = lxr(env, ['run', '--rm', image, 'ls', '/sys/class/net']);
    t.equal(none.stdout, 'lo\n', '--network none: loopback only');
  });

  t.test('logs -f follows until the container exits', async (t) => {
    const c = lxr(env, ['run', '-d', '--name', 'counter', image, 'sh', '-c', 'for i in 1 2 3; do echo $i; sleep 0.2; done']);
    t.equal(c.status, 0, c.stderr);
    const f = await lxrAsync(env, ['logs', '-f', 'counter']);
    t.equal(f.status, 0);
    t.equal(f.stdout, '1\n2\n3\n');
    t.equal(ps()[0]!.ExitCode, 0);
    t.equal(lxr(env, ['rm', 'counter']).status, 0, 'an exited container is removed without -f');
  });

  t.test('inspect', async (t) => {
    const c = lxr(env, ['create', '--name', 'insp', '-p', '8080:80', '--network', 'host', image]);
    t.equal(c.status, 0, c.stderr);
    const [i] = JSON.parse(lxr(env, ['inspect', 'insp']).stdout);
    t.equal(i.Name, 'insp');
    t.equal(i.State.Status, 'running');
    t.equal(i.StopSignal, 'SIGUSR1');
    t.equal(i.Rootfs.Type, 'overlay');
    t.equal(i.Spec.root.path, i.Rootfs.MergedDir, 'config.json root.path is the overlay mount');
    t.equal(lxr(env, ['rm', '-f', 'insp']).status, 0);
    const none = lxr(env, ['inspect', 'nope']);
    t.not(none.status, 0);
    t.match(none.stderr, /no such container: "nope"/);
  });
}
