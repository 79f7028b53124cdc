// cpuacct controller: read-only accounting (cgroup-v1/cpuacct.rst).
import { readKeyValues, readOptional, readUint } from '../fs.js';
import { setIfNonZero, type Stats } from '../stats.js';
import type { V1Controller } from './controller.js';

// cpuacct.stat is in USER_HZ ticks, which is 100 on every Linux architecture lxr runs on.
const NS_PER_TICK = 1e9 / 100;

function numbers(text: string | undefined): number[] {
  return text ? text.split(/\s+/).filter(Boolean).map(Number) : [];
}

export function cpuacctStats(dir: string, s: Stats): void {
  const u = s.cpu.usage;
  setIfNonZero(u, 'total', readUint(dir, 'cpuacct.usage'));
  setIfNonZero(u, 'percpu', numbers(readOptional(dir, 'cpuacct.usage_percpu')));
  setIfNonZero(u, 'percpu_kernel', numbers(readOptional(dir, 'cpuacct.usage_percpu_sys')));
  setIfNonZero(u, 'percpu_user', numbers(readOptional(dir, 'cpuacct.usage_percpu_user')));
  const st = readKeyValues(dir, 'cpuacct.stat');
  u.kernel = (st.system ?? 0) * NS_PER_TICK;
  u.user = (st.user ?? 0) * NS_PER_TICK;
}

export const cpuacct: V1Controller = { name: 'cpuacct', needed: () => undefined, stats: cpuacctStats };
