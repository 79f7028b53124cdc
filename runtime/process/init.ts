// Compile a spec into the plan that the container's init carries out between clone and
// execve. TypeScript decides everything here; lxr-init (native/executor.c) only performs the steps.
import { isAbsolute } from 'node:path';
import { statSync } from 'node:fs';
import abi from '../../native/abi.json' with { type: 'json' };
import type { Spec, Process } from '../../oci-spec/types.js';
import { DEFAULT_PATH } from '../../oci-spec/default.js';
import { Op, Plan, syscallNumber } from '../../native/plan.js';
import { idmapRequests, planBindSources, planMounts, rootfsPropagationFlags, MOUNT_ATTR, MS, type IdmapRequest, type MountContext } from '../linux/mounts.js';
import { planDevices } from '../linux/devices.js';
import { planNamespaces, closeNamespaceFds, NS_FLAG, type NamespacePlan } from '../linux/namespaces.js';
import { capMasks, lastCap, lo, hi } from '../linux/capabilities.js';
import { planRlimits } from '../linux/rlimits.js';
import { planLinuxAttrs, planProcessAttrs } from '../linux/process-attrs.js';
import { compileSeccomp, type CompiledSeccomp } from '../linux/seccomp.js';
import { LxrError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { checkSysctls } from '../linux/sysctl.js';
import { envWithHome } from '../linux/home.js';
import { CLONE } from '../../native/idmap.js';

/** SYNC ids: where the child stops and waits for the parent. */
export const Sync = {
  /** the user namespace exists: write uid_map/gid_map */
  USERNS: 1,
  /** the final process exists: put it in its cgroup, set oom_score_adj */
  CGROUP: 2,
  /** mounts are done, before pivot_root: prestart, createRuntime and createContainer hooks */
  HOOKS: 3,
  /** everything is ready; next the init waits on exec.fifo for `start` */
  READY: 4,
  /** the init waits on its channel for its idmapped mounts (sent with SCM_RIGHTS, no release) */
  IDMAP: 5,
  /** the seccomp filter with a notify listener is loaded: send its fd to listenerPath */
  SECCOMP: 6,
} as const;


export interface InitOptions {
  spec: Spec;
  /** the container's id: its session keyring is named after it */
  id?: string;
  /** --no-new-keyring: keep the runtime's session keyring (runc's flag) */
  noNewKeyring?: boolean;
  bundle: string;
  rootfs: string;
  /** child end of the channel */
  chanFd: number;
  /** exec.fifo opened O_RDWR; the init blocks reading it until `start` */
  fifoFd: number;
  /** fds for the container's 0, 1, 2 (ignored with a terminal) */
  stdio: [number, number, number];
  /** connected console socket (terminal: true) */
  consoleFd?: number;
  noPivot?: boolean;
  preserveFds?: number;
  /** child end of the socketpair for a seccomp notify listener fd (SCMP_ACT_NOTIFY) */
  seccompSocketFd?: number;
  /** the runtime is not root: a new user namespace's maps are written by the caller itself or newuidmap */
  rootless?: boolean;
  /** the container's cgroup directories, for "cgroup" mounts */
  cgroupDirs?: { layout: 'v1' | 'hybrid' | 'v2'; dirs: Record<string, string> };
  /** where compiled seccomp programs are kept (runtime/linux/seccomp-cache.ts); none: no cache */
  seccompCacheDir?: string;
}

export interface InitPlan {
  plan: Plan;
  cloneFlags: bigint;
  namespaces: NamespacePlan;
  /** a user namespace is created: the parent must write the id maps at Sync.USERNS */
  newUserns: boolean;
  /** idmapped mounts the parent must send at Sync.IDMAP (sendIdmappedMounts) */
  idmapped: IdmapRequest[];
  /** keep the seccomp program just compiled in the cache: call once the create succeeded */
  keepSeccomp?: () => void;
}

/** Where execve should look for process.args[0], inside the container. */
export function execCandidates(proc: Process): string[] {
  const arg0 = proc.args![0]!;
  if (arg0.includes('/')) return [arg0];
  const pathEnv = (proc.env ?? []).find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return pathEnv
    .split(':')
    .filter((d) => d)
    .map((d) => `${d.replace(/\/+$/, '')}/${arg0}`);
}

/** Add the process-identity steps shared by init and exec: rlimits, caps, user, cwd. */
export interface SeccompListener {
  /** our end of the socketpair the listener fd is sent over */
  socketFd: number;
  chanFd: number;
}

export function planProcessIdentity(plan: Plan, proc: Process, opts: { setgroups: boolean; seccomp?: CompiledSeccomp; listener?: SeccompListener }): void {
  // while the process still has its capabilities (SCHED_FIFO needs CAP_SYS_NICE)
  planProcessAttrs(plan, proc);
  for (const r of planRlimits(proc.rlimits)) {
    plan.add(Op.SETRLIMIT, `set ${r.where}`, r.resource, r.soft, r.hard);
  }
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while the
  // process still has it (as runc does). With no_new_privs it is loaded last.
  if (opts.seccomp && !proc.noNewPrivileges) planSeccomp(plan, opts.seccomp, opts.listener);
  const caps = capMasks(proc.capabilities);
  plan.add(Op.CAP_BOUNDING, 'drop capabilities from the bounding set (process.capabilities.bounding)', lo(caps.bounding), hi(caps.bounding), lastCap());
  plan.add(Op.KEEPCAPS, 'keep capabilities across the change of user', 1);
  const gids = proc.user.additionalGids ?? [];
  if (opts.setgroups || gids.length) {
    const buf = Buffer.alloc(Math.max(4, gids.length * 4));
    gids.forEach((g, i) => buf.writeUInt32LE(g, i * 4));
    plan.add(Op.SETGROUPS, `set additional groups (process.user.additionalGids)`, gids.length, plan.buf(buf));
  }
  plan.add(Op.SETRESGID, `set gid ${proc.user.gid} (process.user.gid)`, proc.user.gid);
  plan.add(Op.SETRESUID, `set uid ${proc.user.uid} (process.user.uid)`, proc.user.uid);
  plan.add(Op.KEEPCAPS, 'reset keep-capabilities', 0);
  plan.add(
    Op.CAPSET, 'set capabilities (process.capabilities)',
    lo(caps.effective), hi(caps.effective), lo(caps.permitted), hi(caps.permitted), lo(caps.inheritable), hi(caps.inheritable),
  );
  // The kernel raises an ambient capability only if it is permitted and inheritable.
  // runc's own `spec` lists ambient capabilities without inheritable ones and still
  // runs, so skip the ones that cannot be raised, as runc does, instead of failing.
  const ambient = caps.ambient & caps.permitted & caps.inheritable;
  if (ambient !== caps.ambient) log.debug('process.capabilities.ambient: capabilities that are not also permitted and inheritable are not raised');
  if (ambient) plan.add(Op.AMBIENT, 'raise ambient capabilities (process.capabilities.ambient)', lo(ambient), hi(ambient));
  plan.add(Op.UMASK, 'set umask (process.user.umask)', proc.user.umask ?? 0o022);
  plan.add(Op.CHDIR, `change to the working directory "${proc.cwd}" (process.cwd)`, plan.str(proc.cwd));
  if (proc.noNewPrivileges) plan.add(Op.NO_NEW_PRIVS, 'set no_new_privs (process.noNewPrivileges)');
}

export function planSeccomp(plan: Plan, sc: CompiledSeccomp, listener?: SeccompListener): void {
  if (!sc.notify) {
    plan.add(Op.SECCOMP, 'load the seccomp filter (linux.seccomp)', plan.buf(sc.program), sc.program.length / 8, sc.flags);
    return;
  }
  if (!listener) throw new LxrError('linux.seccomp: SCMP_ACT_NOTIFY is not supported here');
  plan.add(Op.SECCOMP_LISTENER, 'load the seccomp filter with a notify listener (linux.seccomp)', plan.buf(sc.program), sc.program.length / 8, sc.flags, listener.socketFd);
  plan.add(Op.SYNC, 'send the seccomp notify fd to linux.seccomp.listenerPath', listener.chanFd, Sync.SECCOMP);
}

const ENOENT = 2;
const ENOSYS = 38;

/** The host's /dev/null must be what masks are made of: the character device 1:3. */
function checkHostDevNull(): void {
  let st;
  try {
    st = statSync('/dev/null');
  } catch (e) {
    throw new LxrError(`linux.maskedPaths: the host's /dev/null: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (!st.isCharacterDevice() || st.rdev !== 0x103) throw new LxrError("linux.maskedPaths: the host's /dev/null is not the null device (1:3)");
}

/**
 * A session keyring of the container's own, named `_ses.<id>` and searchable by its owner, as
 * runc makes (--no-new-keyring keeps the runtime's). Otherwise the container would possess
 * the runtime's session keyring, and through it the keys of the host user that ran it.
 * A kernel without keyrings (ENOSYS) is not an error.
 */
export function planSessionKeyring(plan: Plan, id: string): void {
  const nr = syscallNumber('keyctl');
  const KEYCTL_JOIN_SESSION_KEYRING = 1;
  const KEYCTL_SETPERM = 5;
  const KEY_SPEC_SESSION_KEYRING = -3;
  // the kernel's default for a joined keyring (possessor: all; user: view, read, link) + user search
  const perm = 0x3f000000 | 0x00010000 | 0x00020000 | 0x00100000 | 0x00080000;
  plan.add(Op.SYSCALL, `join a new session keyring "_ses.${id}" (--no-new-keyring keeps the runtime's)`, nr, 0b10, KEYCTL_JOIN_SESSION_KEYRING, plan.str(`_ses.${id}`)).allowErrno(ENOSYS);
  plan.add(Op.SYSCALL, 'make the session keyring searchable by its owner', nr, 0, KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING, perm).allowErrno(ENOSYS);
}

export function buildInitPlan(o: InitOptions): InitPlan {
  const { spec } = o;
  const proc = spec.process ?? ({ user: { uid: 0, gid: 0 }, cwd: '/' } as Process);
  const linux = spec.linux ?? {};
  const plan = new Plan();
  const ns = planNamespaces(linux.namespaces);
  try {
    // sysctls are written in the namespaces the init enters: refuse the host's
    checkSysctls(linux.sysctl, ns);
    const newUserns = ns.create.has('user');
    // Namespaces are made by the plan itself, never by the clone of this process: lxr-init
    // runs first (outside any container namespace), then unshares, and clones the init if a
    // pid namespace is involved (unshare does not move the caller into a new pid namespace).
    let newFlags = 0;
    for (const t of ns.create) if (t !== 'cgroup' && t !== 'time') newFlags |= NS_FLAG[t];
    const cloneFlags = 0n;

    plan.add(Op.DUMPABLE, 'make the init non-dumpable until execve', 0);
    // Rootless: /proc/PID/uid_map of a non-dumpable process belongs to root, so neither the
    // runtime nor newuidmap could write it. Be dumpable only while the maps are written.
    const waitMaps = (): void => {
      if (o.rootless) plan.add(Op.DUMPABLE, 'let the runtime (not root) write the user namespace maps', 1);
      plan.add(Op.SYNC, 'wait for the user namespace maps', o.chanFd, Sync.USERNS);
      if (o.rootless) plan.add(Op.DUMPABLE, 'make the init non-dumpable again', 0);
    };
    // In a user namespace that does not own the network namespace, sysfs cannot be
    // mounted: bind the host's /sys instead (as runc does for rootless containers).
    const inUserns = newUserns || ns.join.some((j) => j.type === 'user');
    const mountOpts: MountContext = {
      sysfsBind: inUserns && !ns.create.has('network'), rootless: !!o.rootless, userns: inUserns,
      idmapSync: { chanFd: o.chanFd, id: Sync.IDMAP }, rootfs: o.rootfs,
    };
    // slots: idmapped mounts first, then bind sources opened early, then masks
    let nextSlot = idmapRequests(spec.mounts, o.bundle, mountOpts).length;
    if (inUserns && !o.rootless) {
      mountOpts.preopened = planBindSources(plan, spec.mounts, o.bundle, nextSlot, abi.limits.MOUNT_SLOTS);
      nextSlot += mountOpts.preopened.size;
    }
    for (const j of ns.join) {
      plan.add(Op.SETNS, `join ${j.type} namespace "${j.path}" (config.json ${j.where}.path)`, j.fd, NS_FLAG[j.type]);
    }
    const unshareFlags = (newFlags & ~CLONE.NEWPID) | (ns.create.has('time') ? CLONE.NEWTIME : 0);
    if (unshareFlags) plan.add(Op.UNSHARE, 'create namespaces (linux.namespaces)', unshareFlags);
    if (newUserns) waitMaps();
    if (ns.create.has('time')) {
      const offsets = Object.entries(linux.timeOffsets ?? {})
        .map(([clock, v]) => `${clock} ${v.secs ?? 0} ${v.nanosecs ?? 0}\n`)
        .join('');
      if (offsets) plan.add(Op.WRITE_FILE, 'write linux.timeOffsets', plan.str('/proc/self/timens_offsets'), plan.str(offsets), Buffer.byteLength(offsets));
    }
    const pidInvolved = ns.create.has('pid') || ns.join.some((j) => j.type === 'pid') || ns.create.has('time');
    if (pidInvolved) {
      plan.add(Op.CLONE, 'clone the container init', ns.create.has('pid') ? CLONE.NEWPID : 0, o.chanFd);
    }
    if (newUserns) {
      plan.add(Op.SETRESGID, 'become root in the user namespace', 0);
      plan.add(Op.SETRESUID, 'become root in the user namespace', 0);
    }
    plan.add(Op.SETSID, 'create a session');
    if (!o.noNewKeyring) planSessionKeyring(plan, o.id ?? 'lxr');
    // before the hooks, so that createContainer hooks see the container's names
    if (spec.hostname !== undefined) plan.add(Op.SETHOSTNAME, `set hostname "${spec.hostname}"`, plan.str(spec.hostname), Buffer.byteLength(spec.hostname));
    if (spec.domainname !== undefined) plan.add(Op.SETDOMAINNAME, `set domainname "${spec.domainname}"`, plan.str(spec.domainname), Buffer.byteLength(spec.domainname));
    // runc brings up lo in a network namespace it creates (podman --network none relies on it)
    if (ns.create.has('network')) plan.add(Op.LOOPBACK_UP, 'bring up the loopback interface "lo" of the new network namespace');
    plan.add(Op.SYNC, 'wait for the cgroup', o.chanFd, Sync.CGROUP);
    if (ns.create.has('cgroup')) plan.add(Op.UNSHARE, 'create the cgroup namespace', CLONE.NEWCGROUP);

    // --- the root filesystem (runtime.md create, config.md root/mounts) ---
    // Without a mount namespace of its own the container inherits the runtime's (spec:
    // "MUST inherit"): its mounts are made there, as runc does, and delete removes them.
    // With a mount namespace (new or joined), the rootfs is prepared in it and pivoted to.
    const hasMountNs = ns.create.has('mount') || ns.join.some((j) => j.type === 'mount');
    const ROOT = 0;
    if (hasMountNs) {
      plan.add(Op.MOUNT, 'make mounts slave to the host (/)', null, plan.str('/'), null, MS.SLAVE | MS.REC, null, 0, -1);
      plan.add(Op.MOUNT, `bind the rootfs "${o.rootfs}" onto itself`, plan.str(o.rootfs), plan.str(o.rootfs), null, MS.BIND | MS.REC, null, 0, -1);
    }
    plan.add(Op.OPEN_ROOT, `open the rootfs "${o.rootfs}"`, plan.str(o.rootfs), ROOT);
    const cgroupView = o.cgroupDirs ? { ...o.cgroupDirs, namespaced: ns.create.has('cgroup') || ns.join.some((j) => j.type === 'cgroup') } : undefined;
    const { devMounted, idmapped } = planMounts(plan, spec.mounts, o.bundle, ROOT, cgroupView, mountOpts);
    // linux.maskedPaths: a file is covered with the HOST's /dev/null, cloned now, while
    // "/dev/null" still means the host's, as a read-only mount; never a path resolved in the
    // container, which an image or another container could make a link to anything
    // (CVE-2025-31133 class). One clone per masked path; a directory gets a tmpfs instead.
    const masked = linux.maskedPaths ?? [];
    const maskSlot0 = nextSlot;
    if (maskSlot0 + masked.length > abi.limits.MOUNT_SLOTS) throw new LxrError(`linux.maskedPaths: at most ${abi.limits.MOUNT_SLOTS - maskSlot0} paths are supported`);
    if (masked.length) checkHostDevNull();
    masked.forEach((p, i) => {
      if (!isAbsolute(p)) throw new LxrError(`linux.maskedPaths[${i}]: "${p}" must be an absolute path`);
      plan.add(Op.OPEN_TREE, `clone the host's /dev/null to mask "${p}" (linux.maskedPaths[${i}])`, plan.str('/dev/null'), 0, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC, maskSlot0 + i);
    });
    planDevices(plan, linux.devices, { defaults: devMounted, bindDevices: inUserns, rootReg: ROOT });
    plan.add(Op.SYNC, 'run the createRuntime and createContainer hooks', o.chanFd, Sync.HOOKS);
    if (!hasMountNs) {
      plan.add(Op.CHROOT, `chroot to "${o.rootfs}" (no mount namespace)`, plan.str(o.rootfs));
    } else {
      if (o.noPivot) plan.add(Op.MOVE_ROOT, `move the rootfs "${o.rootfs}" to / (--no-pivot)`, plan.str(o.rootfs));
      else plan.add(Op.PIVOT_ROOT, `pivot_root to "${o.rootfs}"`, plan.str(o.rootfs));
    }
    plan.add(Op.OPEN_ROOT, 'open the new root', plan.str('/'), ROOT);
    // a missing working directory is made, as runc does
    if (spec.process && isAbsolute(proc.cwd)) plan.add(Op.MKDIR_IN_ROOT, `make the working directory "${proc.cwd}" (process.cwd)`, plan.str(proc.cwd), ROOT);
    for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
      const path = '/proc/sys/' + key.replace(/\./g, '/');
      if (key.includes('..') || key.startsWith('/')) throw new LxrError(`linux.sysctl: invalid key "${key}"`);
      plan.add(Op.WRITE_FILE, `set sysctl ${key} (linux.sysctl)`, plan.str(path), plan.str(value), Buffer.byteLength(value));
    }
    masked.forEach((p, i) => {
      plan.add(Op.MASK_PATH, `mask "${p}" (linux.maskedPaths[${i}])`, plan.str(p), ROOT, maskSlot0 + i, MS.RDONLY, plan.str('size=0k')).allowErrno(ENOENT);
    });
    (linux.readonlyPaths ?? []).forEach((p, i) => {
      if (!isAbsolute(p)) throw new LxrError(`linux.readonlyPaths[${i}]: "${p}" must be an absolute path`);
      plan.add(Op.READONLY_PATH, `make "${p}" read-only (linux.readonlyPaths[${i}])`, plan.str(p), ROOT).allowErrno(ENOENT);
    });
    if (spec.root?.readonly) plan.add(Op.REMOUNT, 'remount the rootfs read-only (root.readonly)', plan.str('/'), MS.RDONLY, ROOT);
    // last of the mounts: masked and read-only paths are bind mounts, which an
    // "unbindable" tree would refuse
    const prop = rootfsPropagationFlags(linux.rootfsPropagation);
    if (prop !== undefined && hasMountNs) {
      plan.add(Op.MOUNT, `set rootfs propagation "${linux.rootfsPropagation}" (linux.rootfsPropagation)`, null, plan.str('/'), null, prop, null, 0, -1);
    }

    if (!spec.process) {
      // no process (runtime.md: start MUST then fail): the init only waits, and start kills it
      plan.add(Op.SYNC, 'report ready', o.chanFd, Sync.READY);
      plan.add(Op.WAIT_FIFO, 'wait for start', o.fifoFd);
      return { plan, cloneFlags, namespaces: ns, newUserns, idmapped };
    }

    // --- stdio ---
    if (proc.terminal) {
      if (o.consoleFd === undefined) throw new LxrError('process.terminal is true: a console socket is needed (--console-socket)');
      plan.add(Op.CONSOLE, 'set up the terminal and send it to the console socket', o.consoleFd, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0);
    } else {
      o.stdio.forEach((fd, i) => plan.add(Op.DUP, `set up stdio fd ${i}`, fd, i));
    }

    // Everything but stdio and --preserve-fds is closed at execve. Marked now, before a
    // seccomp profile that may not allow close_range is loaded.
    const preserve = o.preserveFds ?? 0;
    plan.add(Op.CLOEXEC_FROM, 'close inherited fds', 3 + preserve);
    const seccomp = linux.seccomp ? compileSeccomp(linux.seccomp, 'linux.seccomp', o.seccompCacheDir) : undefined;
    const listener = seccomp?.notify && o.seccompSocketFd !== undefined ? { socketFd: o.seccompSocketFd, chanFd: o.chanFd } : undefined;
    planLinuxAttrs(plan, linux);
    planProcessIdentity(plan, proc, { setgroups: !newUserns || (proc.user.additionalGids?.length ?? 0) > 0, ...(seccomp ? { seccomp } : {}), ...(listener ? { listener } : {}) });
    const cands = execCandidates(proc);
    const argv = proc.args!;
    const env = envWithHome(proc, o.rootfs, { mounts: spec.mounts, bundle: o.bundle });
    plan.add(Op.EXEC, `find executable "${argv[0]}" (process.args[0])`, plan.arr(cands), plan.arr(argv), plan.arr(env), 1);
    // A notify filter must reach its agent during create, while this runtime is still
    // here: with noNewPrivileges it is loaded now rather than after start.
    if (seccomp?.notify && proc.noNewPrivileges) planSeccomp(plan, seccomp, listener);
    plan.add(Op.SYNC, 'report ready', o.chanFd, Sync.READY);
    plan.add(Op.WAIT_FIFO, 'wait for start', o.fifoFd);
    if (preserve) plan.add(Op.CLEAR_CLOEXEC, 'pass --preserve-fds', 3, preserve);
    if (seccomp && !seccomp.notify && proc.noNewPrivileges) planSeccomp(plan, seccomp);
    plan.add(Op.EXEC, `exec "${argv[0]}" (process.args[0])`, plan.arr(cands), plan.arr(argv), plan.arr(env), 0);
    return { plan, cloneFlags, namespaces: ns, newUserns, idmapped, ...(seccomp?.keep ? { keepSeccomp: seccomp.keep } : {}) };
  } catch (e) {
    closeNamespaceFds(ns);
    throw e;
  }
}
