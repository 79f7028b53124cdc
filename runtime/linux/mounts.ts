// mounts (config.md "Mounts") and linux.rootfsPropagation: options to mount(2) flags,
// and the plan steps that mount each entry inside the rootfs. Targets are resolved by
// the child inside the root (openat2 RESOLVE_IN_ROOT), so an image's symlinks cannot
// send a mount to the host.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import type { IdMapping, Mount } from '../../oci-spec/types.js';
import { Op, Plan } from '../../native/plan.js';
import { LxrError } from '../../common/errors.js';
import { native } from '../../native/index.js';
import { openChannel, spawnPlan, type PlanChild } from '../../native/spawn.js';
import { checkIdMappings } from './namespaces.js';
import { tmpfsModeData } from './tmpfs-mode.js';
import { CLONE } from '../../native/idmap.js';

export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40,
  DIRSYNC: 0x80, NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, MOVE: 0x2000, REC: 0x4000,
  SILENT: 0x8000, UNBINDABLE: 0x20000, PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000,
  STRICTATIME: 0x1000000, LAZYTIME: 0x2000000,
} as const;

// [flag, set (true) or clear (false)]
const FLAG_OPTIONS: Record<string, [number, boolean]> = {
  ro: [MS.RDONLY, true], rw: [MS.RDONLY, false], nosuid: [MS.NOSUID, true], suid: [MS.NOSUID, false],
  nodev: [MS.NODEV, true], dev: [MS.NODEV, false], noexec: [MS.NOEXEC, true], exec: [MS.NOEXEC, false],
  sync: [MS.SYNCHRONOUS, true], async: [MS.SYNCHRONOUS, false], dirsync: [MS.DIRSYNC, true],
  remount: [MS.REMOUNT, true], mand: [MS.MANDLOCK, true], nomand: [MS.MANDLOCK, false],
  noatime: [MS.NOATIME, true], atime: [MS.NOATIME, false], nodiratime: [MS.NODIRATIME, true],
  diratime: [MS.NODIRATIME, false], relatime: [MS.RELATIME, true], norelatime: [MS.RELATIME, false],
  strictatime: [MS.STRICTATIME, true], nostrictatime: [MS.STRICTATIME, false], lazytime: [MS.LAZYTIME, true],
  nolazytime: [MS.LAZYTIME, false], silent: [MS.SILENT, true], loud: [MS.SILENT, false],
  nosymfollow: [MS.NOSYMFOLLOW, true], symfollow: [MS.NOSYMFOLLOW, false],
  bind: [MS.BIND, true], rbind: [MS.BIND | MS.REC, true],
};

export const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

/** mount_setattr(2) attributes */
export const MOUNT_ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME: 0x70, RELATIME: 0x0, NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000 } as const;

// The recursive options (runc's "rro" and friends): mount_setattr(2) on the whole tree after
// the mount. [attribute, set (true) or clear (false)]; the atime ones replace the atime mode.
const RECURSIVE: Record<string, [number, boolean]> = {
  rro: [MOUNT_ATTR.RDONLY, true], rrw: [MOUNT_ATTR.RDONLY, false], rnosuid: [MOUNT_ATTR.NOSUID, true],
  rsuid: [MOUNT_ATTR.NOSUID, false], rnodev: [MOUNT_ATTR.NODEV, true], rdev: [MOUNT_ATTR.NODEV, false],
  rnoexec: [MOUNT_ATTR.NOEXEC, true], rexec: [MOUNT_ATTR.NOEXEC, false], rnodiratime: [MOUNT_ATTR.NODIRATIME, true],
  rdiratime: [MOUNT_ATTR.NODIRATIME, false], rnosymfollow: [MOUNT_ATTR.NOSYMFOLLOW, true],
  rsymfollow: [MOUNT_ATTR.NOSYMFOLLOW, false], rrelatime: [MOUNT_ATTR.RELATIME, true], rnoatime: [MOUNT_ATTR.NOATIME, true],
  rstrictatime: [MOUNT_ATTR.STRICTATIME, true], rnorelatime: [MOUNT_ATTR.STRICTATIME, true],
  ratime: [MOUNT_ATTR.RELATIME, true], rnostrictatime: [MOUNT_ATTR.RELATIME, true],
};
const ATIME_OPTIONS = new Set(['rrelatime', 'rnoatime', 'rstrictatime', 'rnorelatime', 'ratime', 'rnostrictatime']);
export const RECURSIVE_OPTIONS = Object.keys(RECURSIVE);

