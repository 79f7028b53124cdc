// mounts (config.md "Mounts") and linux.rootfsPropagation: options to mount(2) flags,
// and the plan steps that mount each entry inside the rootfs. Targets are resolved by
// the child inside the root (openat2 RESOLVE_IN_ROOT), so an image's symlinks cannot
// send a mount to the host.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Mount } from '../spec/types.js';
import { Op, type Plan } from '../process/plan.js';
import { LxrError } from '../errors.js';

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

// Options that only make sense to other layers (the spec's "tmpcopyup" is a runc
// extension; "idmap"/"ridmap" belong to the user-namespace issue).
const UNSUPPORTED = new Set(['tmpcopyup', 'idmap', 'ridmap', 'rro', 'rrw', 'rnosuid', 'rsuid', 'rnodev', 'rdev', 'rnoexec', 'rexec', 'rnodiratime', 'rdiratime', 'rrelatime', 'rnorelatime', 'rnoatime', 'ratime', 'rstrictatime', 'rnostrictatime', 'rnosymfollow', 'rsymfollow']);

export interface ParsedOptions {
  flags: number;
  propagation: number[];
  data: string[];
  bind: boolean;
}

export function parseMountOptions(options: string[] | undefined, where: string): ParsedOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  (options ?? []).forEach((opt, i) => {
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
    if (UNSUPPORTED.has(opt)) throw new LxrError(`${where}.options[${i}]: mount option "${opt}" is not supported by lxr-runtime yet`);
    data.push(opt);
  });
  return { flags, propagation, data, bind: (flags & MS.BIND) !== 0 };
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
      plan.add(Op.MOUNT, what, plan.str('cgroup2'), plan.str(m.destination), plan.str('cgroup2'), opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT), null, 1, rootReg);
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

export function planMounts(plan: Plan, mounts: Mount[] | undefined, bundle: string, rootReg: number, cgroup?: CgroupView): { devMounted: boolean } {
  let devMounted = false;
  (mounts ?? []).forEach((m, i) => {
    const where = `mounts[${i}]`;
    if (!isAbsolute(m.destination)) {
      throw new LxrError(`${where}.destination: "${m.destination}" must be an absolute path`);
    }
    const opts = parseMountOptions(m.options, where);
    const what = label(m, i);
    const type = m.type && m.type !== 'none' ? m.type : undefined;
    if (m.uidMappings || m.gidMappings) throw new LxrError(`${where}: idmapped mounts are not supported by lxr-runtime yet`);
    if (m.destination.replace(/\/+$/, '') === '/dev') devMounted = true;
    if (opts.bind || type === 'bind') {
      if (!m.source) throw new LxrError(`${where}.source: a bind mount needs a source`);
      const src = resolve(bundle, m.source);
      let isDir: boolean;
      try {
        isDir = statSync(src).isDirectory();
      } catch (e) {
        throw new LxrError(`${where}.source: "${src}" does not exist`, { cause: e });
      }
      const rec = opts.flags & MS.REC;
      plan.add(Op.MOUNT, what, plan.str(src), plan.str(m.destination), null, MS.BIND | rec, null, isDir ? 1 : 2, rootReg);
      const rest = opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
      if (rest) plan.add(Op.REMOUNT, `${what}: remount with its options`, plan.str(m.destination), rest, rootReg);
    } else {
      if (!type) throw new LxrError(`${where}.type: a mount that is not a bind mount needs a type`);
      if (type === 'cgroup' || type === 'cgroup2') {
        planCgroupMount(plan, m, opts, what, rootReg, cgroup);
        return;
      }
      const data = opts.data.join(',');
      plan.add(
        Op.MOUNT, what, m.source ? plan.str(m.source) : plan.str(type), plan.str(m.destination), plan.str(type),
        opts.flags & ~MS.REMOUNT, data ? plan.str(data) : null, 1, rootReg,
      );
    }
    for (const p of opts.propagation) {
      plan.add(Op.MOUNT, `${what}: set propagation`, null, plan.str(m.destination), null, p, null, 0, rootReg);
    }
  });
  return { devMounted };
}

export function rootfsPropagationFlags(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const p = PROPAGATION[value];
  if (p === undefined) throw new LxrError(`linux.rootfsPropagation: unknown propagation "${value}"`);
  return p;
}
