// A throw-away ordinary user (useradd, its own /etc/subuid and /etc/subgid range, no sudo)
// and the lxr CLI run as that user, for the rootless front-end tests.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LXR } from './env.js';

export interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** XDG_RUNTIME_DIR of the user */
  runDir: string;
}

export const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? 'setpriv';

/** What the rootless tests need on the host, or why they cannot run. */
export function rootlessProblem(): string | undefined {
  if (process.getuid!() !== 0) return 'the rootless tests must start as root (they create a user)';
  for (const p of ['/usr/bin/newuidmap', '/usr/bin/newgidmap']) if (!existsSync(p)) return `${p} is missing (Debian package uidmap)`;
  if (spawnSync('useradd', ['--help']).status !== 0) return 'useradd is missing (Debian package passwd)';
  if (spawnSync(SETPRIV, ['--version']).status !== 0) return 'setpriv is missing (util-linux)';
  return undefined;
}

/** useradd/usermod/userdel give up at once on a busy lock: retry a while. */
function shadow(cmd: string, args: string[], check = true): void {
  for (let i = 0; ; i++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return;
    if (i < 100 && /lock|try again/i.test(r.stderr ?? '')) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    if (!check) return;
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  }
}

function subIds(file: string, name: string): { start: number; size: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')).filter((f) => f[0] === name && f.length === 3).map((f) => ({ start: Number(f[1]), size: Number(f[2]) }));
}

export function dropSubIds(u: User): void {
  for (const r of subIds('/etc/subuid', u.name)) shadow('usermod', ['--del-subuids', `${r.start}-${r.start + r.size - 1}`, u.name]);
  for (const r of subIds('/etc/subgid', u.name)) shadow('usermod', ['--del-subgids', `${r.start}-${r.start + r.size - 1}`, u.name]);
}

/** The same range of subordinate uids and gids, replacing whatever the user had. */
export function giveSubIds(u: User, start: number, size: number): void {
  dropSubIds(u);
  shadow('usermod', ['--add-subuids', `${start}-${start + size - 1}`, '--add-subgids', `${start}-${start + size - 1}`, u.name]);
}

/** A user with a home under a fresh temp dir; removed (with its ranges and home) at teardown. */
export function makeUser(t: { teardown(fn: () => void | Promise<void>): void }, prefix: string): User {
  const name = `${prefix}${process.pid % 100000}`;
  const base = mkdtempSync(join(tmpdir(), 'lxr-rootless-fe-'));
  chmodSync(base, 0o755);
  const home = join(base, 'home');
  if (spawnSync('id', ['-u', name]).status === 0) shadow('userdel', ['--remove', name], false);
  shadow('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/sh', '--user-group', name]);
  const uid = Number(execFileSync('id', ['-u', name]).toString());
  const gid = Number(execFileSync('id', ['-g', name]).toString());
  const runDir = join(base, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  chownSync(runDir, uid, gid);
  const u: User = { name, uid, gid, home, runDir };
  t.teardown(() => {
    killUserProcesses(u);
    dropSubIds(u);
    shadow('userdel', ['--remove', name], false);
    rmSync(base, { recursive: true, force: true });
  });
  return u;
}

/** Live (not zombie) processes of the user: pid and command line. */
export function userProcesses(u: User): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      if (!new RegExp(`^Uid:\\s+${u.uid}\\s`, 'm').test(status)) continue;
      if (/^State:\s+Z/m.test(status)) continue;
      out.push({ pid: Number(p), cmd: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Teardown only: whatever the test user still runs (after a failed test) is ours to stop. */
function killUserProcesses(u: User): void {
  for (const p of userProcesses(u)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export interface UserResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The user's environment: HOME, XDG_RUNTIME_DIR, PATH and nothing of lxr's. */
export function userEnv(u: User, extra: Record<string, string | undefined> = {}): string[] {
  const env: Record<string, string | undefined> = {
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, USER: u.name, LOGNAME: u.name, XDG_RUNTIME_DIR: u.runDir, ...extra,
  };
  return Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
}

function userArgv(u: User, argv: string[], extra: Record<string, string | undefined>): string[] {
  // env -i: nothing of the test's environment (tap's NODE_OPTIONS, LXR_*) reaches the user
  return ['-i', ...userEnv(u, extra), SETPRIV, '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', ...argv];
}

/** Run a command as the user, output in files (a background container keeps pipes open). */
export function asUser(u: User, argv: string[], opts: { env?: Record<string, string | undefined>; timeout?: number } = {}): UserResult {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-rl-out-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  try {
    const r = spawnSync('/usr/bin/env', userArgv(u, argv, opts.env ?? {}), { stdio: ['ignore', outFd, errFd], timeout: opts.timeout ?? 120000, cwd: u.home });
    return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `lxr ARGS` as the user. */
export function lxrAsUser(u: User, args: string[], opts: { env?: Record<string, string | undefined>; timeout?: number } = {}): UserResult {
  return asUser(u, [process.execPath, LXR, ...args], opts);
}

/** `lxr ARGS` as the user, without blocking the test's event loop (a registry runs in it). */
export function lxrAsUserAsync(u: User, args: string[], opts: { env?: Record<string, string | undefined> } = {}): Promise<UserResult> {
  return new Promise((resolve) => {
    const c = spawn('/usr/bin/env', userArgv(u, [process.execPath, LXR, ...args], opts.env ?? {}), { stdio: ['ignore', 'pipe', 'pipe'], cwd: u.home });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Files and directories under `dir` owned by root (uid 0 on the host). */
export function rootOwnedUnder(dir: string): string[] {
  const r = spawnSync('find', [dir, '-xdev', '-uid', '0'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}