export interface ParsedOptions {
  flags: number;
  propagation: number[];
  data: string[];
  bind: boolean;
  /** "idmap" (the top mount) or "ridmap" (recursively): an idmapped mount */
  idmap?: 'idmap' | 'ridmap';
  /** runc's "tmpcopyup": a tmpfs starts with the files of the directory it covers */
  tmpcopyup?: boolean;
  /** recursive options: mount attributes set and cleared on the whole tree */
  attrSet: number;
  attrClr: number;
}

export function parseMountOptions(options: string[] | undefined, where: string): ParsedOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  let idmap: ParsedOptions['idmap'];
  let tmpcopyup = false;
  let attrSet = 0;
  let attrClr = 0;
  (options ?? []).forEach((opt) => {
    if (opt === 'tmpcopyup') {
      tmpcopyup = true;
      return;
    }
    if (opt === 'idmap' || opt === 'ridmap') {
      idmap = opt;
      return;
    }
    const f = FLAG_OPTIONS[opt];
    if (f) {
      flags = f[1] ? flags | f[0] : flags & ~f[0];
      return;
    }
    const p = PROPAGATION[opt];
    if (p !== undefined) {
      propagation.push(p);
      return;
    }
    const r = RECURSIVE[opt];
    if (r) {
      if (ATIME_OPTIONS.has(opt)) {
        attrClr |= MOUNT_ATTR.ATIME;
        attrSet = (attrSet & ~MOUNT_ATTR.ATIME) | r[0];
      } else if (r[1]) {
        attrSet |= r[0];
        attrClr &= ~r[0];
      } else {
        attrClr |= r[0];
        attrSet &= ~r[0];
      }
      return;
    }
    data.push(opt);
  });
  void where;
  return { flags, propagation, data, bind: (flags & MS.BIND) !== 0, attrSet, attrClr, ...(idmap ? { idmap } : {}), ...(tmpcopyup ? { tmpcopyup } : {}) };
}

/** A readable name for a mount in messages: `mount "proc" on "/proc" (config.json mounts[2])`. */
function label(m: Mount, i: number): string {
  return `mount "${m.source ?? m.type ?? 'none'}" on "${m.destination}" (config.json mounts[${i}])`;
}

/**
 * Add the steps for every spec mount. `rootReg` is the child register holding an fd of
 * the rootfs (opened by an OPEN_ROOT step). Returns true when /dev is a mount of its own,
 * which is when the runtime must populate it with the default devices.
 */
export interface CgroupView {
  layout: 'v1' | 'hybrid' | 'v2';
  /** hierarchy name (memory, cpu, name=systemd, unified ...) -> the container's cgroup dir on the host */
  dirs: Record<string, string>;
  /** the container has a cgroup namespace of its own */
  namespaced: boolean;
}

/**
 * A "cgroup" mount shows the container its own cgroups, the way runc does. On v1 and
 * hybrid hosts: a tmpfs with one bind mount per hierarchy (the container's directory in
 * it), made read-only afterwards when asked. On v2: cgroup2 itself in a cgroup
 * namespace, otherwise a bind of the container's directory.
 */
