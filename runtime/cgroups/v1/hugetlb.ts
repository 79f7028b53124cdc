// hugetlb controller (cgroup-v1/hugetlb.rst): hugetlb.<size>.limit_in_bytes, size as "2MB".
import { readdirSync } from 'node:fs';
import type { Resources } from '../../../oci-spec/types.js';
import { readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type HugetlbStats, type Stats } from '../stats.js';
import type { V1Controller } from './controller.js';

export function setHugetlb(dir: string, r: Resources): void {
  (r.hugepageLimits ?? []).forEach((h, i) =>
    writeCgroupFile(dir, `hugetlb.${h.pageSize}.limit_in_bytes`, String(h.limit), `linux.resources.hugepageLimits[${i}] (pageSize ${h.pageSize})`));
}

export function hugetlbStats(dir: string, s: Stats): void {
  for (const f of readdirSync(dir)) {
    const m = /^hugetlb\.([^.]+)\.usage_in_bytes$/.exec(f);
    if (!m) continue;
    const size = m[1]!;
    const e: HugetlbStats = { failcnt: readUint(dir, `hugetlb.${size}.failcnt`) };
    setIfNonZero(e, 'usage', readUint(dir, f));
    setIfNonZero(e, 'max', readUint(dir, `hugetlb.${size}.max_usage_in_bytes`));
    s.hugetlb[size] = e;
  }
}

export const hugetlb: V1Controller = {
  name: 'hugetlb',
  needed: (r) => (r.hugepageLimits?.length ? 'linux.resources.hugepageLimits' : undefined),
  set: setHugetlb,
  stats: hugetlbStats,
};
