// lxr as an ordinary user (rootless, as podman): layers unpacked in the user's namespace,
// the rootfs an overlay mounted by the container's own plan inside that namespace, the
// container's spec mapped with the user's ids, and `lxr unshare`.
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LxrError } from '../../common/errors.js';
import { lxrBin } from '../../native/paths.js';
import type { Mount, Spec } from '../../oci-spec/types.js';
import type { LxrContext } from '../core/context.js';
import { idMapHint, runInUserns, subIdAdvice, userIdMaps, type UserIdMaps } from '../../native/userns.js';
import { overlayOptions } from '../snapshots/overlay.js';
import { findTool } from '../../native/idmap.js';
import { exitCodeOf } from '../../common/proc.js';

export { userIdMaps, type UserIdMaps };

let warned = false;
/** podman's warning for a user without subordinate ids, once per command. */
export function warnSingleMapping(m: UserIdMaps): void {
  if (!m.single || warned) return;
  warned = true;
  process.stderr.write(`lxr: warning: only your own uid is mapped into the user namespace (as root): images with files of other owners cannot be used. To fix it, ${subIdAdvice(m.user)}\n`);
}

/**
 * Unpack an image's layer snapshots inside the user's namespace, so that every file gets its
 * owner from the image, shifted into the user's subordinate range. Node never enters the
 * namespace: lxr-init makes it (a plan: UNSHARE, SYNC for newuidmap, EXEC) and runs
 * `node bin/lxr.js __unpack` there, which is the ordinary unpacker running as root of it.
 */
