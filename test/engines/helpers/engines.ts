// Private container engines for the tests: a containerd with its own root, state,
// socket and config under a temp dir, and a podman store (--root, --runroot, its own
// containers.conf and storage.conf). Both are driven through their CLIs (ctr, podman),
// with lxr-runtime (bin/lxr-runtime.js, executed directly: it is a `#!/usr/bin/env node`
// script) or runc as the OCI runtime. Everything they make is removed by stop().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDockerArchive } from './image.js';
import { runOnPty } from '../../helpers/pty.js';
import { until as waitUntil } from '../../helpers/until.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const LXR_RUNTIME = join(REPO, 'bin', 'lxr-runtime.js');
export const IMAGE = 'localhost/lxr-engine-test:1';

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The environment for engines and runtimes: no tap loaders, no slow CA bundle. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('_TAPJS')) delete env[k];
  env.PATH = env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a command with stdout and stderr in files, not pipes: a detached container (or
 * a shim, or conmon) may inherit them and keep a pipe open long after the CLI exits.
 */
export function runCmd(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string; noStdin?: boolean } = {}): Result {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-eng-cmd-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  try {
    const r = spawnSync(cmd, args, { input: opts.input ?? '', stdio: [opts.noStdin ? 'ignore' : 'pipe', outFd, errFd], timeout: opts.timeout ?? 60000, env: opts.env ?? cleanEnv() });
    return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') + (r.error ? `\n${r.error.message}` : '') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run a command on a pseudo-terminal, for -t: what it writes comes back as stdout. */
export async function onTty(cmd: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Result> {
  const r = await runOnPty(cmd, { env: opts.env ?? cleanEnv(), timeout: opts.timeout ?? 60000 });
  return { status: r.status, stdout: r.output, stderr: r.signal ? `killed by ${r.signal}` : '' };
}

/** Poll until fn() is true (no timing assertion: gives up after `ms` and returns false). */
/** test/helpers/until.ts, with the engines' longer default bound and poll. */
export function until(fn: () => boolean, ms = 20000): Promise<boolean | undefined> {
  return waitUntil(fn, ms, 100);
}

/** Unmount everything at or under dir (deepest first). */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

/** Remove the empty cgroup directories `/sys/fs/cgroup/<hierarchy>/<rel>` (deepest first). */
export function removeCgroupDirs(rel: string): void {
  const base = '/sys/fs/cgroup';
  let hier: string[] = [];
  try {
    hier = readdirSync(base);
  } catch {
    return;
  }
  for (const h of hier) {
    const top = join(base, h, rel);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      dirs.push(d);
      try {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      } catch {
        /* gone */
      }
    };
    walk(top);
    for (const d of dirs.sort((a, b) => b.length - a.length)) {
      try {
        rmSync(d, { recursive: false });
      } catch {
        spawnSync('rmdir', [d]);
      }
    }
  }
}

export function cgroupDirsLeft(rel: string): string[] {
  const base = '/sys/fs/cgroup';
  const out: string[] = [];
  try {
    for (const h of readdirSync(base)) if (existsSync(join(base, h, rel))) out.push(join(base, h, rel));
  } catch {
    /* no cgroupfs */
  }
  return out;
}

// ---------------------------------------------------------------------------- containerd

export interface Containerd {
  dir: string;
  socket: string;
  namespace: string;
  /** the --runc-root given to the shim (one per runtime) */
  runcRoot(runtime: string): string;
  ctr(args: string[], opts?: { timeout?: number }): Result;
  /** ctr on a terminal */
  ctrTty(args: string[], opts?: { timeout?: number }): Promise<Result>;
  /** `ctr run` flags: the runtime binary (none for runc), its root, the fifo dir */
  runtimeFlags(runtime: string): string[];
  /** `ctr task exec` flags: the fifo dir (ctr's default is /run/containerd/fifo) */
  fifoFlags: string[];
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ctd-'));
  // ctr and the shims put fifos and sockets under /run/containerd whatever the config
  // says: remove those directories afterwards if this test made them and they are empty
  const sharedDirs = ['/run/containerd/fifo', '/run/containerd/s', '/run/containerd'].filter((d) => !existsSync(d));
  const socket = join(dir, 'c.sock');
  const namespace = `lxrtest${process.pid}`;
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    // only what the tests use: no CRI, no remote snapshotters
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]', `  address = "${socket}"`,
    '[ttrpc]', `  address = "${socket}.ttrpc"`,
    '[debug]', `  address = "${dir}/debug.sock"`, '  level = "info"',
    '',
  ].join('\n'));
  const logFd = openSync(join(dir, 'containerd.log'), 'w');
  const proc: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', logFd, logFd], env: cleanEnv(), detached: false });
  closeSync(logFd);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const env = cleanEnv();
  const ctr = (args: string[], opts: { timeout?: number } = {}) => runCmd('ctr', ['-a', socket, '-n', namespace, ...args], { env, ...opts });
  const ctrTty = (args: string[], opts: { timeout?: number } = {}) => onTty(['ctr', '-a', socket, '-n', namespace, ...args], { env, ...opts });
  const roots = new Map<string, string>();
  const runcRoot = (runtime: string) => {
    let r = roots.get(runtime);
    if (!r) {
      r = join(dir, `runc-root-${roots.size}`);
      roots.set(runtime, r);
    }
    return r;
  };
  const stop = async () => {
    // remove whatever a failed test left: tasks, containers, then the daemon
    const left = ctr(['containers', 'list', '-q']).stdout.split('\n').filter(Boolean);
    for (const id of left) {
      ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      ctr(['task', 'delete', '-f', id]);
      ctr(['containers', 'delete', id]);
    }
    ctr(['images', 'rm', IMAGE]);
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }
    unmountUnder(dir);
    removeCgroupDirs(namespace);
    rmSync(dir, { recursive: true, force: true });
    for (const d of sharedDirs) {
      try {
        rmdirSync(d);
      } catch {
        /* in use, or not empty */
      }
    }
  };
  const up = await until(() => existsSync(socket) && ctr(['version']).status === 0, 20000);
  if (!up) {
    await stop();
    throw new Error(`containerd did not start (socket ${socket}); see its log`);
  }
  return {
    dir, socket, namespace, runcRoot, ctr, ctrTty, stop,
    runtimeFlags: (runtime) => ['--fifo-dir', join(dir, 'fifo'), '--runc-root', runcRoot(runtime), ...(runtime === 'runc' ? [] : ['--runc-binary', runtime])],
    fifoFlags: ['--fifo-dir', join(dir, 'fifo')],
  };
}

