// Rootless mode: a real unprivileged user runs lxr-runtime on a bundle made by
// `lxr-runtime spec --rootless`, with and without /etc/subuid ranges.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, cleanEnv, haveBusybox, makeBundle, uniqueId, keyValues } from './helpers/bundle.js';
import type { Spec } from '../../oci-spec/types.js';
import { runOnPty } from '../../test/helpers/pty.js';

interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? 'setpriv';
const haveSetpriv = spawnSync(SETPRIV, ['--version']).status === 0;
const haveUseradd = spawnSync('useradd', ['--help']).status === 0;
const haveNewuidmap = ['/usr/bin/newuidmap', '/usr/bin/newgidmap'].every((p) => existsSync(p));
if (process.getuid!() !== 0 || !haveSetpriv || !haveUseradd || !haveBusybox || !haveNewuidmap) {
  // CI installs all of these (scripts/setup-debian.sh --test: passwd util-linux uidmap busybox-static)
  t.fail(`the rootless tests need root, setpriv, useradd, newuidmap and busybox (root=${process.getuid!() === 0} setpriv=${haveSetpriv} useradd=${haveUseradd} newuidmap=${haveNewuidmap} busybox=${haveBusybox})`);
}

/**
 * Run a shadow tool (useradd, usermod, userdel). They give up at once when another one
 * holds the lock on /etc/passwd or /etc/subuid (another test file may be adding its own
 * user), so retry for a while in that case.
 */
function shadow(cmd: string, args: string[], opts: { check?: boolean } = {}): void {
  for (let i = 0; ; i++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return;
    if (i < 100 && /lock|try again/i.test(r.stderr ?? '')) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    if (opts.check === false) return;
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  }
}

/** The caller's ranges in /etc/subuid or /etc/subgid. */
function subIds(file: string, name: string): { start: number; size: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f[0] === name && f.length === 3)
    .map((f) => ({ start: Number(f[1]), size: Number(f[2]) }));
}

function dropSubIds(u: User): void {
  for (const r of subIds('/etc/subuid', u.name)) shadow('usermod', ['--del-subuids', `${r.start}-${r.start + r.size - 1}`, u.name]);
  for (const r of subIds('/etc/subgid', u.name)) shadow('usermod', ['--del-subgids', `${r.start}-${r.start + r.size - 1}`, u.name]);
}

/** A throwaway user with a home dir; removed with its /etc/subuid and /etc/subgid entries afterwards. */
function makeUser(t: Test): User {
  const name = `lxrrl${process.pid % 100000}`;
  const base = mkdtempSync(join(tmpdir(), 'lxr-rootless-'));
  chmodSync(base, 0o755);
  const home = join(base, 'home');
  // a user of this name left by an earlier run that was killed is ours to remove
  if (spawnSync('id', ['-u', name]).status === 0) shadow('userdel', ['--remove', name], { check: false });
  shadow('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/sh', '--user-group', name]);
  const u: User = { name, uid: Number(execFileSync('id', ['-u', name]).toString()), gid: Number(execFileSync('id', ['-g', name]).toString()), home };
  t.teardown(() => {
    dropSubIds(u);
    shadow('userdel', ['--remove', name], { check: false });
    rmSync(base, { recursive: true, force: true });
  });
  return u;
}

/** The same subordinate range for uids and gids, replacing whatever useradd gave. */
function giveSubIds(u: User, start: number, size: number): void {
  dropSubIds(u);
  shadow('usermod', ['--add-subuids', `${start}-${start + size - 1}`, '--add-subgids', `${start}-${start + size - 1}`, u.name]);
}

/**
 * The lxr-runtime the user can run: this checkout if the user can read it, else a copy
 * of what the bundle needs (dist, the native library, koffi) in a dir the user can read.
 */
