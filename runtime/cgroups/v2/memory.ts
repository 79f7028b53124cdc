// memory controller, cgroup v2 (admin-guide/cgroup-v2.rst "Memory"), with runc 1.1's mapping:
// limit -> memory.max, reservation -> memory.low, swap (memory+swap in the spec) -> memory.swap.max = swap - limit.
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { readKeyValues, readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type MemoryEntry, type Stats } from '../stats.js';

const F = 'linux.resources.memory';

/** runc's ConvertMemorySwapToCgroupV2Value: returns the memory.swap.max number (-1 = max, 0 = unset). */
export function swapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) throw new CgroupError(`${F}.swap: cannot limit swap without a memory.limit`);
  if (swap < limit) throw new CgroupError(`${F}.swap: ${swap} is below memory.limit ${limit} (swap is the memory+swap limit)`);
  return swap - limit;
}

/** 0 = unset (""), -1 = "max". */
function numToStr(n: number): string {
  return n === 0 ? '' : n === -1 ? 'max' : String(n);
}

export function setMemoryV2(dir: string, r: Resources, creating: boolean, warn: (m: string) => void): void {
  const m = r.memory;
  if (!m) return;
  if ((m.kernel ?? 0) !== 0 || (m.kernelTCP ?? 0) !== 0) warn('Kernel memory settings are ignored and will be removed');
  if (m.swappiness !== undefined) warn(`${F}.swappiness is ignored: cgroup v2 has no per-cgroup swappiness`);
  if (m.disableOOMKiller) warn(`${F}.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer`);
  const limit = m.limit ?? 0;
  if (!creating && m.checkBeforeUpdate && limit > 0) {
    const current = readUint(dir, 'memory.current');
    if (limit < current) throw new CgroupError(`${F}.limit: ${limit} is below the current usage ${current} of ${dir} (checkBeforeUpdate)`);
  }
  const swap = swapToV2(m.swap ?? 0, limit);
  let swapStr = numToStr(swap);
  // memory and memory+swap set to the same value: no swap at all.
  if (swapStr === '' && swap === 0 && (m.swap ?? 0) > 0) swapStr = '0';
  if (swapStr !== '') {
    try {
      writeCgroupFile(dir, 'memory.swap.max', swapStr, `${F}.swap`);
    } catch (err) {
      // No swap accounting: "no limit" and "no swap" are already true, anything else is not.
      if (!(err instanceof CgroupError && err.code === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw err;
    }
  }
  const max = numToStr(limit);
  if (max) writeCgroupFile(dir, 'memory.max', max, `${F}.limit`);
  const low = numToStr(m.reservation ?? 0);
  if (low) writeCgroupFile(dir, 'memory.low', low, `${F}.reservation`);
}

export function memoryStatsV2(dir: string, s: Stats): void {
  const raw = readKeyValues(dir, 'memory.stat');
  setIfNonZero(s.memory, 'cache', raw.file);
  const usage: MemoryEntry = { limit: readUint(dir, 'memory.max'), failcnt: readKeyValues(dir, 'memory.events').max ?? 0 };
  setIfNonZero(usage, 'usage', readUint(dir, 'memory.current'));
  setIfNonZero(usage, 'max', readUint(dir, 'memory.peak'));
  s.memory.usage = usage;
  // As runc 1.1: the "swap" entry is memory+swap, to stay comparable with v1's memsw.
  const swap: MemoryEntry = { limit: 0, failcnt: readKeyValues(dir, 'memory.swap.events').max ?? 0 };
  const swapMax = readUint(dir, 'memory.swap.max');
  swap.limit = usage.limit && swapMax ? usage.limit + swapMax : 0;
  setIfNonZero(swap, 'usage', readUint(dir, 'memory.swap.current') + (usage.usage ?? 0));
  s.memory.swap = swap;
  setIfNonZero(s.memory, 'raw', raw);
}

export function oomKillsV2(dir: string): number {
  return readKeyValues(dir, 'memory.events').oom_kill ?? 0;
}
