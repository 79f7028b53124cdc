// cpu controller, cgroup v2. shares -> cpu.weight uses the linear formula of runc 1.1
// (Debian 12's runc, lxr's oracle); runc 1.3 moved to a quadratic one.
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { readKeyValues, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type Stats } from '../stats.js';
import { writeCpusetFile } from '../values.js';

const F = 'linux.resources.cpu';

/** runc 1.1 ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** cpu.max from quota/period as runc writes it: "max" unless quota > 0, period appended when set. */
export function cpuMaxValue(quota: number, period: number): string {
  let v = quota > 0 ? String(quota) : 'max';
  if (period) v += ` ${period}`;
  return v;
}

export function setCpuV2(dir: string, r: Resources): void {
  const c = r.cpu;
  if (!c) return;
  if (c.realtimeRuntime || c.realtimePeriod) {
    throw new CgroupError(`${F}.${c.realtimeRuntime ? 'realtimeRuntime' : 'realtimePeriod'}: not supported on cgroup v2 (no RT group scheduling)`);
  }
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', String(c.idle), `${F}.idle`);
  if (c.shares) writeCgroupFile(dir, 'cpu.weight', String(sharesToWeight(c.shares)), `${F}.shares`);
  if (c.quota || c.period) writeCgroupFile(dir, 'cpu.max', cpuMaxValue(c.quota ?? 0, c.period ?? 0), c.quota ? `${F}.quota` : `${F}.period`);
  if (c.burst !== undefined) writeCgroupFile(dir, 'cpu.max.burst', String(c.burst), `${F}.burst`);
}

export function setCpusetV2(dir: string, r: Resources): void {
  if (r.cpu?.cpus) writeCpusetFile(dir, 'cpuset.cpus', r.cpu.cpus, `${F}.cpus`);
  if (r.cpu?.mems) writeCpusetFile(dir, 'cpuset.mems', r.cpu.mems, `${F}.mems`);
}

export function cpuStatsV2(dir: string, s: Stats): void {
  const st = readKeyValues(dir, 'cpu.stat');
  setIfNonZero(s.cpu.usage, 'total', (st.usage_usec ?? 0) * 1000);
  s.cpu.usage.user = (st.user_usec ?? 0) * 1000;
  s.cpu.usage.kernel = (st.system_usec ?? 0) * 1000;
  setIfNonZero(s.cpu.throttling, 'periods', st.nr_periods);
  setIfNonZero(s.cpu.throttling, 'throttledPeriods', st.nr_throttled);
  setIfNonZero(s.cpu.throttling, 'throttledTime', (st.throttled_usec ?? 0) * 1000);
}