function runtimeFor(t: Test, u: User): string {
  const own = join(REPO, 'dist', 'lxr-runtime.js');
  const probe = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', SETPRIV, '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', process.execPath, own, '--version'], { env: cleanEnv() });
  if (probe.status === 0) return own;
  const copy = mkdtempSync(join(tmpdir(), 'lxr-rootless-app-'));
  chmodSync(copy, 0o755);
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(join(REPO, 'package.json'), join(copy, 'package.json'));
  cpSync(join(REPO, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(REPO, 'native', 'build'), join(copy, 'native', 'build'), { recursive: true });
  cpSync(join(REPO, 'node_modules', 'koffi'), join(copy, 'node_modules', 'koffi'), { recursive: true });
  execFileSync('chmod', ['-R', 'a+rX', copy]);
  return join(copy, 'dist', 'lxr-runtime.js');
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run lxr-runtime as the user (setpriv), with output in files (a detached container keeps pipes open). */
function asUser(u: User, runtime: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Result {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-cli-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  try {
    const env = { ...cleanEnv(), HOME: u.home, USER: u.name, LOGNAME: u.name, XDG_RUNTIME_DIR: join(u.home, 'run'), ...opts.env };
    // through env(1): tap's process tracking adds NODE_OPTIONS to every spawn, and its
    // loader would fail to write its report (as the user) into the checkout's .tap/
    const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', SETPRIV, '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', process.execPath, runtime, ...args], {
      stdio: ['ignore', outFd, errFd], timeout: 30000, env, cwd: opts.cwd ?? u.home,
    });
    return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A busybox bundle owned by the user, its config.json written by `spec --rootless` as the user, then edited. */
function rootlessBundle(t: Test, u: User, runtime: string, edit: (s: Spec) => void): string {
  const b = makeBundle();
  t.teardown(b.cleanup);
  rmSync(join(b.dir, 'config.json'));
  execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, b.dir]);
  const r = asUser(u, runtime, ['spec', '--rootless', '--bundle', b.dir]);
  if (r.status !== 0) throw new Error(`spec --rootless failed: ${r.stderr}`);
  const file = join(b.dir, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as Spec;
  spec.process!.terminal = false;
  spec.root!.readonly = false;
  edit(spec);
  writeFileSync(file, JSON.stringify(spec));
  execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, b.dir]);
  return b.dir;
}