function planCgroupMount(plan: Plan, m: Mount, opts: ParsedOptions, what: string, rootReg: number, cgroup: CgroupView | undefined): void {
  const ro = opts.flags & MS.RDONLY;
  const flags = opts.flags & ~(MS.RDONLY | MS.BIND | MS.REC | MS.REMOUNT);
  if (!cgroup || cgroup.layout === 'v2') {
    if (!cgroup || cgroup.namespaced) {
      plan.add(Op.MOUNT, what, plan.str(m.source ?? 'cgroup2'), plan.str(m.destination), plan.str('cgroup2'), opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT), null, 1, rootReg);
    } else {
      plan.add(Op.MOUNT, what, plan.str(cgroup.dirs.unified!), plan.str(m.destination), null, MS.BIND, null, 1, rootReg);
      plan.add(Op.REMOUNT, `${what}: remount with its options`, plan.str(m.destination), flags | ro, rootReg);
    }
    return;
  }
  plan.add(Op.MOUNT, `${what}: tmpfs for the hierarchies`, plan.str('tmpfs'), plan.str(m.destination), plan.str('tmpfs'), flags, plan.str('mode=755'), 1, rootReg);
  for (const [name, dir] of Object.entries(cgroup.dirs)) {
    const sub = `${m.destination.replace(/\/+$/, '')}/${name.replace(/^name=/, '')}`;
    plan.add(Op.MOUNT, `${what}: bind the ${name} hierarchy`, plan.str(dir), plan.str(sub), null, MS.BIND, null, 1, rootReg);
    plan.add(Op.REMOUNT, `${what}: remount the ${name} hierarchy`, plan.str(sub), flags | ro, rootReg);
  }
  if (ro) plan.add(Op.REMOUNT, `${what}: make it read-only`, plan.str(m.destination), flags | ro, rootReg);
}

/** Options of planMounts that come from the container's namespaces. */
export interface MountContext {
  /** a user namespace that does not own the network namespace: bind /sys instead of mounting sysfs */
  sysfsBind?: boolean;
  /** the runtime is not root: no cgroup of its own; "cgroup" mounts bind the host's */
  rootless?: boolean;
  /** the container has a user namespace (created or joined) whose maps idmapped mounts may use */
  userns?: boolean;
  /** where the init receives idmapped mounts: its channel and the SYNC id it reports first */
  idmapSync?: { chanFd: number; id: number };
  /** the rootfs as the host sees it (for "tmpcopyup") */
  rootfs?: string;
  /** bind mounts whose source was cloned before the user namespace existed: mounts index -> slot */
  preopened?: Map<number, number>;
}

/**
 * "tmpcopyup" (runc's extension, which podman uses for --read-only): the tmpfs must start
 * with the files of the directory it covers. Copying is not implemented yet, so accept
 * it where there is nothing to copy: the directory is missing or empty in the rootfs and
 * no earlier mount covers it. Anything else is refused, never silently left empty.
 */
function checkTmpcopyup(m: Mount, type: string | undefined, earlier: Mount[], ctx: MountContext, where: string): void {
  const fail = (why: string) => {
    throw new LxrError(`${where}.options: "tmpcopyup" on "${m.destination}": ${why}; copying files into the tmpfs is not supported by lxr-runtime yet`);
  };
  if (type !== 'tmpfs') fail(`the mount is not a tmpfs`);
  if (!ctx.rootfs) fail('the rootfs is not known here');
  const dest = m.destination.replace(/\/+$/, '') || '/';
  for (const e of earlier) {
    const d = e.destination.replace(/\/+$/, '') || '/';
    if (dest === d || dest.startsWith(d === '/' ? '/' : `${d}/`)) fail(`an earlier mount on "${e.destination}" covers it`);
  }
  let path = ctx.rootfs!;
  for (const part of dest.split('/').filter(Boolean)) {
    path = join(path, part);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // missing: the tmpfs starts empty either way
    }
    if (st.isSymbolicLink()) fail(`"${path}" is a symbolic link`);
  }
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (e) {
    return fail(`cannot read "${path}": ${(e as NodeJS.ErrnoException).code}`);
  }
  if (entries.length) fail(`"${path}" is not empty`);
}

/** An idmapped bind mount: the runtime clones and idmaps `source`, the init attaches it. */
export interface IdmapRequest {
  /** the mount slot the init receives it in */
  slot: number;
  source: string;
  /** rbind: clone the whole tree */
  recursive: boolean;
  /** ridmap: idmap every mount of the tree, not only the top one */
  recursiveIdmap: boolean;
  /** the mount's own maps; without them the container's user namespace is used */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  where: string;
}

