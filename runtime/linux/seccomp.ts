// linux.seccomp (config-linux.md "Seccomp"): compiled in the runtime with libseccomp (as
// runc and crun do), exported as classic BPF, and loaded by the container's init as one
// of its last steps. No filter compiler of our own.
import { closeSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Seccomp } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { loadKoffi } from '../../native/koffi.js';
import { cacheKey, readCached, writeCached } from './seccomp-cache.js';

const ACTIONS: Record<string, number> = {
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
};

const OPS: Record<string, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

export const SECCOMP_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

const EPERM = 1;
const SCMP_FLTATR_CTL_NNP = 3;
const SCMP_FLTATR_API_SYSRAWRC = 9;

interface Lib {
  init(def: number): unknown;
  archAdd(ctx: unknown, arch: number): number;
  archResolve(name: string): number;
  syscallResolve(name: string): number;
  ruleAdd(ctx: unknown, action: number, nr: number, count: number, args: Buffer | null): number;
  attrSet(ctx: unknown, attr: number, value: number): number;
  exportBpf(ctx: unknown, fd: number): number;
  release(ctx: unknown): void;
  /** libseccomp's version and API level (the kernel's features it found): part of the cache key */
  identity: string;
}

let lib: Lib | undefined;

function libseccomp(): Lib {
  if (lib) return lib;
  const koffi = loadKoffi();
  let so;
  try {
    so = koffi.load('libseccomp.so.2');
  } catch {
    throw new LxrError('linux.seccomp: libseccomp is not installed (apt-get install libseccomp2)');
  }
  const init = so.func('void *seccomp_init(uint32_t def_action)');
  const archAdd = so.func('int seccomp_arch_add(void *ctx, uint32_t arch)');
  const archResolve = so.func('uint32_t seccomp_arch_resolve_name(const char *name)');
  const syscallResolve = so.func('int seccomp_syscall_resolve_name(const char *name)');
  const ruleAdd = so.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int nr, unsigned int count, const uint8_t *args)');
  const attrSet = so.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)');
  const exportBpf = so.func('int seccomp_export_bpf(void *ctx, int fd)');
  const release = so.func('void seccomp_release(void *ctx)');
  let identity = '';
  try {
    const versionType = koffi.struct('lxr_scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
    const version = koffi.decode(so.func('const lxr_scmp_version *seccomp_version(void)')(), versionType);
    const api = so.func('unsigned int seccomp_api_get(void)')();
    identity = `libseccomp ${version.major}.${version.minor}.${version.micro} api ${api}`;
  } catch {
    /* an older libseccomp: no identity, so no cache */
  }
  lib = {
    init: (d) => init(d),
    archAdd: (c, a) => archAdd(c, a),
    archResolve: (n) => archResolve(n),
    syscallResolve: (n) => syscallResolve(n),
    ruleAdd: (c, a, n, k, b) => ruleAdd(c, a, n, k, b),
    attrSet: (c, a, v) => attrSet(c, a, v),
    exportBpf: (c, fd) => exportBpf(c, fd),
    release: (c) => release(c),
    identity,
  };
  return lib;
}

function action(name: string, errnoRet: number | undefined, where: string): number {
  const base = ACTIONS[name];
  if (base === undefined) throw new LxrError(`${where}: unknown seccomp action "${name}"`);
  if (name === 'SCMP_ACT_ERRNO') return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  if (name === 'SCMP_ACT_TRACE') return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  if (errnoRet !== undefined) throw new LxrError(`${where}.errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno`);
  return base >>> 0;
}

/** One scmp_arg_cmp: { unsigned arg; enum op; u64 datum_a; u64 datum_b } = 24 bytes. */
function argCmp(args: { index: number; value: number; valueTwo?: number; op: string }[], where: string): Buffer {
  const buf = Buffer.alloc(24 * args.length);
  args.forEach((a, i) => {
    const op = OPS[a.op];
    if (op === undefined) throw new LxrError(`${where}.args[${i}].op: unknown operator "${a.op}"`);
    if (a.index > 5) throw new LxrError(`${where}.args[${i}].index: ${a.index} is not a syscall argument (0-5)`);
    buf.writeUInt32LE(a.index, i * 24);
    buf.writeInt32LE(op, i * 24 + 4);
    buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a.value)), i * 24 + 8);
    buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a.valueTwo ?? 0)), i * 24 + 16);
  });
  return buf;
}

