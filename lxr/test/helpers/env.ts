// lxr test helpers: a busybox-based image pushed to a loopback registry, temp LXR_ROOT /
// LXR_RUN_ROOT / image store per test file, the built lxr CLI, and clean-up checks.
import { tarOf, tarOfFiles, type TarEntry } from '../../../test/helpers/tar.js';
export type { TarEntry };
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pushImage } from '../../../image-tool/index.js';
import { startRegistry } from '../../../image-tool/test/helpers/registry.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const LXR = join(REPO, 'bin', 'lxr.js');
export const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

const APPLETS = ['httpd', 'wget', 'nc', 'ping', 'sh', 'ls', 'cat', 'echo', 'hostname', 'id', 'true', 'false', 'sleep', 'ps', 'mount', 'touch', 'mkdir', 'grep', 'env', 'pwd', 'wc', 'head', 'kill', 'trap', 'seq', 'tail', 'stat', 'readlink', 'test', 'printf', 'ip', 'whoami'];

type Entry = TarEntry;
export { tarOf };



const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface TestImageSpec {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  stopSignal?: string;
  /** HEALTHCHECK, as docker writes it in the config (durations in nanoseconds) */
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  /** EXPOSE: "80/tcp" ... */
  exposedPorts?: string[];
  user?: string;
  workdir?: string;
  /** add the host's glibc (loader, libc, libstdc++ ...: enough for a dynamically linked Node) */
  glibc?: boolean;
  /** extra layers on top of the busybox layer (path -> content) */
  extraLayers?: Record<string, string>[];
  /** extra layers given as tar entries (ownership, modes, symlinks), after extraLayers */
  entryLayers?: TarEntry[][];
}

/** The busybox layer: /bin/busybox plus applet symlinks, /etc/passwd and group, empty dirs. */
export function busyboxLayer(): Buffer {
  const entries: Entry[] = [];
  for (const d of ['bin/', 'etc/', 'tmp/', 'proc/', 'sys/', 'dev/', 'root/', 'home/', 'home/dev/', 'var/', 'data/']) entries.push({ path: d, type: 'dir', mode: d === 'tmp/' ? 0o1777 : 0o755 });
  entries.push({ path: 'bin/busybox', type: 'file', data: readFileSync(BUSYBOX!), mode: 0o755 });
  for (const a of APPLETS) entries.push({ path: `bin/${a}`, type: 'symlink', link: 'busybox' });
  entries.push({ path: 'etc/passwd', type: 'file', data: 'root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:dev:/home/dev:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' });
  entries.push({ path: 'etc/group', type: 'file', data: 'root:x:0:\ndev:x:1000:\nnogroup:x:65534:\n' });
  return tarOf(entries);
}

