// lxr's seccomp profiles. The default one is lxr's own list, made to match what podman's
// default (containers/common seccomp.json) and docker's default let a container do, and
// stricter where either is loose: no user namespaces, keyrings, io_uring, userfaultfd,
// perf events, BPF or mounts without the capability that would make them legitimate.
//
// Profiles are written in docker's seccomp profile format (the runtime-spec's linux.seccomp
// plus `archMap` and per-rule `includes`/`excludes` on capabilities, architectures and
// kernel versions). buildSeccomp resolves one for a container's final capability set and
// this machine's architecture into a plain linux.seccomp, which lxr-runtime compiles with
// libseccomp (runtime/linux/seccomp.ts).
import { release } from 'node:os';
import type { Seccomp } from '../../oci-spec/types.js';

export type { ProfileArg, ProfileFilter, ProfileRule, SeccompProfile } from './profile.js';
export { checkProfile, readProfile } from './profile.js';
import type { ProfileFilter, ProfileRule, SeccompProfile } from './profile.js';

const EPERM = 1;
const EINVAL = 22;
const ENOSYS = 38;

/** clone()'s namespace flags: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. */
const CLONE_NS_BITS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
/** unshare() also takes CLONE_NEWTIME (in clone() that bit is part of the exit signal). */
const UNSHARE_NS_BITS = [...CLONE_NS_BITS, 0x00000080];
const mask = (bits: number[]) => bits.reduce((a, b) => a | b, 0) >>> 0;

// ---- the default profile ----

/** Allowed for every container. */
const ALLOWED = [
  '_llseek', '_newselect', 'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'cachestat', 'capget', 'capset', 'chdir',
  'chmod', 'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64', 'clock_gettime',
  'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect', 'copy_file_range', 'creat',
  'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait',
  'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64',
  'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchown32', 'fchownat', 'fcntl',
  'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64',
  'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_requeue', 'futex_time64', 'futex_wait', 'futex_waitv',
  'futex_wake', 'futimesat', 'get_robust_list', 'get_thread_area', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid',
  'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer', 'getpeername', 'getpgid',
  'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit',
  'getrusage', 'getsid', 'getsockname', 'getsockopt', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr',
  'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'io_destroy', 'io_getevents', 'io_setup',
  'io_submit', 'ioctl', 'ioprio_get', 'ioprio_set', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr', 'lremovexattr',
  'lseek', 'lsetxattr', 'lstat', 'lstat64', 'madvise', 'map_shadow_stack', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir',
  'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open',
  'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'mremap', 'mseal', 'msgctl',
  'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat', 'open',
  'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease', 'pselect6',
  'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readdir', 'readlink', 'readlinkat', 'readv', 'recv',
  'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2',
  'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_get_priority_max',
  'sched_get_priority_min', 'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield',
  'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg',
  'sendmsg', 'sendto', 'set_robust_list', 'set_thread_area', 'set_tid_address', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32',
  'setgid', 'setgid32', 'setgroups', 'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid',
  'setresgid32', 'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'setsid', 'setsockopt', 'setuid', 'setuid32',
  'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn',
  'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
  'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun',
  'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64',
  'timerfd_settime', 'timerfd_settime64', 'times', 'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink',
  'unlinkat', 'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
];

/**
 * Refused with EPERM for every container: obsolete or host-wide calls (as podman refuses
 * them), and kernel interfaces with a long record of container escapes (keyrings, which
 * are not namespaced; io_uring; userfaultfd).
 */
const REFUSED = [
  'add_key', 'bdflush', 'io_pgetevents', 'io_pgetevents_time64', 'io_uring_enter', 'io_uring_register', 'io_uring_setup',
  'kexec_file_load', 'kexec_load', 'keyctl', 'membarrier', 'migrate_pages', 'move_pages', 'nfsservctl', 'nice', 'oldfstat',
  'oldlstat', 'oldolduname', 'oldstat', 'olduname', 'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write', 'request_key',
  'sgetmask', 'ssetmask', 'swapcontext', 'swapoff', 'swapon', 'sysfs', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old', 'vmsplice',
];

