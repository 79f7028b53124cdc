// rdma controller (cgroup-v1/rdma.rst): one "device hca_handle=N hca_object=M" line per device.
import type { Resources } from '../../../oci-spec/types.js';
import { writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';

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

export const rdma: V1Controller = {
  name: 'rdma',
  needed: (r) => rdmaLines(r)[0]?.[0],
  set(dir: string, r: Resources) {
    for (const [field, line] of rdmaLines(r)) writeCgroupFile(dir, 'rdma.max', line, field);
  },
};
