// Values that cgroup v1 and v2 write the same way: cpuset lists, pids.max, rdma.max lines.
import { dirname } from 'node:path';
import type { Resources } from '../../oci-spec/types.js';
import { readOptional, writeCgroupFile } from './fs.js';

export function writeCpusetFile(dir: string, file: 'cpuset.cpus' | 'cpuset.mems', value: string, field: string): void {
  try {
    writeCgroupFile(dir, file, value, field);
  } catch (err) {
    const offered = readOptional(dirname(dir), `${file.replace('cpuset.', 'cpuset.effective_')}`) ?? readOptional(dirname(dir), `${file}.effective`);
    if (err instanceof Error && offered !== undefined) {
      err.message += ` (this cgroup can use ${file === 'cpuset.cpus' ? 'CPUs' : 'memory nodes'} ${offered || 'none'})`;
    }
    throw err;
  }
}

/** The rdma.max lines for linux.resources.rdma (same format on v1 and v2). */
export function rdmaLines(r: Resources): [string, string][] {
  const out: [string, string][] = [];
  for (const [dev, lim] of Object.entries(r.rdma ?? {})) {
    const parts = [
      lim.hcaHandles !== undefined ? `hca_handle=${lim.hcaHandles}` : '',
      lim.hcaObjects !== undefined ? `hca_object=${lim.hcaObjects}` : '',
    ].filter(Boolean);
    if (parts.length) out.push([`linux.resources.rdma[${JSON.stringify(dev)}]`, `${dev} ${parts.join(' ')}`]);
  }
  return out;
}

export function pidsMaxValue(limit: number): string {
  return limit >= 0 ? String(limit) : 'max';
}