const MAX_IDMAPPED = 32; // of the executor's mount slots (native/abi.json limits.MOUNT_SLOTS)

function bindSource(m: Mount, bundle: string, where: string): { src: string; isDir: boolean } {
  if (!m.source) throw new LxrError(`${where}.source: a bind mount needs a source`);
  const src = resolve(bundle, m.source);
  try {
    return { src, isDir: statSync(src).isDirectory() };
  } catch (e) {
    throw new LxrError(`${where}.source: "${src}" does not exist`, { cause: e });
  }
}

/** Check the idmapped mounts of a spec and list what the runtime must prepare for them. */
export function idmapRequests(mounts: Mount[] | undefined, bundle: string, ctx: MountContext): IdmapRequest[] {
  const out: IdmapRequest[] = [];
  (mounts ?? []).forEach((m, i) => {
    const where = `mounts[${i}]`;
    const opts = parseMountOptions(m.options, where);
    const own = !!(m.uidMappings || m.gidMappings);
    if (!own && !opts.idmap) return;
    if (!m.uidMappings || !m.gidMappings) {
      if (own) throw new LxrError(`${where}: uidMappings and gidMappings must be given together`);
    }
    if (!opts.bind && m.type !== 'bind') throw new LxrError(`${where}.options: idmapped mounts are supported for bind mounts only`);
    if (ctx.rootless) throw new LxrError(`${where}: an idmapped mount needs root on the host, and lxr-runtime runs rootless`);
    if (!own && !ctx.userns) {
      throw new LxrError(`${where}.options: "${opts.idmap}" needs the mount's own uidMappings and gidMappings, or a user namespace in linux.namespaces`);
    }
    if (own) {
      checkIdMappings(m.uidMappings, `${where}.uidMappings`);
      checkIdMappings(m.gidMappings, `${where}.gidMappings`);
    }
    const { src } = bindSource(m, bundle, where);
    if (out.length >= MAX_IDMAPPED) throw new LxrError(`${where}: at most ${MAX_IDMAPPED} idmapped mounts are supported`);
    out.push({
      slot: out.length, source: src, recursive: (opts.flags & MS.REC) !== 0, recursiveIdmap: opts.idmap === 'ridmap',
      ...(own ? { uidMappings: m.uidMappings!, gidMappings: m.gidMappings! } : {}), where,
    });
  });
  return out;
}

