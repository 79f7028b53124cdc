// A private containerd with its CRI plugin, driven through the CRI gRPC API (runtime.v1,
// the vendored test/engines/cri/api.proto) as kubelet drives it. It has its own root,
// state, socket, CNI config (bridge lxrcri13, 10.213.13.0/24: no other test uses them),
// the overlayfs snapshotter and two runtime handlers: `lxr` (this tree's lxr-runtime, as
// the BinaryName of the runc shim) and `runc`. Its two images, a static pause and
// busybox, are built here and imported with `ctr -n k8s.io images import`.
// stop() removes everything: pods, the daemon (only the one started here), its
// directories, the bridge, the CNI cache files and any iptables rule naming the subnet.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BUSYBOX } from './image.js';
import { REPO, cleanEnv, removeCgroupDirs, runCmd, unmountUnder, until, which, type Result } from './engines.js';
import { tarOf, type TarEntry } from '../../helpers/tar.js';
import { until as waitUntil } from '../../helpers/until.js';

export const PROTO = join(REPO, 'test', 'engines', 'cri', 'api.proto');
export const PAUSE_IMAGE = 'localhost/lxr-cri-pause:1';
export const BUSYBOX_IMAGE = 'localhost/lxr-cri-busybox:1';
export const BRIDGE = 'lxrcri13';
export const SUBNET = '10.213.13.0/24';
export const GATEWAY = '10.213.13.1';
const NETWORK = 'lxr-cri-test';
export const HANDLERS = ['runc', 'lxr'] as const;
export type Handler = (typeof HANDLERS)[number];

/** What the test needs on the host, or why it cannot run. */
export function criMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'the CRI test needs root';
  const missing = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'gcc', 'ip', 'iptables-save'].filter((c) => !which(c));
  if (missing.length) return `not installed: ${missing.join(', ')} (scripts/setup-debian.sh --test)`;
  if (!BUSYBOX) return 'busybox is not installed (apt-get install busybox-static)';
  for (const p of ['bridge', 'host-local', 'loopback']) if (!existsSync(join('/usr/lib/cni', p))) return `CNI plugin /usr/lib/cni/${p} is missing (apt-get install containernetworking-plugins)`;
  if (!existsSync(join(REPO, 'dist', 'lxr-runtime.js'))) return 'dist/lxr-runtime.js is missing: run npm run build';
  if (spawnSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' }).status === 0) return `the bridge ${BRIDGE} exists already (another CRI test running?)`;
  return undefined;
}