export interface CompiledSeccomp {
  /** struct sock_filter[] */
  program: Buffer;
  flags: number;
  /** some rule uses SCMP_ACT_NOTIFY: the listener fd goes to listenerPath */
  notify: boolean;
  /**
   * Store the program in the cache (compiled now, with a cache dir): called by the caller
   * once its command succeeded, since a failed command leaves nothing behind.
   */
  keep?: () => void;
}

/**
 * `cacheDir`: where compiled programs are kept (seccomp-cache.ts), keyed by the profile; a
 * profile compiled before is not compiled again. A new one is stored by `keep()`.
 */
export function compileSeccomp(sc: Seccomp, where = 'linux.seccomp', cacheDir?: string): CompiledSeccomp {
  let flags = 0;
  (sc.flags ?? []).forEach((f, i) => {
    const v = SECCOMP_FLAGS[f];
    if (v === undefined) throw new LxrError(`${where}.flags[${i}]: unknown seccomp flag "${f}"`);
    flags |= v;
  });
  const notify = sc.defaultAction === 'SCMP_ACT_NOTIFY' || (sc.syscalls ?? []).some((r) => r.action === 'SCMP_ACT_NOTIFY');
  if (notify && !sc.listenerPath) throw new LxrError(`${where}.listenerPath: SCMP_ACT_NOTIFY needs a listenerPath to send the notify fd to`);
  if (sc.listenerMetadata !== undefined && !sc.listenerPath) throw new LxrError(`${where}.listenerMetadata: must not be set without listenerPath`);
  const def = action(sc.defaultAction, sc.defaultErrnoRet, `${where}.defaultAction`);
  const l = libseccomp();
  const key = cacheDir && l.identity ? cacheKey(sc, l.identity) : undefined;
  if (key) {
    const hit = readCached(cacheDir!, key);
    if (hit) {
      for (const m of hit.debug) log.debug(m);
      return { program: hit.program, flags, notify };
    }
  }
  const debug: string[] = [];
  const ctx = l.init(def);
  if (!ctx) throw new LxrError(`${where}.defaultAction: libseccomp refused "${sc.defaultAction}"`);
  try {
    l.attrSet(ctx, SCMP_FLTATR_CTL_NNP, 0); // no_new_privs is process.noNewPrivileges' business
    l.attrSet(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    (sc.architectures ?? []).forEach((name, i) => {
      const token = l.archResolve(name.replace(/^SCMP_ARCH_/, '').toLowerCase());
      if (!token) throw new LxrError(`${where}.architectures[${i}]: unknown architecture "${name}"`);
      const r = l.archAdd(ctx, token);
      if (r < 0 && r !== -17) throw new LxrError(`${where}.architectures[${i}]: cannot add "${name}": errno ${-r}`);
    });
    (sc.syscalls ?? []).forEach((rule, i) => {
      const w = `${where}.syscalls[${i}]`;
      const act = action(rule.action, rule.errnoRet, `${w}.action`);
      if (act === def) return; // libseccomp refuses rules that repeat the default, and they change nothing
      const args = rule.args ?? [];
      // Conditions on distinct arguments are ANDed in one rule; several on the same
      // argument cannot be, so each becomes a rule of its own (ORed), as runc does.
      const distinct = new Set(args.map((a) => a.index)).size === args.length;
      const groups = distinct ? [args] : args.map((a) => [a]);
      for (const name of rule.names) {
        const nr = l.syscallResolve(name);
        if (nr < 0) {
          debug.push(`${w}: unknown syscall "${name}" ignored`);
          log.debug(debug[debug.length - 1]!);
          continue;
        }
        for (const g of groups) {
          const r = l.ruleAdd(ctx, act, nr, g.length, g.length ? argCmp(g, w) : null);
          if (r < 0) throw new LxrError(`${w}: libseccomp refused the rule for "${name}": errno ${-r}`);
        }
      }
    });
    const file = join(tmpdir(), `lxr-seccomp-${process.pid}-${Date.now()}`);
    const fd = openSync(file, 'w+', 0o600);
    try {
      unlinkSync(file);
      const r = l.exportBpf(ctx, fd);
      if (r < 0) throw new LxrError(`${where}: exporting the filter failed: errno ${-r}`);
      const program = readFileSync(`/proc/self/fd/${fd}`);
      if (program.length === 0 || program.length % 8 !== 0) throw new LxrError(`${where}: libseccomp produced an invalid program`);
      return { program, flags, notify, ...(key ? { keep: () => writeCached(cacheDir!, key, { program, debug }) } : {}) };
    } finally {
      closeSync(fd);
    }
  } finally {
    l.release(ctx);
  }
}