export function planMounts(
  plan: Plan, mounts: Mount[] | undefined, bundle: string, rootReg: number, cgroup?: CgroupView, ctx: MountContext = {},
): { devMounted: boolean; idmapped: IdmapRequest[] } {
  let devMounted = false;
  const idmapped = idmapRequests(mounts, bundle, ctx);
  if (idmapped.length) {
    if (!ctx.idmapSync) throw new LxrError(`${idmapped[0]!.where}: idmapped mounts are not possible here`);
    for (const r of idmapped) {
      plan.add(Op.RECV_FD, `receive the idmapped mount of "${r.source}" (config.json ${r.where})`, ctx.idmapSync.chanFd, r.slot, r.slot === 0 ? ctx.idmapSync.id : -1);
    }
  }
  let nextSlot = 0;
  (mounts ?? []).forEach((m, i) => {
    const where = `mounts[${i}]`;
    if (!isAbsolute(m.destination)) {
      throw new LxrError(`${where}.destination: "${m.destination}" must be an absolute path`);
    }
    const opts = parseMountOptions(m.options, where);
    const what = label(m, i);
    const type = m.type && m.type !== 'none' ? m.type : undefined;
    if (opts.tmpcopyup) checkTmpcopyup(m, type, (mounts ?? []).slice(0, i), ctx, where);
    if (m.destination.replace(/\/+$/, '') === '/dev') devMounted = true;
    // A mount on "/" covers the rootfs (as in runc): what follows, and pivot_root, go to
    // the new mount, so the root register is opened again, through the rootfs path.
    const onRoot = (): void => {
      if (m.destination.replace(/\/+$/, '') === '' && ctx.rootfs) plan.add(Op.OPEN_ROOT, `${what}: it is the container's root from now on`, plan.str(ctx.rootfs), rootReg);
    };
    if (opts.bind || type === 'bind') {
      const { src, isDir } = bindSource(m, bundle, where);
      const rec = opts.flags & MS.REC;
      if (m.uidMappings || opts.idmap) {
        plan.add(Op.MOVE_MOUNT, `${what}: attach the idmapped mount`, nextSlot++, plan.str(m.destination), isDir ? 1 : 2, rootReg);
      } else if (ctx.preopened?.has(i)) {
        plan.add(Op.MOVE_MOUNT, `${what}: attach the source opened before the user namespace`, ctx.preopened.get(i)!, plan.str(m.destination), isDir ? 1 : 2, rootReg);
      } else {
        plan.add(Op.MOUNT, what, plan.str(src), plan.str(m.destination), null, MS.BIND | rec, null, isDir ? 1 : 2, rootReg);
      }
      onRoot();
      const rest = opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
      if (rest) plan.add(Op.REMOUNT, `${what}: remount with its options`, plan.str(m.destination), rest, rootReg);
    } else if (type === 'sysfs' && ctx.sysfsBind) {
      // sysfs can only be mounted by the owner of the network namespace: bind the host's
      plan.add(Op.MOUNT, `${what} (a bind of the host's /sys: the user namespace does not own the network namespace)`, plan.str('/sys'), plan.str(m.destination), null, MS.BIND | MS.REC, null, 1, rootReg);
      const rest = opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
      if (rest) plan.add(Op.REMOUNT, `${what}: remount with its options`, plan.str(m.destination), rest, rootReg);
    } else {
      if (!type) throw new LxrError(`${where}.type: a mount that is not a bind mount needs a type`);
      if (type === 'cgroup' || type === 'cgroup2') {
        if (ctx.rootless && !cgroup) {
          // no cgroup of its own: show the host's hierarchy, read-only unless asked otherwise
          plan.add(Op.MOUNT, `${what} (a bind of the host's /sys/fs/cgroup: rootless)`, plan.str('/sys/fs/cgroup'), plan.str(m.destination), null, MS.BIND | MS.REC, null, 1, rootReg);
          plan.add(Op.REMOUNT, `${what}: remount with its options`, plan.str(m.destination), opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT), rootReg);
          return;
        }
        planCgroupMount(plan, m, opts, what, rootReg, cgroup);
        return;
      }
      const data = [...opts.data, ...(type === 'tmpfs' ? tmpfsModeData(m, opts.data, (mounts ?? []).slice(0, i), ctx.rootfs) : [])].join(',');
      plan.add(
        Op.MOUNT, what, m.source ? plan.str(m.source) : plan.str(type), plan.str(m.destination), plan.str(type),
        opts.flags & ~MS.REMOUNT, data ? plan.str(data) : null, 1, rootReg,
      );
      onRoot();
    }
    if (opts.attrSet || opts.attrClr) {
      plan.add(Op.MOUNT_SETATTR, `${what}: recursive options`, plan.str(m.destination), rootReg, opts.attrSet, opts.attrClr, 1);
    }
    for (const p of opts.propagation) {
      plan.add(Op.MOUNT, `${what}: set propagation`, null, plan.str(m.destination), null, p, null, 0, rootReg);
    }
  });
  return { devMounted, idmapped };
}

/**
 * Bind mount sources of a container with a user namespace, cloned (open_tree) by the plan
 * before it makes that namespace: inside it, root of the container may not be allowed to
 * reach a source that only the host's root can (runc does the same). Not for a rootless
 * runtime, which cannot clone mounts of the host and reaches only its own files anyway.
 * Returns mounts index -> slot, for planMounts.
 */