/** Allowed with any of the capabilities, refused with EPERM without them. */
const BY_CAPABILITY: { caps: string[]; names: string[] }[] = [
  {
    caps: ['CAP_SYS_ADMIN'],
    names: [
      'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount', 'mount_setattr',
      'move_mount', 'open_tree', 'pivot_root', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'umount',
      'umount2', 'unshare',
    ],
  },
  { caps: ['CAP_SYS_ADMIN', 'CAP_BPF'], names: ['bpf'] },
  { caps: ['CAP_SYS_ADMIN', 'CAP_PERFMON'], names: ['perf_event_open'] },
  { caps: ['CAP_SYS_ADMIN', 'CAP_SYSLOG'], names: ['syslog'] },
  { caps: ['CAP_DAC_READ_SEARCH'], names: ['open_by_handle_at'] },
  { caps: ['CAP_SYS_BOOT'], names: ['reboot'] },
  { caps: ['CAP_SYS_CHROOT'], names: ['chroot'] },
  { caps: ['CAP_SYS_MODULE'], names: ['create_module', 'delete_module', 'finit_module', 'init_module', 'query_module'] },
  { caps: ['CAP_SYS_NICE'], names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'] },
  { caps: ['CAP_SYS_PACCT'], names: ['acct'] },
  { caps: ['CAP_SYS_PTRACE'], names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'] },
  { caps: ['CAP_SYS_RAWIO'], names: ['ioperm', 'iopl'] },
  { caps: ['CAP_SYS_TIME'], names: ['clock_settime', 'clock_settime64', 'settimeofday', 'stime'] },
  { caps: ['CAP_SYS_TTY_CONFIG'], names: ['vhangup'] },
];

/** Allowed only on these architectures (docker's arch names). */
const BY_ARCH: { arches: string[]; names: string[] }[] = [
  { arches: ['amd64', 'x32'], names: ['arch_prctl'] },
  { arches: ['amd64', 'x32', 'x86'], names: ['modify_ldt'] },
  { arches: ['arm', 'arm64'], names: ['arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'set_tls', 'sync_file_range2'] },
  { arches: ['ppc64le'], names: ['sync_file_range2'] },
  { arches: ['s390', 's390x'], names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'] },
  { arches: ['riscv64'], names: ['riscv_flush_icache'] },
];

/** personality(2) values a process may set: PER_LINUX, PER_LINUX32, UNAME26 (with and without LINUX32), and the query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Rules that let a call through only when none of `bits` is set in argument `index`, and refuse it (EPERM) when one is. */
function withoutFlags(name: string, index: number, bits: number[], filter: { excludes: ProfileFilter; includes?: ProfileFilter }): ProfileRule[] {
  return [
    { names: [name], action: 'SCMP_ACT_ALLOW', args: [{ index, value: mask(bits), valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], ...filter },
    ...bits.map((b): ProfileRule => ({ names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index, value: b, valueTwo: b, op: 'SCMP_CMP_MASKED_EQ' }], ...filter })),
  ];
}

function defaultProfile(): SeccompProfile {
  const syscalls: ProfileRule[] = [
    { names: REFUSED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'refused for every container' },
    { names: ALLOWED, action: 'SCMP_ACT_ALLOW' },
    ...PERSONALITIES.map((v): ProfileRule => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: v, valueTwo: 0, op: 'SCMP_CMP_EQ' }] })),
    ...BY_ARCH.map((r): ProfileRule => ({ names: r.names, action: 'SCMP_ACT_ALLOW', includes: { arches: r.arches } })),
  ];
  for (const g of BY_CAPABILITY) {
    for (const cap of g.caps) syscalls.push({ names: g.names, action: 'SCMP_ACT_ALLOW', includes: { caps: [cap] } });
    // without CAP_SYS_ADMIN, clone, clone3 and unshare get rules of their own below
    const names = g.caps.includes('CAP_SYS_ADMIN') ? g.names.filter((n) => !['clone', 'clone3', 'unshare'].includes(n)) : g.names;
    syscalls.push({ names, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, excludes: { caps: g.caps } });
  }
  // Without CAP_SYS_ADMIN: clone and unshare without namespace flags only (a user
  // namespace would hand the container a full set of capabilities over new kernel code),
  // and clone3, whose flags sit in memory where seccomp cannot see them, says ENOSYS so
  // that libc falls back to clone.
  const noAdmin = { caps: ['CAP_SYS_ADMIN'] };
  syscalls.push(
    ...withoutFlags('clone', 0, CLONE_NS_BITS, { excludes: { ...noAdmin, arches: ['s390', 's390x'] } }),
    ...withoutFlags('clone', 1, CLONE_NS_BITS, { excludes: noAdmin, includes: { arches: ['s390', 's390x'] } }),
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: noAdmin },
    ...withoutFlags('unshare', 0, UNSHARE_NS_BITS, { excludes: noAdmin }),
  );
  // Without CAP_AUDIT_WRITE, an audit netlink socket is EINVAL (what a kernel without audit
  // says), so that login tools do not fail on the missing capability; every other socket is allowed.
  const AF_NETLINK = 16;
  const NETLINK_AUDIT = 9;
  const noAudit = { excludes: { caps: ['CAP_AUDIT_WRITE'] } };
  syscalls.push(
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: NETLINK_AUDIT, valueTwo: 0, op: 'SCMP_CMP_NE' }], ...noAudit },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_NETLINK, valueTwo: 0, op: 'SCMP_CMP_NE' }], ...noAudit },
    // (after the rules that allow: libseccomp refuses this one first on x86, where socket() may go through socketcall())
    { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: EINVAL, args: [{ index: 0, value: AF_NETLINK, valueTwo: 0, op: 'SCMP_CMP_EQ' }, { index: 2, value: NETLINK_AUDIT, valueTwo: 0, op: 'SCMP_CMP_EQ' }], ...noAudit },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_AUDIT_WRITE'] } },
  );
  return {
    // A call this list does not know (newer than it) says ENOSYS, so that programs fall back
    // to older calls as they would on an older kernel; known calls that are refused say EPERM.
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: ENOSYS,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
      { architecture: 'SCMP_ARCH_MIPS64', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'] },
      { architecture: 'SCMP_ARCH_MIPSEL64', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'] },
      { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
      { architecture: 'SCMP_ARCH_PPC64LE', subArchitectures: [] },
      { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: [] },
    ],
    syscalls,
  };
}

export const DEFAULT_PROFILE: SeccompProfile = defaultProfile();

// ---- resolving a profile for one container ----

/** This machine's architecture: docker's name for it and libseccomp's. */
export function hostArch(arch: string = process.arch): { name: string; scmp: string } {
  const table: Record<string, [string, string]> = {
    x64: ['amd64', 'SCMP_ARCH_X86_64'], ia32: ['x86', 'SCMP_ARCH_X86'], arm64: ['arm64', 'SCMP_ARCH_AARCH64'], arm: ['arm', 'SCMP_ARCH_ARM'],
    s390x: ['s390x', 'SCMP_ARCH_S390X'], ppc64: ['ppc64le', 'SCMP_ARCH_PPC64LE'], riscv64: ['riscv64', 'SCMP_ARCH_RISCV64'],
    mips64el: ['mipsel64', 'SCMP_ARCH_MIPSEL64'], mips: ['mips', 'SCMP_ARCH_MIPS'],
  };
  const [name, scmp] = table[arch] ?? [arch, `SCMP_ARCH_${arch.toUpperCase()}`];
  return { name, scmp };
}

function kernelAtLeast(min: string, have: string): boolean {
  const v = (s: string) => s.split(/[.-]/).slice(0, 2).map((x) => Number.parseInt(x, 10) || 0);
  const [a = 0, b = 0] = v(have);
  const [c = 0, d = 0] = v(min);
  return a > c || (a === c && b >= d);
}

export interface ResolveOptions {
  /** the container's capabilities (its bounding set), as CAP_* names */
  caps: string[];
  arch?: string;
  kernel?: string;
}

/**
 * The linux.seccomp for one container: rules whose `includes` the container does not meet
 * or whose `excludes` it does are left out (as docker resolves them), and `archMap` gives
 * this machine's architecture and its sub-architectures.
 */
export function buildSeccomp(p: SeccompProfile, o: ResolveOptions): Seccomp {
  const arch = hostArch(o.arch);
  const kernel = o.kernel ?? release();
  const caps = new Set(o.caps);
  const out: Seccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  if (p.architectures?.length) out.architectures = [...p.architectures];
  else if (p.archMap?.length) {
    const m = p.archMap.find((a) => a.architecture === arch.scmp);
    if (m) out.architectures = [m.architecture, ...(m.subArchitectures ?? [])];
  }
  if (p.flags?.length) out.flags = [...p.flags];
  if (p.listenerPath) out.listenerPath = p.listenerPath;
  if (p.listenerMetadata) out.listenerMetadata = p.listenerMetadata;
  const rules: NonNullable<Seccomp['syscalls']> = [];
  const seen = new Set<string>();
  for (const r of p.syscalls ?? []) {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(arch.name)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernel)) continue;
    if (exc.arches?.length && exc.arches.includes(arch.name)) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(c))) continue;
    const args = (r.args ?? []).map((a) => ({ index: a.index, value: a.value, ...(a.valueTwo ? { valueTwo: a.valueTwo } : {}), op: a.op }));
    // the same rule twice (a call allowed by either of two capabilities) is given once
    const key = JSON.stringify([r.action, r.errnoRet, args]);
    const names = (r.names ?? (r.name ? [r.name] : [])).filter((n) => !seen.has(`${key}${n}`));
    names.forEach((n) => seen.add(`${key}${n}`));
    if (!names.length) continue;
    rules.push({ names, action: r.action, ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}), ...(args.length ? { args } : {}) });
  }
  out.syscalls = rules;
  return out;
}