t.test('rootless run as an unprivileged user', async (t) => {
  const u = makeUser(t);
  const runtime = runtimeFor(t, u);
  const root = join(u.home, 'run', 'lxr-runtime');

  t.test('only the user\'s own uid and gid (no /etc/subuid entry)', async (t) => {
    dropSubIds(u);
    const dir = rootlessBundle(t, u, runtime, (s) => {
      t.same(s.linux!.uidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }], 'spec --rootless maps the user to root');
      t.notOk(s.linux!.namespaces!.some((n) => n.type === 'network'), 'and keeps the host network');
      s.process!.args = ['sh', '-c', [
        'echo id=$(id -u):$(id -g)', 'echo uidmap=$(cat /proc/self/uid_map | tr -s " ")',
        'echo setgroups=$(cat /proc/self/setgroups)', 'echo devnull=$(stat -c %F:%t:%T /dev/null)',
        'echo null=$(echo x > /dev/null && echo writable)', 'echo sys=$(test -d /sys/kernel && echo mounted)',
        'echo hostname=$(hostname)', 'echo pid1=$$',
      ].join('; ')];
    });
    const id = uniqueId('rl');
    const r = asUser(u, runtime, ['--root', root, 'run', '-b', dir, id]);
    t.equal(r.status, 0, r.stderr);
    const o = keyValues(r.stdout);
    t.equal(o.id, '0:0', 'root inside');
    t.equal(o.uidmap, ` 0 ${u.uid} 1`, 'the uid map is the user\'s own uid');
    t.equal(o.setgroups, 'deny', 'setgroups is denied (the user wrote its own gid map)');
    t.equal(o.devnull, 'character special file:1:3', '/dev/null is the host\'s, bind-mounted');
    t.equal(o.null, 'writable');
    t.equal(o.sys, 'mounted', '/sys is bound from the host (no network namespace of its own)');
    t.equal(o.hostname, 'lxr');
    t.equal(o.pid1, '1');
    t.same(readdirSync(root), [], 'run removed the container\'s state');
  });

  t.test('with /etc/subuid and /etc/subgid ranges, through newuidmap and newgidmap', async (t) => {
    giveSubIds(u, 1200000, 65536);
    const shared = mkdtempSync(join(tmpdir(), 'lxr-rootless-shared-'));
    chmodSync(shared, 0o777);
    t.teardown(() => rmSync(shared, { recursive: true, force: true }));
    const dir = rootlessBundle(t, u, runtime, (s) => {
      t.same(s.linux!.uidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: 1200000, size: 65536 }], 'spec --rootless adds the subuid range');
      t.same(s.linux!.gidMappings, [{ containerID: 0, hostID: u.gid, size: 1 }, { containerID: 1, hostID: 1200000, size: 65536 }], 'and the subgid range');
      s.process!.user = { uid: 1000, gid: 1000, additionalGids: [20] };
      s.mounts!.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind'] });
      s.process!.args = ['sh', '-c', 'echo id=$(id -u):$(id -g):$(id -G); echo setgroups=$(cat /proc/self/setgroups); touch /shared/made-inside'];
    });
    mkdirSync(join(dir, 'rootfs', 'shared'));
    execFileSync('chown', [`${u.uid}:${u.gid}`, join(dir, 'rootfs', 'shared')]);
    const r = asUser(u, runtime, ['--root', root, 'run', '-b', dir, uniqueId('rlsub')]);
    t.equal(r.status, 0, r.stderr);
    const o = keyValues(r.stdout);
    t.equal(o.id, '1000:1000:1000 20', 'a non-root user with a supplementary group inside');
    t.equal(o.setgroups, 'allow', 'newgidmap left setgroups allowed');
    const st = statSync(join(shared, 'made-inside'));
    t.equal(st.uid, 1200000 + 999, 'uid 1000 inside is subuid start + 999 outside');
    t.equal(st.gid, 1200000 + 999);
  });

  t.test('a terminal (the default of spec --rootless), on a pty', async (t) => {
    giveSubIds(u, 1200000, 65536);
    const dir = rootlessBundle(t, u, runtime, (s) => {
      s.process!.terminal = true;
      s.process!.args = ['sh', '-c', 'echo tty=$(tty) group=$(stat -c %g $(tty)) mode=$(stat -c %a $(tty))'];
    });
    const r = await runOnPty(['/usr/bin/env', '-u', 'NODE_OPTIONS', SETPRIV, '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups',
      process.execPath, runtime, '--root', root, 'run', '-b', dir, uniqueId('rltty')], { env: { ...cleanEnv(), HOME: u.home }, cwd: u.home });
    const text = r.output;
    t.equal(r.status, 0, text);
    t.match(text, /tty=\/dev\/pts\/0 group=5 mode=620/, 'the pty belongs to the tty group (gid 5, mapped through the subgid range)');
  });

  t.test('create, state, start, kill and delete; no cgroup', async (t) => {
    dropSubIds(u);
    const dir = rootlessBundle(t, u, runtime, (s) => {
      s.process!.args = ['sleep', '600'];
    });
    const id = uniqueId('rllife');
    const c = asUser(u, runtime, ['--root', root, 'create', '-b', dir, id]);
    t.equal(c.status, 0, c.stderr);
    t.teardown(() => {
      asUser(u, runtime, ['--root', root, 'delete', '--force', id]);
    });
    const st = JSON.parse(asUser(u, runtime, ['--root', root, 'state', id]).stdout);
    t.equal(st.status, 'created');
    t.ok(st.pid > 0);
    const status = readFileSync(`/proc/${st.pid}/status`, 'utf8');
    t.match(status, new RegExp(`\\nUid:\\s+${u.uid}\\s`), 'the init runs as the user on the host');
    const cg = readFileSync(`/proc/${st.pid}/cgroup`, 'utf8');
    t.notMatch(cg, new RegExp(id), 'the container has no cgroup of its own');
    t.equal(asUser(u, runtime, ['--root', root, 'start', id]).status, 0);
    t.equal(JSON.parse(asUser(u, runtime, ['--root', root, 'state', id]).stdout).status, 'running');
    const ex = asUser(u, runtime, ['--root', root, 'exec', id, 'sh', '-c', 'echo $(id -u) $(readlink /proc/1/exe)']);
    t.equal(ex.status, 0, ex.stderr);
    t.equal(ex.stdout, '0 /bin/busybox\n', 'exec joins the container as its root');
    const pause = asUser(u, runtime, ['--root', root, 'pause', id]);
    t.not(pause.status, 0, 'pause needs a cgroup');
    t.match(pause.stderr, /has no cgroup/);
    t.equal(asUser(u, runtime, ['--root', root, 'kill', id, 'KILL']).status, 0);
    for (let i = 0; i < 100 && JSON.parse(asUser(u, runtime, ['--root', root, 'state', id]).stdout).status !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(JSON.parse(asUser(u, runtime, ['--root', root, 'state', id]).stdout).status, 'stopped');
    const d = asUser(u, runtime, ['--root', root, 'delete', id]);
    t.equal(d.status, 0, d.stderr);
    t.notOk(existsSync(join(root, id)), 'delete removed the state');
  });

  t.test('errors name the config field, and a failed create leaves nothing behind', async (t) => {
    const fails = (dir: string, re: RegExp, msg: string, env?: NodeJS.ProcessEnv): void => {
      const id = uniqueId('rlerr');
      const r = asUser(u, runtime, ['--root', root, 'run', '-b', dir, id], env ? { env } : {});
      t.not(r.status, 0, msg);
      t.match(r.stderr, re, msg);
      t.equal(r.stderr.trim().split('\n').length, 1, `${msg}: one line: ${r.stderr}`);
      t.notOk(existsSync(join(root, id)), `${msg}: no state left`);
    };
    giveSubIds(u, 1200000, 65536);
    const sub = rootlessBundle(t, u, runtime, (s) => {
      s.process!.args = ['true'];
    });
    fails(sub, /linux\.uidMappings: mapping more than your own uid needs newuidmap \(Debian package uidmap\), which is not installed/, 'newuidmap missing', { PATH: '/nonexistent' });
    dropSubIds(u);
    fails(sub, new RegExp(`linux\\.uidMappings\\[1\\]: host uids 1200000-1265535 are not yours: /etc/subuid has no range for user "${u.name}"`), 'no /etc/subuid range');
    giveSubIds(u, 1300000, 1000);
    fails(sub, new RegExp(`linux\\.uidMappings\\[1\\]: host uids 1200000-1265535 are outside the ranges of user "${u.name}" in /etc/subuid \\(1300000-1300999\\)`), 'a range that is not the user\'s');
    dropSubIds(u);
    const overlap = rootlessBundle(t, u, runtime, (s) => {
      s.linux!.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 0, hostID: 1300000, size: 10 }];
    });
    fails(overlap, /linux\.uidMappings\[1\]: container IDs 0-9 overlap linux\.uidMappings\[0\] \(0\)/, 'overlapping mappings');
    const unmapped = rootlessBundle(t, u, runtime, (s) => {
      s.process!.user = { uid: 1000, gid: 0 };
    });
    fails(unmapped, /process\.user\.uid: 1000 is not mapped by linux\.uidMappings/, 'an unmapped process.user.uid');
    const groups = rootlessBundle(t, u, runtime, (s) => {
      s.process!.user = { uid: 0, gid: 0, additionalGids: [0] };
    });
    fails(groups, /process\.user\.additionalGids: a rootless container that maps only your own gid cannot set supplementary groups/, 'additionalGids without subgid ranges');
    const noUserns = rootlessBundle(t, u, runtime, (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'user');
    });
    fails(noUserns, /linux\.namespaces: lxr-runtime is not running as root \(rootless\), so the container needs a user namespace/, 'no user namespace');
  });
});