export async function unpackInUserns(ctx: LxrContext, manifest: string): Promise<void> {
  const maps = userIdMaps();
  warnSingleMapping(maps);
  mkdirSync(ctx.runRoot, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(ctx.runRoot, '.unpack-'));
  const errFile = join(tmp, 'stderr');
  const errFd = openSync(errFile, 'w', 0o600);
  const nullFd = openSync('/dev/null', 'r+');
  try {
    const env = Object.entries({ ...process.env, LXR_IDMAP_HINT: idMapHint(maps) })
      .filter(([k, v]) => v !== undefined && k !== 'NODE_OPTIONS')
      .map(([k, v]) => `${k}=${v}`);
    const status = await runInUserns({
      argv: [process.execPath, lxrBin(), '__unpack', ctx.imageStore, manifest, ctx.snapshots],
      env, stdio: [nullFd, nullFd, errFd], maps,
    });
    if (status !== 0) {
      const text = readFileSync(errFile, 'utf8').trim();
      const last = text.split('\n').filter((l) => l.trim()).pop() ?? `exit status ${exitCodeOf(status)}`;
      throw new LxrError(`unpacking the image's layers in your user namespace: ${last.replace(/^lxr: /, '')}`);
    }
  } finally {
    closeSync(errFd);
    closeSync(nullFd);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `lxr __unpack LAYOUT MANIFEST SNAPSHOTS`: the unpacker, as root of the user namespace. */
export async function unpackMain(layout: string, manifest: string, snapshots: string, idMapHint?: string): Promise<number> {
  const { setIdMapHint, unpackSnapshots } = await import('../../image-tool/index.js');
  await setIdMapHint(idMapHint);
  try {
    await unpackSnapshots({ layout, manifest, snapshots });
    return 0;
  } catch (e) {
    process.stderr.write(`lxr: ${(e as Error).message}\n`);
    return 1;
  }
}

/** `lxr unshare [CMD...]`: CMD (default $SHELL) as root of the user's namespace, in a mount namespace of its own, as podman unshare. */
export async function unshare(ctx: LxrContext, argv: string[]): Promise<number> {
  if (!ctx.rootless) throw new LxrError('lxr unshare is for an ordinary user (it runs a command in the user namespace that rootless lxr uses): as root there is nothing to enter');
  const maps = userIdMaps();
  warnSingleMapping(maps);
  const cmd = argv.length ? argv : [process.env.SHELL || '/bin/sh'];
  const env = Object.entries({ ...process.env, LXR_ROOTLESS_UID: String(maps.uid), LXR_STORE: ctx.root })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const status = await runInUserns({ argv: cmd, env, stdio: [0, 1, 2], mountNamespace: true, maps });
  return exitCodeOf(status);
}

/** What `lxr inspect` shows of a rootless container's storage. */
export interface RootlessInfo {
  rootless: true;
  /** "overlay" (the kernel's, mounted in the user namespace) or "fuse-overlayfs" */
  rootfsDriver: string;
  uidMappings: { containerID: number; hostID: number; size: number }[];
  gidMappings: { containerID: number; hostID: number; size: number }[];
}

/**
 * The rootfs of a rootless container: an overlay mounted on "/" by the container's plan, in
 * its user and mount namespaces (Linux 5.11+ allows that to an unprivileged user namespace),
 * with "userxattr" (the unpacker marks opaque directories with user.overlay.opaque there).
 * Nothing is mounted on the host, so nothing is left mounted when the container is gone.
 */
export function overlayRootMount(dir: string, layers: number): Mount {
  const opts = overlayOptions(layers).replace(/(^|[=:])(l\/|upper|work)/g, (_m, p: string, w: string) => `${p}${dir}/${w}`);
  if (opts.length > 4000) throw new LxrError(`the image has ${layers} layers: too many for a rootless overlay mount (its options exceed a page)`);
  return { destination: '/', type: 'overlay', source: 'overlay', options: [...opts.split(','), 'userxattr'] };
}

/** Turn a container's spec into a rootless one: the user's maps, no cgroup, the overlay on "/". */
export function rootlessSpec(spec: Spec, dir: string, layers: number, network: string, maps: UserIdMaps, usernsPath?: string): void {
  const linux = (spec.linux ??= {});
  let ns = (linux.namespaces ?? []).filter((n) => n.type !== 'user' && n.type !== 'cgroup');
  // a user-mode network's namespaces are held by a process of their own (rootless/network.ts)
  ns.push(usernsPath ? { type: 'user', path: usernsPath } : { type: 'user' });
  if (network === 'host') ns = ns.filter((n) => n.type !== 'network');
  else if (!usernsPath) ns = ns.map((n) => (n.type === 'network' ? { type: 'network' } : n));
  linux.namespaces = ns;
  // ping without NET_RAW for every group the namespace maps (the kernel refuses unmapped ones)
  if (linux.sysctl?.['net.ipv4.ping_group_range']) linux.sysctl['net.ipv4.ping_group_range'] = `0 ${maps.gidCount - 1}`;
  if (!ns.some((n) => n.type === 'network') && linux.sysctl) delete linux.sysctl['net.ipv4.ping_group_range'];
  if (usernsPath) {
    // joined: the holder's namespace has these maps (kept for lxr inspect)
    delete linux.uidMappings;
    delete linux.gidMappings;
    spec.annotations = { ...spec.annotations, 'io.lxr.rootless.uidMappings': JSON.stringify(maps.uidMappings), 'io.lxr.rootless.gidMappings': JSON.stringify(maps.gidMappings) };
  } else {
    linux.uidMappings = maps.uidMappings;
    linux.gidMappings = maps.gidMappings;
  }
  // limits stay only where checkRootlessLimits found a delegated cgroup v2 subtree
  if (linux.resources) delete linux.resources.devices;
  if (!linux.resources || !Object.keys(linux.resources).length) {
    delete linux.resources;
    delete linux.cgroupsPath;
  }
  let mounts = (spec.mounts ?? []).filter((m) => m.type !== 'cgroup' && m.type !== 'cgroup2');
  if (!ns.some((n) => n.type === 'network')) {
    // sysfs needs a network namespace owned by the user namespace: bind the host's (runc)
    mounts = mounts.map((m) => (m.type === 'sysfs' ? { destination: m.destination, type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m));
  }
  if (maps.gidCount <= 5) {
    for (const m of mounts) if (m.type === 'devpts') m.options = (m.options ?? []).filter((o) => o !== 'gid=5');
  }
  spec.mounts = [overlayRootMount(dir, layers), ...mounts];
  spec.annotations = { ...spec.annotations, 'io.lxr.rootless.rootfs': 'overlay' };
}

/**
 * Can the kernel's overlayfs be mounted in a user namespace (Linux 5.11+)? Found out once per
 * boot (a trial mount in a throw-away user and mount namespace), kept in the run dir. Where
 * it cannot, podman falls back to fuse-overlayfs; lxr does not yet (see checkRootfsDriver).
 */
export async function rootfsDriver(ctx: LxrContext): Promise<'overlay' | 'fuse-overlayfs'> {
  const cache = join(ctx.runRoot, 'rootfs-driver');
  try {
    const v = readFileSync(cache, 'utf8').trim();
    if (v === 'overlay' || v === 'fuse-overlayfs') return v;
  } catch {
    /* not probed yet */
  }
  mkdirSync(ctx.root, { recursive: true });
  const probe = mkdtempSync(join(ctx.root, '.overlay-probe-'));
  let driver: 'overlay' | 'fuse-overlayfs';
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(probe, d));
    const nullFd = openSync('/dev/null', 'r+');
    let status: number;
    try {
      status = await runInUserns({
        argv: ['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${probe}/lower,upperdir=${probe}/upper,workdir=${probe}/work,userxattr`, `${probe}/merged`],
        env: [`PATH=${process.env.PATH ?? '/usr/bin:/bin'}`], stdio: [nullFd, nullFd, nullFd], mountNamespace: true,
      });
    } finally {
      closeSync(nullFd);
    }
    driver = status === 0 ? 'overlay' : 'fuse-overlayfs';
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
  mkdirSync(ctx.runRoot, { recursive: true, mode: 0o700 });
  writeFileSync(cache, `${driver}\n`);
  return driver;
}

/** The host's cgroup layout, for the message of a rootless --memory/--cpus/--pids-limit. */
function delegatedCgroup(): string | undefined {
  if (!existsSync('/sys/fs/cgroup/cgroup.controllers')) return undefined; // v1 or hybrid: nothing can be delegated
  let own: string;
  try {
    own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '';
  } catch {
    return undefined;
  }
  return own ? join('/sys/fs/cgroup', own) : undefined;
}

/** --memory, --cpus and --pids-limit need a cgroup the user may write: refuse them where there is none. */
export function checkRootlessLimits(s: { memory?: number; cpus?: number; pidsLimit?: number }): void {
  const flags = [s.memory ? '--memory' : '', s.cpus ? '--cpus' : '', s.pidsLimit !== undefined ? '--pids-limit' : ''].filter(Boolean);
  if (!flags.length) return;
  const dir = delegatedCgroup();
  if (!dir) {
    throw new LxrError(`${flags.join(', ')}: resource limits need cgroups, and this host (cgroup v1 or hybrid) delegates no cgroup v2 subtree to an ordinary user; run without ${flags.length > 1 ? 'these flags' : 'it'}, or as root`);
  }
  try {
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    accessSync(join(dir, 'cgroup.subtree_control'), constants.W_OK);
  } catch {
    throw new LxrError(`${flags.join(', ')}: your cgroup ${dir} is not delegated to you (no systemd user session with Delegate=yes): resource limits need a writable cgroup v2 subtree`);
  }
}

/**
 * A directory on the host to read the image's /etc/passwd and /etc/group from (-u NAME) while
 * the rootfs is mounted only inside the container: the top layer (the container's upper
 * directory first) that has `probe`.
 */
export function filesRoot(dir: string, layers: string[], probe = '/etc/passwd'): string {
  for (const d of [join(dir, 'upper'), ...[...layers].reverse()]) if (existsSync(join(d, probe))) return d;
  return layers[layers.length - 1] ?? join(dir, 'merged');
}

/**
 * The default network of a rootless container, as podman chooses it: pasta (podman 5's
 * default) when it is installed, else slirp4netns (podman 4's).
 */
export function rootlessNetwork(): string {
  if (findTool('pasta')) return 'pasta';
  if (findTool('slirp4netns')) return 'slirp4netns';
  throw new LxrError('a rootless container needs user-mode networking: install passt (pasta) or slirp4netns, or use --network none or host');
}

/**
 * The kernel's overlayfs, or a clear error where this kernel refuses it in a user namespace.
 * fuse-overlayfs is not a fallback yet: a daemon serving the rootfs in the container's own
 * mount namespace would have its root moved by the container's pivot_root, and lxr-runtime
 * cannot yet take a pre-opened /dev/fuse for the mount (podman's route).
 */
export async function checkRootfsDriver(ctx: LxrContext): Promise<void> {
  if ((await rootfsDriver(ctx)) === 'overlay') return;
  throw new LxrError('this kernel refuses overlayfs in a user namespace (it needs Linux 5.11 or later): rootless lxr has no fuse-overlayfs fallback yet; run lxr as root, or on a newer kernel');
}

/**
 * Remove trees that hold files of the user's subordinate ids (snapshots, a container's upper
 * layer): the user cannot, root of the user namespace can. `rm -rf` run there by lxr-init.
 */
export async function removeInUserns(paths: string[]): Promise<void> {
  if (!paths.length) return;
  const nullFd = openSync('/dev/null', 'r+');
  let status: number;
  try {
    status = await runInUserns({ argv: ['rm', '-rf', '--', ...paths], env: [`PATH=${process.env.PATH ?? '/usr/bin:/bin'}`], stdio: [nullFd, nullFd, 2] });
  } finally {
    closeSync(nullFd);
  }
  if (status !== 0) throw new LxrError(`removing ${paths.join(', ')} in your user namespace failed (exit status ${exitCodeOf(status)})`);
}

/** rmSync, and where the user may not (files of their subordinate ids), rm -rf in the user namespace. */
export async function removeTree(path: string): Promise<void> {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    await removeInUserns([path]);
  }
}

/** `lxr info`: where this user's state lives and how their containers are made. */
export async function info(ctx: LxrContext): Promise<Record<string, unknown>> {
  const base = { Rootless: ctx.rootless, Uid: process.geteuid?.() ?? 0, Root: ctx.root, RunRoot: ctx.runRoot, ImageStore: ctx.imageStore };
  if (!ctx.rootless) return { ...base, RootfsDriver: 'overlay', DefaultNetwork: ctx.defaultNetwork || 'bridge' };
  const maps = userIdMaps();
  let network: string;
  try {
    network = ctx.defaultNetwork || rootlessNetwork();
  } catch (e) {
    network = `none available (${(e as Error).message})`;
  }
  return {
    ...base, User: maps.user, RootfsDriver: await rootfsDriver(ctx), DefaultNetwork: network,
    UidMappings: maps.uidMappings, GidMappings: maps.gidMappings, ...(maps.single ? { Warning: `no /etc/subuid range: ${subIdAdvice(maps.user)}` } : {}),
  };
}
