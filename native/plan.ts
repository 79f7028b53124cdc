// The plan: what the cloned child does between clone and execve, as a flat buffer that
// lxr-init (native/executor.c) walks with raw syscalls. Each step is 9 little-endian int64
// (op, an errno that counts as success, 7 arguments); strings and arrays live after the
// steps and are referred to by byte offset. Every step carries a human description, so that the child's report
// (step index, errno) becomes a message naming the thing at fault.

import abi from './abi.json' with { type: 'json' };

// The opcodes, their arguments and the step layout are defined once, in native/abi.json,
// from which the build also generates the C side (native/build/abi.h).
type OpName = keyof typeof abi.ops;
export const Op = Object.fromEntries(Object.entries(abi.ops).map(([name, o]) => [name, o.code])) as { readonly [K in OpName]: number };
const ARG_KINDS: Map<number, string[]> = new Map(Object.values(abi.ops).map((o) => [o.code, o.args.map((a) => a.split(':')[1] ?? '')]));
/** The step index the child reports when lxr-init itself could not be started. */
export const EXEC_STEP = abi.exec_step;
/** The ids a SYNC step reports, so that the parent knows which point the child reached. */
export const Sync = abi.sync;
/** lxr-monitor's exit status that asks its launcher to start the container again. */
export const MONITOR_RESTART_EXIT = abi.monitor.RESTART_EXIT;
/** The file `lxr rm -f` leaves beside the log to tell lxr-monitor that it releases the container itself. */
export const MONITOR_CLEANUP_TAKEN = abi.monitor.CLEANUP_TAKEN;

/** This machine's number of a syscall that SYSCALL steps make (native/abi.json). */
export function syscallNumber(name: keyof typeof abi.syscalls.x64): number {
  const table = (abi.syscalls as Record<string, Record<string, number>>)[process.arch];
  const nr = table?.[name];
  if (nr === undefined) throw new Error(`${name}: not supported on ${process.arch} yet`);
  return nr;
}

const STEP_SIZE = 72; // op, ok_errno, 7 arguments
const NONE = -1n;

type Arg = number | bigint | StrRef | ArrRef | BufRef;
class StrRef {
  constructor(readonly value: string) {}
}
class ArrRef {
  constructor(readonly values: string[]) {}
}
class BufRef {
  constructor(readonly value: Buffer) {}
}

export interface Step {
  op: number;
  args: (Arg | null)[];
  what: string;
  /** an errno that counts as success */
  okErrno?: number;
}

export class Plan {
  readonly steps: Step[] = [];

  /** Add a step. `what` describes it for error messages, e.g. `mount "proc" on "/proc" (config.json mounts[2])`. */
  add(op: number, what: string, ...args: (Arg | null)[]): this {
    const kinds = ARG_KINDS.get(op);
    if (!kinds) throw new Error(`plan: unknown op ${op}`);
    if (args.length > kinds.length) throw new Error(`plan: op ${op} takes ${kinds.length} arguments, not ${args.length}`);
    this.steps.push({ op, args, what });
    if (op === Op.CLEAR_CLOEXEC) {
      // --preserve-fds: the fds handed to the container stay open in lxr-init too
      const [first, count] = args as number[];
      for (let fd = first!; fd < first! + count!; fd++) this.keepFds.add(fd);
    }
    return this;
  }

  /** The last step added also succeeds when it fails with `errno` (e.g. ENOENT: nothing to do). */
  allowErrno(errno: number): this {
    const last = this.steps[this.steps.length - 1];
    if (last) last.okErrno = errno;
    return this;
  }

  str(s: string): StrRef {
    return new StrRef(s);
  }

  arr(values: string[]): ArrRef {
    return new ArrRef(values);
  }

  buf(b: Buffer): BufRef {
    return new BufRef(b);
  }

  /** fds the child must keep although no step names them (--preserve-fds). */
  readonly keepFds = new Set<number>();

  describe(index: number): string {
    if (index === EXEC_STEP) return 'start the plan executor (native/build/lxr-init)';
    return this.steps[index]?.what ?? `step ${index}`;
  }

  /**
   * Encode into one buffer: steps, then an END step, then the data area. `keep` lists the fds
   * the steps name (sorted): the only ones lxr-init keeps open.
   */
  encode(): { buffer: Buffer; stepsLen: number; keep: number[] } {
    const keep = new Set<number>();
    const nsteps = this.steps.length + 1;
    const stepsLen = nsteps * STEP_SIZE;
    const data: Buffer[] = [];
    let dataLen = 0;
    const place = (b: Buffer, align = 8): number => {
      const pad = (align - ((stepsLen + dataLen) % align)) % align;
      if (pad) {
        data.push(Buffer.alloc(pad));
        dataLen += pad;
      }
      const off = stepsLen + dataLen;
      data.push(b);
      dataLen += b.length;
      return off;
    };
    const placeStr = (s: string): number => place(Buffer.from(s + '\0', 'utf8'), 1);
    const header = Buffer.alloc(stepsLen);
    this.steps.forEach((step, i) => {
      const base = i * STEP_SIZE;
      header.writeBigInt64LE(BigInt(step.op), base);
      header.writeBigInt64LE(BigInt(step.okErrno ?? 0), base + 8);
      const kinds = ARG_KINDS.get(step.op)!;
      for (let k = 0; k < 7; k++) {
        const a = step.args[k];
        if (kinds[k] === 'fd' && typeof a === 'number' && a >= 0) keep.add(a);
        let v: bigint;
        if (a === undefined || a === null) v = k < step.args.length ? NONE : 0n;
        else if (typeof a === 'number') v = BigInt(a);
        else if (typeof a === 'bigint') v = a;
        else if (a instanceof StrRef) v = BigInt(placeStr(a.value));
        else if (a instanceof BufRef) v = BigInt(place(a.value));
        else {
          // An array of strings: a run of u64 offsets ended by UINT64_MAX, relocated
          // into pointers by the C side before clone.
          const offs = a.values.map(placeStr);
          const table = Buffer.alloc((offs.length + 1) * 8);
          offs.forEach((o, j) => table.writeBigUInt64LE(BigInt(o), j * 8));
          table.writeBigUInt64LE(0xffffffffffffffffn, offs.length * 8);
          v = BigInt(place(table));
        }
        header.writeBigInt64LE(v, base + 16 + k * 8);
      }
    });
    // the END step is already zero
    for (const fd of this.keepFds) keep.add(fd);
    return { buffer: Buffer.concat([header, ...data]), stepsLen, keep: [...keep].sort((a, b) => a - b) };
  }
}
