// cpu controller: CFS shares/bandwidth (scheduler/sched-bwc.rst) and RT group scheduling.
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readKeyValues, readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type Stats } from '../stats.js';
import { firstSet, type V1Controller } from './controller.js';
import { ensureRtBudget } from './rt-budget.js';

const F = 'linux.resources.cpu';

export function setCpu(dir: string, r: Resources): void {
  const c = r.cpu;
  if (!c) return;
  // RT runtime first: a SCHED_RR task cannot join a group without RT bandwidth (runc does the same).
  if (c.realtimePeriod) writeCgroupFile(dir, 'cpu.rt_period_us', String(c.realtimePeriod), `${F}.realtimePeriod`);
  if (c.realtimeRuntime) {
    ensureRtBudget(dir, c.realtimeRuntime, c.realtimePeriod || readUint(dir, 'cpu.rt_period_us'), `${F}.realtimeRuntime`);
    writeCgroupFile(dir, 'cpu.rt_runtime_us', String(c.realtimeRuntime), `${F}.realtimeRuntime`);
  }
  if (c.shares) {
    writeCgroupFile(dir, 'cpu.shares', String(c.shares), `${F}.shares`);
    // The kernel clamps out-of-range shares silently; runc reports it, so does lxr.
    const actual = readUint(dir, 'cpu.shares');
    if (actual !== c.shares) {
      throw new CgroupError(`${F}.shares: ${c.shares} is out of range (the kernel stored ${actual}; allowed 2..262144)`);
    }
  }
  let periodPending = false;
  if (c.period) {
    try {
      writeCgroupFile(dir, 'cpu.cfs_period_us', String(c.period), `${F}.period`);
    } catch (err) {
      // A shorter period can be refused until the quota fits; retry after the quota (as runc).
      if (!(err instanceof CgroupError && err.code === 'EINVAL' && c.quota)) throw err;
      periodPending = true;
    }
  }
  if (c.quota) {
    writeCgroupFile(dir, 'cpu.cfs_quota_us', String(c.quota), `${F}.quota`);
    if (periodPending) writeCgroupFile(dir, 'cpu.cfs_period_us', String(c.period), `${F}.period`);
  }
  if (c.burst !== undefined) writeCgroupFile(dir, 'cpu.cfs_burst_us', String(c.burst), `${F}.burst`);
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', String(c.idle), `${F}.idle`);
}

export function cpuThrottlingStats(dir: string, s: Stats): void {
  if (!hasFile(dir, 'cpu.stat')) return;
  const st = readKeyValues(dir, 'cpu.stat');
  setIfNonZero(s.cpu.throttling, 'periods', st.nr_periods);
  setIfNonZero(s.cpu.throttling, 'throttledPeriods', st.nr_throttled);
  setIfNonZero(s.cpu.throttling, 'throttledTime', st.throttled_time);
}

export const cpu: V1Controller = {
  name: 'cpu',
  needed: (r) => firstSet(F, r.cpu, ['shares', 'quota', 'period', 'burst', 'realtimeRuntime', 'realtimePeriod', 'idle'], ['shares', 'quota', 'period', 'realtimeRuntime', 'realtimePeriod']),
  set: setCpu,
  stats: cpuThrottlingStats,
};
