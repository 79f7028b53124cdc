// Drive a plan: clone the child through native/, then talk to it over the channel.
import { Socket } from 'node:net';
import { native, errnoName } from './index.js';
import type { Plan } from './plan.js';
import { LxrError } from '../common/errors.js';

export type ChildMessage =
  | { kind: 'sync'; id: number }
  | { kind: 'pid'; pid: number }
  | { kind: 'error'; step: number; errno: number }
  | { kind: 'exec' }; // the channel closed without an error: execve happened (or the child ended)

/** A cloned child that is carrying out a plan. */
export class PlanChild {
  /** pid of the process currently carrying out the plan (after a CLONE step, the new one). */
  pid: number;
  /** every pid this plan made, first one first (the caller reaps the intermediate ones). */
  readonly pids: number[];
  private readonly sock: Socket;
  private buffered = Buffer.alloc(0);
  private closed = false;
  private waiters: (() => void)[] = [];

  constructor(
    readonly plan: Plan,
    pid: number,
    readonly chan: number,
  ) {
    this.pid = pid;
    this.pids = [pid];
    this.sock = new Socket({ fd: chan, readable: true, writable: true });
    this.sock.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.sock.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next message from the child. */
  async next(): Promise<ChildMessage> {
    for (;;) {
      const b = this.buffered;
      if (b.length >= 1) {
        const kind = String.fromCharCode(b[0]!);
        const need = kind === 'E' ? 9 : 5;
        if (b.length >= need) {
          this.buffered = b.subarray(need);
          if (kind === 'S') return { kind: 'sync', id: b.readUInt32LE(1) };
          if (kind === 'P') {
            const pid = b.readUInt32LE(1);
            this.pid = pid;
            this.pids.push(pid);
            return { kind: 'pid', pid };
          }
          if (kind === 'E') return { kind: 'error', step: b.readUInt32LE(1), errno: b.readInt32LE(5) };
          throw new Error(`protocol error from container process: unexpected byte ${b[0]}`);
        }
      }
      if (this.closed) return { kind: 'exec' };
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Let the child go on past a SYNC step. */
  release(): void {
    this.sock.write(Buffer.from([0]));
  }

  /** Drop the channel. A child waiting at a SYNC step then exits quietly. */
  detach(): void {
    this.sock.destroy();
  }

  /** Turn an error report into a message naming the step. */
  failure(msg: { step: number; errno: number }): LxrError {
    return new LxrError(`${this.plan.describe(msg.step)}: ${errnoName(msg.errno)}`, { errno: msg.errno });
  }
}

export interface Channel {
  parentFd: number;
  /** the fd number the child uses: SYNC and CLONE steps name it */
  childFd: number;
}

/** The socketpair a plan's child reports on. Make it before building the plan. */
export function openChannel(): Channel {
  const [parentFd, childFd] = native().socketpair();
  return { parentFd, childFd };
}

/** Clone a child that runs `plan`. `cloneFlags` are the namespace flags of the clone itself. */
export function spawnPlan(plan: Plan, cloneFlags: bigint, chan: Channel): PlanChild {
  const n = native();
  const { buffer, stepsLen, keep } = plan.encode();
  if (!keep.includes(chan.childFd)) keep.push(chan.childFd), keep.sort((a, b) => a - b);
  const pid = n.spawn(buffer, stepsLen, cloneFlags, chan.childFd, chan.parentFd, keep);
  n.close(chan.childFd);
  if (pid < 0) {
    n.close(chan.parentFd);
    throw new LxrError(`clone: ${errnoName(-pid)}`, { errno: -pid });
  }
  return new PlanChild(plan, pid, chan.parentFd);
}
