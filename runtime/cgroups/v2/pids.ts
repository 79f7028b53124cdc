// pids controller, cgroup v2: pids.max.
import type { Resources } from '../../../oci-spec/types.js';
import { readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type Stats } from '../stats.js';
import { pidsMaxValue } from '../values.js';

export function setPidsV2(dir: string, r: Resources): void {
  if (r.pids) writeCgroupFile(dir, 'pids.max', pidsMaxValue(r.pids.limit), 'linux.resources.pids.limit');
}

export function pidsStatsV2(dir: string, s: Stats): void {
  setIfNonZero(s.pids, 'current', readUint(dir, 'pids.current'));
  setIfNonZero(s.pids, 'limit', readUint(dir, 'pids.max'));
}