const GLIBC = ['ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'libstdc++.so.6', 'libgcc_s.so.1', 'librt.so.1'];

/** The host's glibc and C++ runtime, as a layer (lib/x86_64-linux-gnu, lib64/ld-linux-x86-64.so.2). */
export function glibcLayer(): Buffer {
  const dir = '/lib/x86_64-linux-gnu';
  const entries: Entry[] = [{ path: 'lib/', type: 'dir' }, { path: 'lib/x86_64-linux-gnu/', type: 'dir' }, { path: 'lib64/', type: 'dir' }];
  for (const f of GLIBC) if (existsSync(join(dir, f))) entries.push({ path: `lib/x86_64-linux-gnu/${f}`, type: 'file', data: readFileSync(join(dir, f)), mode: 0o755 });
  entries.push({ path: 'lib64/ld-linux-x86-64.so.2', type: 'symlink', link: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' });
  return tarOf(entries);
}

/** Write an OCI image layout holding one image named `name`. */
export function buildTestImage(layout: string, name: string, spec: TestImageSpec = {}): { manifestDigest: string } {
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(join(layout, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const tars = [busyboxLayer(), ...(spec.glibc ? [glibcLayer()] : []), ...(spec.extraLayers ?? []).map(tarOfFiles), ...(spec.entryLayers ?? []).map(tarOf)];
  const layers = tars.map((t) => {
    const gz = gzipSync(t, { level: 1 });
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blob(gz), size: gz.length };
  });
  const config = Buffer.from(JSON.stringify({
    created: '2024-01-01T00:00:00Z', architecture: 'amd64', os: 'linux',
    config: {
      Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: spec.cmd ?? ['sh'],
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
      ...(spec.healthcheck ? { Healthcheck: spec.healthcheck } : {}),
      ...(spec.exposedPorts ? { ExposedPorts: Object.fromEntries(spec.exposedPorts.map((p) => [p, {}])) } : {}),
      ...(spec.user ? { User: spec.user } : {}),
      ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    },
    rootfs: { type: 'layers', diff_ids: tars.map((t) => sha(t)) },
  }));
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob(config), size: config.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers }));
  const md = blob(manifest);
  // beside the images already in the layout (another name, or the same name replaced)
  const indexFile = join(layout, 'index.json');
  const others = existsSync(indexFile)
    ? (JSON.parse(readFileSync(indexFile, 'utf8')).manifests as { annotations?: Record<string, string> }[]).filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== name)
    : [];
  writeFileSync(indexFile, JSON.stringify({
    schemaVersion: 2,
    manifests: [...others, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': name } }],
  }));
  return { manifestDigest: md };
}

/** Build the image and push it to the registry at `host` as repoTag. Returns the full name. */
export async function pushTestImage(host: string, repoTag: string, spec: TestImageSpec = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-fe-seed-'));
  try {
    const name = `${host}/${repoTag}`;
    buildTestImage(dir, name, spec);
    await pushImage({ store: dir, reference: name, retry: { attempts: 1 } });
    return name;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The image of a test file: a registry on 127.0.0.1 for the file (stopped at its end), and
 * the test image pushed to it. Returns the image's full name.
 */
export async function registryImage(t: { teardown(fn: () => void | Promise<void>): void }, repoTag: string, spec: TestImageSpec = {}): Promise<string> {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  return pushTestImage(reg.host, repoTag, spec);
}

export interface LxrEnv {
  root: string;
  runRoot: string;
  store: string;
  env: NodeJS.ProcessEnv;
  /** containers' cgroups are /<cgroupParent>/<id> */
  cgroupParent: string;
  /** the network state (LXR_NET_STATE_DIR): the test's own, never the host's /run/lxr-net */
  netState: string;
}

/** Temp LXR_ROOT, LXR_RUN_ROOT and store; teardown force-removes every container first. */
export function lxrEnv(t: { teardown(fn: () => void | Promise<void>): void }): LxrEnv {
  const base = mkdtempSync(join(tmpdir(), 'lxr-fe-'));
  const e: LxrEnv = {
    root: join(base, 'root'),
    runRoot: join(base, 'run'),
    store: join(base, 'root', 'images'),
    env: {},
    cgroupParent: '',
    netState: join(base, 'net'),
  };
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG']) if (process.env[k]) env[k] = process.env[k];
  e.cgroupParent = `lxr-test-${base.slice(-6).replace(/[^a-zA-Z0-9]/g, '')}`;
  e.env = { ...env, LXR_ROOT: e.root, LXR_RUN_ROOT: e.runRoot, LXR_IMAGE_STORE: e.store, LXR_CGROUP_PARENT: e.cgroupParent, LXR_NETWORK: 'none', LXR_NETNS_PREFIX: e.cgroupParent, LXR_NET_STATE_DIR: e.netState };
  t.teardown(() => {
    const ids = existsSync(join(e.root, 'containers')) ? readdirSync(join(e.root, 'containers')).filter((f) => /^[0-9a-f]{64}$/.test(f)) : [];
    if (ids.length) lxr(e, ['rm', '-f', ...ids]);
    // anything a failed test left mounted under the temp dir
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(base)).reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    for (const c of CONTROLLERS) spawnSync('rmdir', [`/sys/fs/cgroup/${c}/${e.cgroupParent}`]);
    for (const n of netnsLeft(e)) spawnSync('ip', ['netns', 'del', n]);
    rmSync(base, { recursive: true, force: true });
  });
  return e;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI; output goes to files (a detached monitor must not hold our pipes). */
export function lxr(e: LxrEnv, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}): CliResult {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-fe-cli-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  try {
    const r = spawnSync(process.execPath, [LXR, ...args], {
      input: opts.input ?? '', stdio: ['pipe', outFd, errFd], timeout: opts.timeout ?? 60000, env: { ...e.env, ...(opts.env ?? {}) },
    });
    return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The CLI, asynchronously (for -f and other long-running commands). */
export function lxrAsync(e: LxrEnv, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [LXR, ...args], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Network namespaces (under /run/netns) of this env's containers. */
export function netnsLeft(e: LxrEnv): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`${e.cgroupParent}-`)) : [];
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

const CONTROLLERS = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd', 'unified'];

export function cgroupExists(e: LxrEnv, id: string): boolean {
  return CONTROLLERS.some((c) => existsSync(`/sys/fs/cgroup/${c}/${e.cgroupParent}/${id}`));
}

/** Container cgroups left under this env's parent, in any controller, as CONTROLLER/PARENT/ID (under /sys/fs/cgroup). */
export function cgroupsLeft(e: LxrEnv): string[] {
  const out: string[] = [];
  for (const c of CONTROLLERS) {
    try {
      for (const d of readdirSync(`/sys/fs/cgroup/${c}/${e.cgroupParent}`, { withFileTypes: true })) if (d.isDirectory()) out.push(`${c}/${e.cgroupParent}/${d.name}`);
    } catch {
      /* no such parent */
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { until } from '../../../test/helpers/until.js';