// ---------------------------------------------------------------------------- images

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function dockerArchive(file: string, name: string, layer: Buffer, cfg: object): void {
  const layerSum = sha(layer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: cfg,
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerSum}`] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'lxr CRI test' }],
  }));
  const configSum = sha(config);
  const manifest = Buffer.from(JSON.stringify([{ Config: `${configSum}.json`, RepoTags: [name], Layers: [`${layerSum}/layer.tar`] }]));
  writeFileSync(file, tarOf([
    { path: `${layerSum}/`, type: 'dir' },
    { path: `${layerSum}/layer.tar`, type: 'file', data: layer },
    { path: `${configSum}.json`, type: 'file', data: config },
    { path: 'manifest.json', type: 'file', data: manifest },
  ]));
}

const APPLETS = ['sh', 'cat', 'echo', 'hostname', 'id', 'true', 'false', 'sleep', 'ps', 'mount', 'touch', 'mkdir', 'grep', 'readlink', 'test',
  'env', 'head', 'tail', 'kill', 'ip', 'tty', 'setsid', 'ls', 'rm', 'stat', 'wc', 'dd'];

/** Build the pause (a static C program) and busybox images as docker archives in dir. */
export function buildImages(dir: string): { pause: string; busybox: string } {
  const pauseBin = join(dir, 'pause');
  const cc = spawnSync('gcc', ['-static', '-Os', '-s', '-o', pauseBin, join(REPO, 'test', 'engines', 'cri', 'pause.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`building the pause program: ${cc.stderr}`);
  const pause = join(dir, 'pause.tar');
  dockerArchive(pause, PAUSE_IMAGE, tarOf([{ path: 'pause', type: 'file', data: readFileSync(pauseBin), mode: 0o755 }]), { Entrypoint: ['/pause'] });
  const entries: TarEntry[] = [];
  for (const d of ['bin/', 'etc/', 'tmp/', 'proc/', 'sys/', 'dev/', 'root/', 'home/', 'home/user/', 'var/', 'run/', 'mnt/']) {
    entries.push({ path: d, type: 'dir', mode: d === 'tmp/' ? 0o1777 : 0o755 });
  }
  entries.push({ path: 'bin/busybox', type: 'file', data: readFileSync(BUSYBOX!), mode: 0o755 });
  for (const a of APPLETS) entries.push({ path: `bin/${a}`, type: 'symlink', link: 'busybox' });
  entries.push({ path: 'etc/passwd', type: 'file', data: 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' });
  entries.push({ path: 'etc/group', type: 'file', data: 'root:x:0:\nuser:x:1000:\n' });
  const busybox = join(dir, 'busybox.tar');
  dockerArchive(busybox, BUSYBOX_IMAGE, tarOf(entries), { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' });
  return { pause, busybox };
}

// ---------------------------------------------------------------------------- the daemon

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Msg = Record<string, any>;

export interface Cri {
  dir: string;
  socket: string;
  /** the runtime's --root per handler (the shim adds /k8s.io) */
  runtimeRoot: Record<Handler, string>;
  /** the cgroup parent of every pod (relative to each hierarchy's root) */
  cgroupParent: string;
  /** the /var/run/netns names of the pods run here */
  netns: Set<string>;
  /** a RuntimeService call; resolves with the response or rejects with the gRPC error */
  rt(method: string, req: Msg, timeoutMs?: number): Promise<Msg>;
  img(method: string, req: Msg, timeoutMs?: number): Promise<Msg>;
  ctr(args: string[]): Result;
  log(): string;
  stop(): Promise<void>;
}

export async function startCri(): Promise<Cri> {
  const dir = mkdtempSync('/var/tmp/lxr-cri-');
  const socket = join(dir, 'c.sock');
  const cgroupParent = `lxrcri${process.pid}`;
  const runtimeRoot = { runc: join(dir, 'rt-runc'), lxr: join(dir, 'rt-lxr') };
  const netnsBefore = new Set(existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : []);
  mkdirSync(join(dir, 'cni'), { recursive: true });
  // the runc shim execs BinaryName with the runtime's arguments: node and the CLI, through sh
  const wrapper = join(dir, 'lxr-runtime');
  // (LXR_CRI_TRACE=FILE: append each command line to FILE, to see what containerd calls)
  const trace = process.env['LXR_CRI_TRACE'] ? `echo "$*" >> ${process.env['LXR_CRI_TRACE']}\n` : '';
  writeFileSync(wrapper, `#!/bin/sh\n${trace}exec ${process.execPath} ${join(REPO, 'bin', 'lxr-runtime.js')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  writeFileSync(join(dir, 'cni', '10-lxr-cri.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: NETWORK,
    plugins: [{
      type: 'bridge', bridge: BRIDGE, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'ipam') },
    }],
  }));
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]', `  address = "${socket}"`,
    '[ttrpc]', `  address = "${socket}.ttrpc"`,
    '[debug]', `  address = "${dir}/debug.sock"`, '  level = "info"',
    '[plugins."io.containerd.internal.v1.opt"]', `  path = "${dir}/opt"`,
    `${cri}]`,
    `  sandbox_image = "${PAUSE_IMAGE}"`,
    // no CAP_SYS_RESOURCE on these machines: the sandbox's oom_score_adj would fail
    '  restrict_oom_score_adj = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    // lxr-runtime refuses process.apparmorProfile (no AppArmor support), and on a host with
    // AppArmor enabled containerd gives every container its runtime/default profile
    '  disable_apparmor = true',
    `${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `${cri}.containerd.runtimes.runc]`, '  runtime_type = "io.containerd.runc.v2"',
    `${cri}.containerd.runtimes.runc.options]`, `  BinaryName = "${which('runc')}"`, `  Root = "${runtimeRoot.runc}"`,
    `${cri}.containerd.runtimes.lxr]`, '  runtime_type = "io.containerd.runc.v2"',
    `${cri}.containerd.runtimes.lxr.options]`, `  BinaryName = "${wrapper}"`, `  Root = "${runtimeRoot.lxr}"`,
    `${cri}.cni]`, '  bin_dir = "/usr/lib/cni"', `  conf_dir = "${dir}/cni"`, '  max_conf_num = 1',
    '',
  ].join('\n'));
  const logFd = openSync(join(dir, 'containerd.log'), 'w');
  const proc: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', logFd, logFd], env: cleanEnv() });
  closeSync(logFd);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ctr = (args: string[]) => runCmd('ctr', ['-a', socket, '-n', 'k8s.io', ...args], { timeout: 120000 });

  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const v1 = (grpc.loadPackageDefinition(def) as any).runtime.v1;
  const rtClient = new v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const imgClient = new v1.ImageService(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = (client: any, method: string, req: Msg, timeoutMs = 120000): Promise<Msg> => {
    return new Promise((resolve, reject) => {
      client[method](req, { deadline: Date.now() + timeoutMs }, (err: Error | null, resp: Msg) => {
        if (err) reject(Object.assign(new Error(`${method}: ${err.message}`), { code: (err as grpc.ServiceError).code }));
        else resolve(resp);
      });
    });
  };
  const rt = (m: string, req: Msg, ms?: number) => call(rtClient, m, req, ms);
  const img = (m: string, req: Msg, ms?: number) => call(imgClient, m, req, ms);

  const madeNetns = new Set<string>();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // whatever a failed test left: pods (their containers go with them)
    try {
      const pods = await rt('ListPodSandbox', {}, 30000);
      for (const p of pods.items ?? []) {
        await rt('StopPodSandbox', { pod_sandbox_id: p.id }, 60000).catch(() => undefined);
        await rt('RemovePodSandbox', { pod_sandbox_id: p.id }, 60000).catch(() => undefined);
      }
    } catch {
      /* the daemon is not answering */
    }
    rtClient.close();
    imgClient.close();
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
      await exited;
      clearTimeout(t);
    }
    // pods containerd could not remove (a runtime that failed them): their processes are in
    // this daemon's cgroups, their shims name its socket
    for (const pid of [...pidsUnder(cgroupParent), ...shimsOf(c)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await until(() => pidsUnder(cgroupParent).length === 0 && shimsOf(c).length === 0, 10000);
    unmountUnder(dir);
    removeCgroupDirs(cgroupParent); // v1: in every hierarchy
    removeV2Tree(join('/sys/fs/cgroup', cgroupParent));
    // the netns files containerd made for this daemon's pods
    if (existsSync('/var/run/netns')) {
      for (const n of readdirSync('/var/run/netns')) {
        if (netnsBefore.has(n) || !n.startsWith('cni-')) continue;
        if (madeNetns.has(n)) {
          spawnSync('umount', [join('/var/run/netns', n)]);
          rmSync(join('/var/run/netns', n), { force: true });
        }
      }
    }
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    removeIptablesRules();
    for (const f of existsSync('/var/lib/cni/results') ? readdirSync('/var/lib/cni/results') : []) {
      if (f.startsWith(`${NETWORK}-`)) rmSync(join('/var/lib/cni/results', f), { force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const up = await until(() => existsSync(socket) && runCmd('ctr', ['-a', socket, 'version']).status === 0, 30000);
  const log = () => {
    try {
      return readFileSync(join(dir, 'containerd.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const c: Cri = { dir, socket, runtimeRoot, cgroupParent, netns: madeNetns, rt, img, ctr, log, stop };
  if (!up) {
    const l = log().slice(-2000);
    await stop();
    throw new Error(`containerd did not start (socket ${socket}): ${l}`);
  }
  // record the netns of every pod made here, for the cleanup
  const origRt = c.rt;
  c.rt = async (m, req, ms) => {
    const r = await origRt(m, req, ms);
    if (m === 'RunPodSandbox') {
      try {
        const st = await origRt('PodSandboxStatus', { pod_sandbox_id: r.pod_sandbox_id, verbose: true });
        const ns = /\/var\/run\/netns\/(cni-[0-9a-f-]+)/.exec(st.info?.info ?? '')?.[1];
        if (ns) madeNetns.add(ns);
      } catch {
        /* only for the cleanup */
      }
    }
    return r;
  };
  return c;
}

/** The processes in the cgroup trees `rel` (v1: the pids hierarchy, v2: the unified one). */
function pidsUnder(rel: string): number[] {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const top = v2 ? join('/sys/fs/cgroup', rel) : join('/sys/fs/cgroup/pids', rel);
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.push(Number(l));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      /* gone */
    }
  };
  if (existsSync(top)) walk(top);
  return out;
}

/** cgroup v2: rmdir a cgroup tree, deepest first (nothing of it on v1). */
function removeV2Tree(top: string): void {
  if (!existsSync(join(top, 'cgroup.procs')) || existsSync(join(top, 'tasks'))) return;
  const dirs: string[] = [];
  const walk = (d: string) => {
    dirs.push(d);
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(top);
  for (const d of dirs.reverse()) spawnSync('rmdir', [d]);
}

/** Remove iptables rules that name the test's subnet or bridge (the bridge plugin adds none with ipMasq off). */
export function iptablesRulesLeft(): string[] {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => l.startsWith('-A ') && (l.includes(SUBNET) || l.includes(BRIDGE) || l.includes(NETWORK)));
}

function removeIptablesRules(): void {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  let table = 'filter';
  for (const l of (r.stdout ?? '').split('\n')) {
    if (l.startsWith('*')) table = l.slice(1);
    if (l.startsWith('-A ') && (l.includes(SUBNET) || l.includes(BRIDGE) || l.includes(NETWORK))) {
      spawnSync('sh', ['-c', `iptables -t ${table} -D ${l.slice(3)}`]);
    }
  }
}

/** Import both images into the k8s.io namespace. */
export function importImages(c: Cri): void {
  const { pause, busybox } = buildImages(c.dir);
  for (const f of [pause, busybox]) {
    const r = c.ctr(['images', 'import', '--snapshotter', 'overlayfs', f]);
    if (r.status !== 0) throw new Error(`ctr images import ${f}: ${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------- pods

export type NsMode = 'POD' | 'CONTAINER' | 'NODE';

export interface PodOptions {
  hostname?: string;
  dns?: { servers: string[]; searches: string[]; options: string[] };
  pid?: NsMode;
}

let seq = 0;

export function podConfig(c: Cri, handler: Handler, name: string, o: PodOptions = {}): Msg {
  const uid = `${handler}-${name}-${process.pid}-${++seq}`;
  const logDir = join(c.dir, 'logs', uid);
  mkdirSync(logDir, { recursive: true });
  return {
    metadata: { name: `${handler}-${name}`, uid, namespace: 'lxr-test', attempt: 0 },
    hostname: o.hostname ?? `${handler}-${name}`,
    log_directory: logDir,
    dns_config: o.dns ?? { servers: [], searches: [], options: [] },
    labels: {}, annotations: {},
    linux: {
      cgroup_parent: `/${c.cgroupParent}/${uid}`,
      security_context: { namespace_options: { network: 'POD', pid: o.pid ?? 'CONTAINER', ipc: 'POD' } },
    },
  };
}

export interface ContainerOptions {
  command: string[];
  resources?: Msg;
  security?: Msg;
  mounts?: Msg[];
}

export const MASKED = ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'];
export const READONLY = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** A container config as kubelet writes it (namespace options of the pod, kubelet's masked paths). */
export function containerConfig(pod: Msg, name: string, o: ContainerOptions): Msg {
  return {
    metadata: { name, attempt: 0 },
    image: { image: BUSYBOX_IMAGE },
    command: o.command, args: [], working_dir: '', envs: [{ key: 'LXR_TEST', value: Buffer.from(name) }], // KeyValue.value is `bytes` in this api.proto
    mounts: o.mounts ?? [], labels: {}, annotations: {},
    log_path: `${name}.log`,
    linux: {
      resources: o.resources ?? {},
      security_context: {
        namespace_options: pod.linux.security_context.namespace_options,
        masked_paths: MASKED, readonly_paths: READONLY,
        ...o.security,
      },
    },
  };
}

export async function runPod(c: Cri, handler: Handler, config: Msg): Promise<string> {
  const r = await c.rt('RunPodSandbox', { config, runtime_handler: handler });
  return r.pod_sandbox_id as string;
}

export async function startContainer(c: Cri, podId: string, pod: Msg, name: string, o: ContainerOptions): Promise<string> {
  const r = await c.rt('CreateContainer', { pod_sandbox_id: podId, config: containerConfig(pod, name, o), sandbox_config: pod });
  await c.rt('StartContainer', { container_id: r.container_id });
  return r.container_id as string;
}

export async function removePod(c: Cri, podId: string): Promise<void> {
  await c.rt('StopPodSandbox', { pod_sandbox_id: podId });
  await c.rt('RemovePodSandbox', { pod_sandbox_id: podId });
}

export async function execSync(c: Cri, id: string, cmd: string[], timeout = 0): Promise<{ stdout: string; stderr: string; exit_code: number }> {
  const r = await c.rt('ExecSync', { container_id: id, cmd, timeout });
  return { stdout: Buffer.from(r.stdout ?? []).toString(), stderr: Buffer.from(r.stderr ?? []).toString(), exit_code: r.exit_code };
}

/** Wait until fn resolves true (async version of until()). */
export function untilAsync(fn: () => Promise<boolean>, ms = 30000): Promise<boolean | undefined> {
  return waitUntil(() => fn().catch(() => false), ms, 100);
}

/**
 * Exec through the streaming server, as `kubectl exec -t` does: the URL from Exec, opened
 * as a WebSocket with the v4.channel.k8s.io protocol (each message: a channel byte, then
 * data; 1 stdout, 2 stderr, 3 the status as JSON). Returns the output and the exit code.
 */
export async function execStream(url: string, timeoutMs = 60000): Promise<{ stdout: string; status: Msg | undefined; exitCode: number | undefined }> {
  const { WebSocket } = await import('undici');
  const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io']);
  ws.binaryType = 'arraybuffer';
  let stdout = '';
  let statusText = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`exec stream ${url}: no end after ${timeoutMs} ms (stdout so far: ${JSON.stringify(stdout)})`));
    }, timeoutMs);
    ws.onmessage = (ev) => {
      const b = Buffer.from(ev.data as ArrayBuffer);
      if (!b.length) return;
      if (b[0] === 1 || b[0] === 2) stdout += b.subarray(1).toString();
      if (b[0] === 3) statusText += b.subarray(1).toString();
    };
    ws.onerror = (ev) => {
      clearTimeout(timer);
      reject(new Error(`exec stream ${url}: ${(ev as unknown as { message?: string }).message ?? 'error'}`));
    };
    ws.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  let status: Msg | undefined;
  try {
    status = statusText ? JSON.parse(statusText) : undefined;
  } catch {
    status = { raw: statusText };
  }
  let exitCode: number | undefined;
  if (status?.status === 'Success') exitCode = 0;
  else {
    const cause = (status?.details?.causes ?? []).find((x: Msg) => x.reason === 'ExitCode');
    if (cause) exitCode = Number(cause.message);
  }
  return { stdout, status, exitCode };
}

/** The processes whose command line names this daemon's socket: shims left behind. */
export function shimsOf(c: Cri): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('containerd-shim') && cmd.includes(c.socket)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Mount points at or under dir. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p === dir || p.startsWith(dir + '/'));
}