/** Build the test image as a docker-archive in dir and return its path. */
export function imageArchive(dir: string): string {
  const file = join(dir, 'image.tar');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeDockerArchive(file, IMAGE);
  }
  return file;
}

// ---------------------------------------------------------------------------- podman

export interface Podman {
  dir: string;
  /** podman with the store flags and --runtime */
  podman(runtime: string, args: string[], opts?: { timeout?: number }): Result;
  podmanTty(runtime: string, args: string[], opts?: { timeout?: number }): Promise<Result>;
  stop(): Promise<void>;
}

function hardLimit(name: string): string {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/)[1] ?? 'unlimited';
}

export async function startPodman(): Promise<Podman> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-podman-'));
  for (const d of ['root', 'runroot', 'tmp', 'networks', 'volumes']) mkdirSync(join(dir, d), { recursive: true });
  // Podman's default rlimits (nofile and nproc 1048576) are above what this host lets
  // even root raise to (no CAP_SYS_RESOURCE beyond the hard limits): runc refuses them
  // too. Ask for what the host has.
  const nofile = hardLimit('Max open files');
  writeFileSync(join(dir, 'containers.conf'), [
    '[containers]',
    `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=4096:4096"]`,
    'log_driver = "k8s-file"',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${dir}/events.log"`,
    `tmp_dir = "${dir}/tmp"`,
    `volume_path = "${dir}/volumes"`,
    '[network]',
    `network_config_dir = "${dir}/networks"`,
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'storage.conf'), ['[storage]', 'driver = "overlay"', `graphroot = "${dir}/root"`, `runroot = "${dir}/runroot"`, ''].join('\n'));
  const env = { ...cleanEnv(), CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') };
  const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const podman = (runtime: string, args: string[], opts: { timeout?: number } = {}) => runCmd('podman', [...base, '--runtime', runtime, ...args], { env, ...opts });
  const podmanTty = (runtime: string, args: string[], opts: { timeout?: number } = {}) => onTty(['podman', ...base, '--runtime', runtime, ...args], { env, ...opts });
  const stop = async () => {
    podman('runc', ['rm', '-a', '-f', '-t', '0']);
    podman('runc', ['rmi', '-a', '-f']);
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, podman, podmanTty, stop };
}
