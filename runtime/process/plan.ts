// The plan: what the cloned child does between clone and execve, as a flat buffer
// that native/lxr.c walks with raw syscalls. Each step is 8 little-endian int64
// (op + 7 arguments); strings and arrays live after the steps and are referred to by
// byte offset. Every step carries a human description, so that the child's report
// (step index, errno) becomes a message naming the thing at fault.

// Keep in sync with the enum in native/lxr.c.
export const Op = {
  END: 0,
  SYNC: 1,
  SETNS: 2,
  UNSHARE: 3,
  SETSID: 4,
  SETHOSTNAME: 5,
  SETDOMAINNAME: 6,
  MOUNT: 7,
  PIVOT_ROOT: 8,
  MOVE_ROOT: 9,
  MKNOD: 10,
  SYMLINK: 11,
  WRITE_FILE: 12,
  SETRLIMIT: 13,
  CAP_BOUNDING: 14,
  KEEPCAPS: 15,
  SETGROUPS: 16,
  SETRESGID: 17,
  SETRESUID: 18,
  CAPSET: 19,
  AMBIENT: 20,
  UMASK: 21,
  NO_NEW_PRIVS: 22,
  SECCOMP: 23,
  CHDIR: 24,
  DUP: 25,
  CLOEXEC_FROM: 26,
  EXEC: 27,
  OPEN_ROOT: 28,
  MASK_PATH: 29,
  READONLY_PATH: 30,
  CONSOLE: 31,
  REMOUNT: 32,
  DUMPABLE: 33,
  WAIT_FIFO: 34,
  CLONE: 35,
  RESET_SIGNALS: 36,
  CLEAR_CLOEXEC: 37,
  OOM_SCORE_ADJ: 38,
  CLOSE: 39,
  PDEATHSIG: 40,
  SET_PGID_TTY: 41,
  CHROOT: 42,
  RECV_FD: 43,
  MOVE_MOUNT: 44,
  IDMAP_TREE: 45,
  LOOPBACK_UP: 46,
  SECCOMP_LISTENER: 47,
} as const;

const STEP_SIZE = 64;
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
}

export class Plan {
  readonly steps: Step[] = [];

  /** Add a step. `what` describes it for error messages, e.g. `mount "proc" on "/proc" (config.json mounts[2])`. */
  add(op: number, what: string, ...args: (Arg | null)[]): this {
    this.steps.push({ op, args, what });
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

  describe(index: number): string {
    return this.steps[index]?.what ?? `step ${index}`;
  }

  /** Encode into one buffer: steps, then an END step, then the data area. */
  encode(): { buffer: Buffer; stepsLen: number } {
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
      for (let k = 0; k < 7; k++) {
        const a = step.args[k];
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
        header.writeBigInt64LE(v, base + 8 + k * 8);
      }
    });
    // the END step is already zero
    return { buffer: Buffer.concat([header, ...data]), stepsLen };
  }
}