export function planBindSources(plan: Plan, mounts: Mount[] | undefined, bundle: string, firstSlot: number, maxSlots: number): Map<number, number> {
  const out = new Map<number, number>();
  (mounts ?? []).forEach((m, i) => {
    const where = `mounts[${i}]`;
    const opts = parseMountOptions(m.options, where);
    if (!(opts.bind || m.type === 'bind') || m.uidMappings || opts.idmap) return;
    const { src } = bindSource(m, bundle, where);
    const slot = firstSlot + out.size;
    if (slot >= maxSlots) throw new LxrError(`${where}: too many bind mounts for a container with a user namespace (at most ${maxSlots - firstSlot})`);
    plan.add(Op.OPEN_TREE, `open the source "${src}" of ${label(m, i)} before the user namespace`, plan.str(src), (opts.flags & MS.REC) ? 1 : 0, 0, slot);
    out.set(i, slot);
  });
  return out;
}

/** Run a one-off plan in a helper child of this process (in its namespaces) and wait for it. */
async function runHelper(plan: Plan, cloneFlags = 0n): Promise<void> {
  const child = spawnPlan(plan, cloneFlags, openChannel());
  try {
    const msg = await child.next();
    if (msg.kind === 'error') throw child.failure(msg);
  } finally {
    child.detach();
    await native().wait(child.pid);
  }
}

/** A process in a new user namespace with the given maps, waiting (kill it with `done`). */
async function mappedUserns(uidMappings: IdMapping[], gidMappings: IdMapping[], where: string): Promise<{ pid: number; done: () => Promise<void> }> {
  const plan = new Plan();
  const chan = openChannel();
  plan.add(Op.SYNC, 'wait while the runtime idmaps a mount', chan.childFd, 1);
  const child: PlanChild = spawnPlan(plan, BigInt(CLONE.NEWUSER), chan);
  // the helper holds a copy of our end of its channel, so it never sees EOF: kill it
  const done = async (): Promise<void> => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    child.detach();
    await native().wait(child.pid);
  };
  try {
    const msg = await child.next();
    if (msg.kind !== 'sync') throw new LxrError(`${where}: the helper for the mount's user namespace ended early`);
    const text = (maps: IdMapping[]): string => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
    for (const [file, maps, field] of [['uid_map', uidMappings, 'uidMappings'], ['gid_map', gidMappings, 'gidMappings']] as const) {
      try {
        writeFileSync(`/proc/${child.pid}/${file}`, text(maps));
      } catch (e) {
        throw new LxrError(`${where}.${field}: writing the mount's ${file} failed: ${(e as NodeJS.ErrnoException).code}`);
      }
    }
  } catch (e) {
    await done();
    throw e;
  }
  return { pid: child.pid, done };
}

/**
 * Prepare the idmapped mounts and send them to the init, which waits for them on its
 * channel (`chan`, this process's end) in slot order: each is a detached clone of its
 * source (open_tree) idmapped (mount_setattr MOUNT_ATTR_IDMAP) with the user namespace of
 * the init (`initPid`) or, for a mount with its own maps, of a helper made for it.
 */
export async function sendIdmappedMounts(chan: number, initPid: number, requests: IdmapRequest[]): Promise<void> {
  for (const r of requests) {
    const helper = r.uidMappings ? await mappedUserns(r.uidMappings, r.gidMappings!, r.where) : undefined;
    try {
      const plan = new Plan();
      plan.add(
        Op.IDMAP_TREE, `idmap the mount of "${r.source}" (config.json ${r.where}${r.recursiveIdmap ? ', ridmap' : ''})`,
        plan.str(r.source), plan.str(`/proc/${helper?.pid ?? initPid}/ns/user`), r.recursive ? 1 : 0, r.recursiveIdmap ? 1 : 0, chan,
      );
      try {
        await runHelper(plan);
      } catch (e) {
        if (e instanceof LxrError && e.errno === 22) {
          throw new LxrError(`${e.message} (the filesystem of "${r.source}" does not support idmapped mounts)`, { errno: 22 });
        }
        throw e;
      }
    } finally {
      await helper?.done();
    }
  }
}

export function rootfsPropagationFlags(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const p = PROPAGATION[value];
  if (p === undefined) throw new LxrError(`linux.rootfsPropagation: unknown propagation "${value}"`);
  return p;
}
