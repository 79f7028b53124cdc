// The runtime config.json of a container: image-spec conversion (configFromImage) of the
// image config, then the user's flags on top.
import { mkdirSync, writeFileSync, existsSync, copyFileSync, readFileSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { Device, Mount, Seccomp, Spec } from '../../oci-spec/types.js';
import type { ImageConfig } from '../../image-tool/index.js';
import { configFromImage, resolveUser, PathError, resolveInRootSync } from '../../image-tool/index.js';
import { LxrError } from '../../common/errors.js';
import { mergeEnv } from './options.js';
import { prepareNamedVolume } from './volumes.js';
import { hostTerminalSize } from '../../runtime/index.js';
import { DEFAULT_PROFILE, buildSeccomp } from '../security/seccomp.js';
import { applyRunFlags, type NamespaceOf } from './run-flags.js';
import type { CreateSettings } from '../core/types.js';

/**
 * podman's default capability set (docker's 14 without AUDIT_WRITE, MKNOD and NET_RAW):
 * `--cap-add` gives those back. ping works without NET_RAW (net.ipv4.ping_group_range).
 */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP', 'CAP_SETGID',
  'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** What podman sets in a container's own network namespace, so that ping needs no NET_RAW. */
export const PING_GROUP_RANGE = '0 2147483647';

export interface SpecInputs {
  id: string;
  name: string;
  image: ImageConfig;
  rootfs: string;
  settings: CreateSettings;
  /** container directory: generated /etc files go here */
  dir: string;
  volumesRoot: string;
  /** network namespace path to join (bridge); undefined: a new one (none) */
  netnsPath?: string;
  /** where the image's /etc/passwd is read on the host, when rootfs is not mounted here (rootless) */
  filesRoot?: string;
  /** extra mounts (e.g. from the network's DNS files or the IDE) */
  extraMounts?: Mount[];
  /** another container's namespace, for --pid/--ipc container:NAME */
  nsOf?: NamespaceOf;
  /** the cgroup parent: cgroupsPath is /<cgroupParent>/<id> */
  cgroupParent: string;
}

/** The container's capabilities: the defaults (all of them with --privileged), --cap-drop, then --cap-add. */
export function capabilities(add: string[], drop: string[], privileged = false): string[] {
  let caps = new Set(privileged ? allCaps() : DEFAULT_CAPS);
  if (drop.includes('ALL')) caps = new Set();
  for (const c of drop) caps.delete(c);
  if (add.includes('ALL')) return allCaps();
  for (const c of add) caps.add(c);
  return [...caps];
}

/** What `lxr inspect` shows as the seccomp profile in force: "default", "unconfined" or the profile file. */
export function seccompMode(s: Pick<CreateSettings, 'privileged' | 'seccomp'>): string {
  if (s.seccomp) return s.seccomp;
  return s.privileged ? 'unconfined' : 'default';
}

/** linux.seccomp for the container's final capabilities, or undefined for none. */
function seccompFor(s: CreateSettings, caps: string[]): Seccomp | undefined {
  const mode = seccompMode(s);
  if (mode === 'unconfined') return undefined;
  if (mode === 'default') return buildSeccomp(DEFAULT_PROFILE, { caps });
  if (!s.seccompProfile) throw new LxrError(`--security-opt seccomp=${mode}: the profile was not kept with the container: create it again`);
  return buildSeccomp(s.seccompProfile, { caps });
}

/**
 * The host's device nodes directly under /dev, for --privileged (as podman gives them), but
 * not its terminals nor the ones every container gets anyway.
 */
function hostDevices(): Device[] {
  const skip = new Set(['console', 'ptmx', 'tty', 'null', 'zero', 'full', 'random', 'urandom']);
  const out: Device[] = [];
  let names: string[];
  try {
    names = readdirSync('/dev');
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    if (skip.has(name) || name.startsWith('tty')) continue;
    let st;
    try {
      st = lstatSync(`/dev/${name}`, { bigint: true });
    } catch {
      continue;
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) continue;
    const rdev = st.rdev;
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    out.push({ path: `/dev/${name}`, type: st.isBlockDevice() ? 'b' : 'c', major, minor, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
  }
  return out;
}

/** --privileged, as podman: no masked or read-only paths, /sys and cgroupfs writable, the host's devices. */
function privileged(spec: Spec): void {
  const linux = (spec.linux ??= {});
  linux.devices = [...(linux.devices ?? []), ...hostDevices()];
  linux.maskedPaths = [];
  linux.readonlyPaths = [];
  for (const m of spec.mounts ?? []) {
    if (m.type === 'sysfs' || m.type === 'cgroup' || m.type === 'cgroup2') m.options = (m.options ?? []).filter((o) => o !== 'ro');
  }
  (linux.resources ??= {}).devices = [{ allow: true, access: 'rwm' }];
}

/** Every capability, by number (CAP_CHOWN is 0). */
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/**
 * "All" capabilities, as podman means it for --privileged and --cap-add ALL: those in lxr's
 * own bounding set (a container cannot be given what lxr does not have).
 */
function allCaps(): string[] {
  let bnd: bigint;
  try {
    bnd = BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? ''}`);
  } catch {
    return [...ALL_CAPS];
  }
  return ALL_CAPS.filter((_, i) => (bnd >> BigInt(i)) & 1n);
}

export function buildSpec(i: SpecInputs): Spec {
  const s = i.settings;
  const spec = configFromImage(i.image, i.rootfs);
  const proc = spec.process!;
  const cfg = i.image.config ?? {};
  // docker's rules: --entrypoint replaces the image's Entrypoint (and drops its Cmd);
  // a command replaces Cmd.
  const entry = s.entrypoint ?? cfg.Entrypoint ?? [];
  const cmd = s.command?.length ? s.command : s.entrypoint ? [] : (cfg.Cmd ?? []);
  const args = [...entry, ...cmd];
  if (args.length === 0) throw new LxrError(`image ${s.image} has no Entrypoint or Cmd: give a command`);
  proc.args = args;
  spec.hostname = s.hostname ?? i.id.slice(0, 12);
  let env = proc.env ?? [];
  // docker and podman: HOSTNAME is the container's hostname, unless the image or -e sets it
  if (!hasEnv(cfg.Env, 'HOSTNAME')) env = mergeEnv(env, [`HOSTNAME=${spec.hostname}`]);
  if (s.workdir) proc.cwd = s.workdir;
  makeWorkdir(i.rootfs, proc.cwd ?? '/');
  if (s.user) {
    try {
      const u = resolveUser(i.filesRoot ?? i.rootfs, s.user);
      proc.user = { uid: u.uid, gid: u.gid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) };
      // HOME follows the user the process runs as (its /etc/passwd home, "/" without an entry),
      // unless the image's Env sets it, as podman and docker do; -e HOME wins below
      if (!hasEnv(cfg.Env, 'HOME')) env = mergeEnv(env, [`HOME=${u.home || '/'}`]);
    } catch (e) {
      throw new LxrError(`-u ${s.user}: ${(e as Error).message}`);
    }
  }
  proc.env = mergeEnv(env, [...(s.tty ? ['TERM=xterm'] : []), ...s.env]);
  proc.terminal = s.tty;
  // the pty starts with the size of the terminal lxr runs on (a foreground run -t follows it)
  if (s.tty) {
    const size = hostTerminalSize();
    if (size) proc.consoleSize = size;
  }
  const caps = capabilities(s.capAdd, s.capDrop, s.privileged);
  proc.capabilities = { bounding: caps, effective: caps, permitted: caps };
  // lxr keeps runc's no_new_privs default (podman's is off); --security-opt no-new-privileges=false turns it off
  if (s.noNewPrivileges !== undefined) proc.noNewPrivileges = s.noNewPrivileges;
  if (s.privileged) privileged(spec);
  const seccomp = seccompFor(s, caps);
  if (seccomp) (spec.linux ??= {}).seccomp = seccomp;
  spec.root = { path: i.rootfs, readonly: s.readOnly };

  const linux = (spec.linux ??= {});
  // tests give each run its own parent (LXR_CGROUP_PARENT), to check that nothing is left
  linux.cgroupsPath = `/${i.cgroupParent}/${i.id}`;
  let ns = linux.namespaces ?? [];
  if (s.network === 'host') ns = ns.filter((n) => n.type !== 'network');
  else if (i.netnsPath) ns = ns.map((n) => (n.type === 'network' ? { type: 'network', path: i.netnsPath! } : n));
  linux.namespaces = ns;
  if (ns.some((n) => n.type === 'network')) linux.sysctl = { ...linux.sysctl, 'net.ipv4.ping_group_range': PING_GROUP_RANGE };
  const res = (linux.resources ??= {});
  if (s.memory) res.memory = { limit: s.memory };
  if (s.cpus) res.cpu = { quota: Math.round(s.cpus * 100000), period: 100000 };
  if (s.pidsLimit !== undefined) res.pids = { limit: s.pidsLimit };

  const mounts = spec.mounts ?? [];
  // /etc/hostname and /etc/hosts of our own (bridge networks bring theirs in extraMounts)
  const etc = join(i.dir, 'etc');
  mkdirSync(etc, { recursive: true });
  const have = new Set((i.extraMounts ?? []).map((m) => m.destination));
  if (!have.has('/etc/hostname')) {
    writeFileSync(join(etc, 'hostname'), `${spec.hostname}\n`);
    mounts.push(bind(join(etc, 'hostname'), '/etc/hostname', false));
  }
  if (!have.has('/etc/hosts')) {
    if (s.network === 'host' && existsSync('/etc/hosts')) copyFileSync('/etc/hosts', join(etc, 'hosts'));
    else writeFileSync(join(etc, 'hosts'), isolatedHosts(spec.hostname, i.name));
    mounts.push(bind(join(etc, 'hosts'), '/etc/hosts', false));
  }
  if (s.network === 'host' && !have.has('/etc/resolv.conf') && existsSync('/etc/resolv.conf')) {
    copyFileSync('/etc/resolv.conf', join(etc, 'resolv.conf'));
    mounts.push(bind(join(etc, 'resolv.conf'), '/etc/resolv.conf', false));
  }
  for (const v of s.volumes) {
    if (v.tmpfs) {
      const o = ['nosuid', 'nodev', ...(v.readonly ? ['ro'] : []), ...(v.tmpfs.size ? [`size=${v.tmpfs.size}`] : []), `mode=${(v.tmpfs.mode ?? 0o1777).toString(8)}`];
      mounts.push({ destination: v.destination, type: 'tmpfs', source: 'tmpfs', options: o });
      continue;
    }
    let src = v.source;
    if (v.named) src = prepareNamedVolume(i.volumesRoot, v.source, i.filesRoot ?? i.rootfs, v.destination, v.nocopy || !!i.filesRoot);
    mounts.push(bind(src, v.destination, v.readonly));
  }
  mounts.push(...(i.extraMounts ?? []));
  spec.mounts = mounts;
  applyRunFlags(spec, s.flags, {
    dir: i.dir, rootfs: i.rootfs, network: s.network,
    nsOf: i.nsOf ?? ((c) => { throw new LxrError(`container:${c}: no such container`); }),
  });
  return spec;
}

/**
 * A missing working directory (-w or the image's WorkingDir) is made in the container's
 * rootfs, owned by root, mode 0755, as docker does (podman 4.3 fails with 126 instead).
 * The rootfs is not running yet; symlinks resolve inside it. A path through a file is left
 * for the runtime to report (exit code 126).
 */
function makeWorkdir(rootfs: string, cwd: string): void {
  try {
    resolveInRootSync(rootfs, cwd.split('/'), { create: true, dir: true });
  } catch (e) {
    if (!(e instanceof PathError)) throw new LxrError(`working directory ${cwd}: ${(e as Error).message}`);
  }
}

/**
 * /etc/hosts of a container without a network of its own (--network none), as podman writes
 * it: the host's /etc/hosts (podman's default base_hosts_file), then the container's hostname
 * and name on 127.0.0.1, the only address it has.
 */
export function isolatedHosts(hostname: string, name: string): string {
  let base = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
  try {
    const host = readFileSync('/etc/hosts', 'utf8');
    if (host.trim()) base = host.endsWith('\n') ? host : `${host}\n`;
  } catch {
    /* no /etc/hosts on the host: the usual localhost lines */
  }
  return `${base}127.0.0.1\t${hostname} ${name}\n`;
}

/** Whether an image's Env (or any KEY=VALUE list) sets `name`. */
export function hasEnv(env: string[] | undefined, name: string): boolean {
  return (env ?? []).some((e) => e === name || e.startsWith(`${name}=`));
}

function bind(source: string, destination: string, ro: boolean): Mount {
  return { destination, type: 'bind', source, options: ['rbind', 'rprivate', ...(ro ? ['ro'] : [])] };
}

export function writeBundle(dir: string, spec: Spec): string {
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  return bundle;
}
