// process.scheduler, process.ioPriority (config.md "Scheduler", "IO Priority"),
// linux.personality and linux.memoryPolicy (config-linux.md): each becomes one plain system
// call in the plan (a SYSCALL step), made by the container process before it drops its
// capabilities, as runc and crun do.
import type { Linux, Process } from '../../oci-spec/types.js';
import { Op, syscallNumber, type Plan } from '../../native/plan.js';
import { LxrError } from '../../common/errors.js';

const SCHED_POLICY: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};
const SCHED_FLAG: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01, SCHED_FLAG_RECLAIM: 0x02, SCHED_FLAG_DL_OVERRUN: 0x04, SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20, SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};
const IOPRIO_CLASS: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };
const MPOL_MODE: Record<string, number> = {
  MPOL_DEFAULT: 0, MPOL_PREFERRED: 1, MPOL_BIND: 2, MPOL_INTERLEAVE: 3, MPOL_LOCAL: 4, MPOL_PREFERRED_MANY: 5,
  MPOL_WEIGHTED_INTERLEAVE: 6,
};
const MPOL_FLAG: Record<string, number> = { MPOL_F_STATIC_NODES: 1 << 15, MPOL_F_RELATIVE_NODES: 1 << 14, MPOL_F_NUMA_BALANCING: 1 << 13 };
const PERSONALITY: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

function lookup(table: Record<string, number>, value: unknown, where: string): number {
  const v = typeof value === 'string' ? table[value] : undefined;
  if (v === undefined) throw new LxrError(`${where}: unknown value ${JSON.stringify(value)} (one of ${Object.keys(table).join(', ')})`);
  return v;
}

/** struct sched_attr (SCHED_ATTR_SIZE_VER0, 48 bytes) for sched_setattr(2). */
function schedAttr(s: Record<string, unknown>): Buffer {
  const where = 'process.scheduler';
  const b = Buffer.alloc(48);
  b.writeUInt32LE(48, 0);
  b.writeUInt32LE(lookup(SCHED_POLICY, s.policy, `${where}.policy`), 4);
  const flags = ((s.flags as unknown[] | undefined) ?? []).reduce<number>((f, x, i) => f | lookup(SCHED_FLAG, x, `${where}.flags[${i}]`), 0);
  b.writeBigUInt64LE(BigInt(flags), 8);
  b.writeInt32LE(Number(s.nice ?? 0), 16);
  b.writeUInt32LE(Number(s.priority ?? 0), 20);
  b.writeBigUInt64LE(BigInt(Number(s.runtime ?? 0)), 24);
  b.writeBigUInt64LE(BigInt(Number(s.deadline ?? 0)), 32);
  b.writeBigUInt64LE(BigInt(Number(s.period ?? 0)), 40);
  return b;
}

/** A node list ("0-3,7") as the nodemask set_mempolicy(2) takes: u64 words, and its size in bits. */
function nodemask(nodes: string, where: string): { mask: Buffer; bits: number } {
  const set: number[] = [];
  for (const part of nodes.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new LxrError(`${where}: "${nodes}" is not a node list such as "0-3,7"`);
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    if (hi < lo || hi > 4095) throw new LxrError(`${where}: "${part}" is not a node range`);
    for (let n = lo; n <= hi; n++) set.push(n);
  }
  const words = Math.max(1, Math.ceil((Math.max(-1, ...set) + 1) / 64));
  const mask = Buffer.alloc(words * 8);
  for (const n of set) mask.writeBigUInt64LE(mask.readBigUInt64LE(Math.floor(n / 64) * 8) | (1n << BigInt(n % 64)), Math.floor(n / 64) * 8);
  return { mask, bits: words * 64 };
}

/** process.scheduler and process.ioPriority: for the init and for exec'd processes. */
export function planProcessAttrs(plan: Plan, proc: Process): void {
  if (proc.scheduler) {
    plan.add(Op.SYSCALL, `set the scheduler (process.scheduler: ${String(proc.scheduler.policy)})`, syscallNumber('sched_setattr'), 0b10, 0, plan.buf(schedAttr(proc.scheduler)), 0);
  }
  if (proc.ioPriority) {
    const cls = lookup(IOPRIO_CLASS, proc.ioPriority.class, 'process.ioPriority.class');
    const prio = proc.ioPriority.priority ?? 0;
    if (!Number.isInteger(prio) || prio < 0 || prio > 7) throw new LxrError(`process.ioPriority.priority: ${prio} must be 0 to 7`);
    const IOPRIO_WHO_PROCESS = 1;
    plan.add(Op.SYSCALL, `set the I/O priority (process.ioPriority: ${proc.ioPriority.class} ${prio})`, syscallNumber('ioprio_set'), 0, IOPRIO_WHO_PROCESS, 0, (cls << 13) | prio);
  }
}

/** linux.personality and linux.memoryPolicy: for the init. */
export function planLinuxAttrs(plan: Plan, linux: Linux): void {
  if (linux.personality) {
    const p = linux.personality;
    const domain = lookup(PERSONALITY, p.domain, 'linux.personality.domain');
    if (p.flags?.length) throw new LxrError('linux.personality.flags: personality flags are not supported (runc does not take them either)');
    plan.add(Op.SYSCALL, `set the personality (linux.personality: ${p.domain})`, syscallNumber('personality'), 0, domain);
  }
  if (linux.memoryPolicy) {
    const mp = linux.memoryPolicy as { mode?: unknown; nodes?: string; flags?: unknown[] };
    const where = 'linux.memoryPolicy';
    const mode = lookup(MPOL_MODE, mp.mode, `${where}.mode`);
    const flags = (mp.flags ?? []).reduce<number>((f, x, i) => f | lookup(MPOL_FLAG, x, `${where}.flags[${i}]`), 0);
    const needsNodes = mode !== MPOL_MODE.MPOL_DEFAULT && mode !== MPOL_MODE.MPOL_LOCAL;
    if (needsNodes && !mp.nodes) throw new LxrError(`${where}.nodes: mode ${String(mp.mode)} needs a node list`);
    const nr = syscallNumber('set_mempolicy');
    const what = `set the memory policy (${where}: ${String(mp.mode)}${mp.nodes ? ` ${mp.nodes}` : ''})`;
    if (mp.nodes && needsNodes) {
      const { mask, bits } = nodemask(mp.nodes, `${where}.nodes`);
      plan.add(Op.SYSCALL, what, nr, 0b10, mode | flags, plan.buf(mask), bits + 1);
    } else {
      plan.add(Op.SYSCALL, what, nr, 0, mode | flags, 0, 0);
    }
  }
}
