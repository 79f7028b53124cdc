// pids controller (cgroup-v1/pids.rst).
import type { Resources } from '../../../oci-spec/types.js';
import { readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type Stats } from '../stats.js';
import type { V1Controller } from './controller.js';
import { pidsMaxValue } from '../values.js';

/**
 * Spec limit -> pids.max value. A negative number (-1) means no limit; 0 is a real limit
 * (runtime-spec v1.3.0 config-linux.md "pids": 0 "SHOULD be treated as such"). runc 1.1
 * treats 0 as "leave unset" instead: see conformance/README.md "cgroups".
 */
export function setPids(dir: string, r: Resources): void {
  if (r.pids) writeCgroupFile(dir, 'pids.max', pidsMaxValue(r.pids.limit), 'linux.resources.pids.limit');
}

export function pidsStats(dir: string, s: Stats): void {
  setIfNonZero(s.pids, 'current', readUint(dir, 'pids.current'));
  setIfNonZero(s.pids, 'limit', readUint(dir, 'pids.max'));
}

export const pids: V1Controller = {
  name: 'pids',
  needed: (r) => (r.pids ? 'linux.resources.pids.limit' : undefined),
  set: setPids,
  stats: pidsStats,
};
