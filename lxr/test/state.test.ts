// State that outlives processes: ps after the runtime state is wiped (a host restart), a
// container whose monitor was killed, and the restart policy.
import t from 'tap';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUSYBOX, cgroupsLeft, netnsLeft, lxr, lxrEnv, mountsUnder, registryImage, until, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/state:1', { cmd: ['sleep', '600'] });
  });

  const ps = (): Array<Record<string, any>> => JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout);
  const inspect = (name: string) => JSON.parse(lxr(env, ['inspect', name]).stdout)[0];

  t.test('after a host restart (processes, mounts and /run gone) ps shows exited, and start works again', async (t) => {
    t.equal(lxr(env, ['create', '--name', 'survivor', image]).status, 0);
    const before = inspect('survivor');
    t.equal(before.State.Status, 'running');
    // what a reboot does: every process dies, mounts and the tmpfs under /run vanish
    const monitor = JSON.parse(readFileSync(join(env.root, 'containers', before.Id, 'container.json'), 'utf8')).monitorPid as number;
    process.kill(monitor, 'SIGKILL');
    process.kill(before.State.Pid, 'SIGKILL');
    await until(() => spawnSync('kill', ['-0', String(before.State.Pid)]).status !== 0);
    spawnSync('umount', ['-l', before.Rootfs.MergedDir]);
    rmSync(env.runRoot, { recursive: true, force: true });
    for (const c of cgroupsLeft(env)) spawnSync('rmdir', [`/sys/fs/cgroup/${c}`]);

    const [row] = ps();
    t.equal(row!.State, 'exited', 'stale run state is shown as exited');
    t.match(row!.Status, /^Exited/);
    t.equal(row!.Pid, 0);
    const st = lxr(env, ['start', 'survivor']);
    t.equal(st.status, 0, st.stderr);
    t.equal(ps()[0]!.State, 'running', 'start remounts the rootfs and runs it again');
    t.equal(lxr(env, ['rm', '-f', 'survivor']).status, 0);
    t.same(mountsUnder(env.root), []);
    t.same(cgroupsLeft(env), []);
  });

  t.test('--restart always brings a container back when lxr next runs after a host restart', async (t) => {
    t.equal(lxr(env, ['create', '--name', 'keeper', '--restart', 'always', image]).status, 0);
    t.equal(lxr(env, ['create', '--name', 'plain', image]).status, 0);
    const k = inspect('keeper');
    const p = inspect('plain');
    for (const c of [k, p]) {
      const monitor = JSON.parse(readFileSync(join(env.root, 'containers', c.Id, 'container.json'), 'utf8')).monitorPid as number;
      process.kill(monitor, 'SIGKILL');
      process.kill(c.State.Pid, 'SIGKILL');
      await until(() => spawnSync('kill', ['-0', String(c.State.Pid)]).status !== 0);
      spawnSync('umount', ['-l', c.Rootfs.MergedDir]);
    }
    rmSync(env.runRoot, { recursive: true, force: true });
    for (const c of cgroupsLeft(env)) spawnSync('rmdir', [`/sys/fs/cgroup/${c}`]);
    for (const n of netnsLeft(env)) spawnSync('ip', ['netns', 'del', n]);
    const rows = ps();
    t.equal(rows.find((r) => r.Name === 'keeper')?.State, 'running', 'keeper runs again');
    t.equal(rows.find((r) => r.Name === 'plain')?.State, 'exited', 'a container without a policy stays exited');
    t.equal(lxr(env, ['rm', '-f', 'keeper', 'plain']).status, 0);
    t.same(mountsUnder(env.root), []);
  });

  t.test('a container whose init dies is exited with its code', async (t) => {
    t.equal(lxr(env, ['run', '-d', '--name', 'dies', image, 'sh', '-c', 'sleep 0.2; exit 42']).status, 0);
    t.ok(await until(() => ps()[0]?.State === 'exited'));
    t.equal(ps()[0]!.ExitCode, 42);
    t.match(ps()[0]!.Status, /^Exited \(42\)/);
    t.equal(lxr(env, ['rm', 'dies']).status, 0);
  });

  t.test('--restart on-failure restarts a failing container; stop ends --restart always', async (t) => {
    t.equal(lxr(env, ['run', '-d', '--name', 'flaky', '--restart', 'on-failure', image, 'sh', '-c', 'echo run; exit 1']).status, 0);
    t.ok(await until(() => inspect('flaky').State.RestartCount >= 2, 20000), 'restarted at least twice');
    t.ok(lxr(env, ['logs', 'flaky']).stdout.startsWith('run\nrun\n'), 'each run appends to the log');
    t.equal(lxr(env, ['rm', '-f', 'flaky']).status, 0);

    t.equal(lxr(env, ['run', '-d', '--name', 'ok0', '--restart', 'on-failure', image, 'true']).status, 0);
    t.ok(await until(() => ps().find((r) => r.Name === 'ok0')?.State === 'exited'));
    t.equal(inspect('ok0').State.RestartCount, 0, 'on-failure does not restart exit 0');
    t.equal(lxr(env, ['rm', 'ok0']).status, 0);

    t.equal(lxr(env, ['run', '-d', '--name', 'always', '--restart', 'always', image, 'sh', '-c', 'sleep 0.1; exit 0']).status, 0);
    t.ok(await until(() => inspect('always').State.RestartCount >= 1, 20000), 'always restarts after exit 0');
    const s = lxr(env, ['stop', '-t', '1', 'always']);
    t.equal(s.status, 0, s.stderr);
    const n = inspect('always').State.RestartCount;
    await new Promise((r) => setTimeout(r, 1000));
    t.equal(inspect('always').State.Status, 'exited', 'stop keeps it stopped');
    t.equal(inspect('always').State.RestartCount, n, 'no restart after stop');
    t.equal(lxr(env, ['rm', 'always']).status, 0);
  });
}
