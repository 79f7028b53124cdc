// memory controller (Documentation/admin-guide/cgroup-v1/memory.rst).
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readKeyValues, readOptional, readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type MemoryEntry, type Stats } from '../stats.js';
import { firstSet, type SetContext, type V1Controller } from './controller.js';

const F = 'linux.resources.memory';
const LIMIT = 'memory.limit_in_bytes';
const SWAP = 'memory.memsw.limit_in_bytes';

function writeLimit(dir: string, value: number): void {
  try {
    writeCgroupFile(dir, LIMIT, String(value), `${F}.limit`);
  } catch (err) {
    if (err instanceof CgroupError && err.code === 'EBUSY') {
      throw new CgroupError(`${F}.limit: ${value} is below the current usage ${readUint(dir, 'memory.usage_in_bytes')} of ${dir}`, 'EBUSY');
    }
    throw err;
  }
}

export function setMemory(dir: string, r: Resources, ctx: SetContext): void {
  const m = r.memory;
  if (!m) return;
  // runc 1.1 ignores kernel memory limits with this warning (they are deprecated since
  // Linux 5.4 and the kernel itself ignores memory.kmem.limit_in_bytes since 5.16).
  if ((m.kernel ?? 0) !== 0 || (m.kernelTCP ?? 0) !== 0) ctx.warn('Kernel memory settings are ignored and will be removed');

  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  // As runc: an unlimited memory with no swap value means unlimited memory+swap too,
  // when the kernel accounts swap at all.
  if (limit === -1 && swap === 0 && hasFile(dir, SWAP)) swap = -1;
  const writeSwap = (): void => writeCgroupFile(dir, SWAP, String(swap), `${F}.swap`);

  if (limit !== 0 && swap !== 0) {
    // memsw must stay >= limit at every step, so the order depends on the current values.
    const current = readUint(dir, LIMIT);
    if (swap === -1 || current < swap) {
      writeSwap();
      writeLimit(dir, limit);
    } else {
      writeLimit(dir, limit);
      writeSwap();
    }
  } else {
    if (limit !== 0) writeLimit(dir, limit);
    if (swap !== 0) writeSwap();
  }
  if (m.reservation !== undefined && m.reservation !== 0) {
    writeCgroupFile(dir, 'memory.soft_limit_in_bytes', String(m.reservation), `${F}.reservation`);
  }
  if (m.swappiness !== undefined) writeCgroupFile(dir, 'memory.swappiness', String(m.swappiness), `${F}.swappiness`);
  if (m.disableOOMKiller !== undefined && (m.disableOOMKiller || !ctx.creating)) {
    writeCgroupFile(dir, 'memory.oom_control', m.disableOOMKiller ? '1' : '0', `${F}.disableOOMKiller`);
  }
  if (m.useHierarchy !== undefined) {
    writeCgroupFile(dir, 'memory.use_hierarchy', m.useHierarchy ? '1' : '0', `${F}.useHierarchy`);
  }
}

function entry(dir: string, prefix: string): MemoryEntry {
  const e: MemoryEntry = { limit: readUint(dir, `${prefix}.limit_in_bytes`), failcnt: readUint(dir, `${prefix}.failcnt`) };
  setIfNonZero(e, 'usage', readUint(dir, `${prefix}.usage_in_bytes`));
  setIfNonZero(e, 'max', readUint(dir, `${prefix}.max_usage_in_bytes`));
  return e;
}

export function memoryStats(dir: string, s: Stats): void {
  const raw = readKeyValues(dir, 'memory.stat');
  setIfNonZero(s.memory, 'cache', raw.cache);
  s.memory.usage = entry(dir, 'memory');
  s.memory.swap = entry(dir, 'memory.memsw');
  s.memory.kernel = entry(dir, 'memory.kmem');
  s.memory.kernelTCP = entry(dir, 'memory.kmem.tcp');
  setIfNonZero(s.memory, 'raw', raw);
}

/** oom_kill from memory.oom_control (Linux 4.13+). */
export function oomKills(dir: string): number {
  const text = readOptional(dir, 'memory.oom_control') ?? '';
  const m = /^oom_kill\s+(\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

export const memory: V1Controller = {
  name: 'memory',
  needed: (r) => firstSet(F, r.memory, ['limit', 'reservation', 'swap', 'swappiness', 'disableOOMKiller', 'useHierarchy'], ['limit', 'reservation', 'swap']),
  set: setMemory,
  stats: memoryStats,
};
