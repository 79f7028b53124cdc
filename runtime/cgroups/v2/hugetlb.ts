// hugetlb controller, cgroup v2: hugetlb.<size>.max, and .rsvd.max (reservations, Linux 5.7+)
// set to the same limit when present, as runc 1.2 does.
import { readdirSync } from 'node:fs';
import type { Resources } from '../../../oci-spec/types.js';
import { hasFile, readKeyValues, readUint, writeCgroupFile } from '../fs.js';
import { setIfNonZero, type HugetlbStats, type Stats } from '../stats.js';

export function setHugetlbV2(dir: string, r: Resources): void {
  (r.hugepageLimits ?? []).forEach((h, i) => {
    const field = `linux.resources.hugepageLimits[${i}] (pageSize ${h.pageSize})`;
    const value = h.limit === -1 ? 'max' : String(h.limit);
    writeCgroupFile(dir, `hugetlb.${h.pageSize}.max`, value, field);
    if (hasFile(dir, `hugetlb.${h.pageSize}.rsvd.max`)) writeCgroupFile(dir, `hugetlb.${h.pageSize}.rsvd.max`, value, field);
  });
}

export function hugetlbStatsV2(dir: string, s: Stats): void {
  for (const f of readdirSync(dir)) {
    const m = /^hugetlb\.([^.]+)\.current$/.exec(f);
    if (!m) continue;
    const size = m[1]!;
    const e: HugetlbStats = { failcnt: readKeyValues(dir, `hugetlb.${size}.events`).max ?? 0 };
    setIfNonZero(e, 'usage', readUint(dir, f));
    s.hugetlb[size] = e;
  }
}
