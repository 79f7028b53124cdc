// rdma controller (cgroup-v1/rdma.rst): one "device hca_handle=N hca_object=M" line per device.
import type { Resources } from '../../../oci-spec/types.js';
import { writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';
import { rdmaLines } from '../values.js';

export const rdma: V1Controller = {
  name: 'rdma',
  needed: (r) => rdmaLines(r)[0]?.[0],
  set(dir: string, r: Resources) {
    for (const [field, line] of rdmaLines(r)) writeCgroupFile(dir, 'rdma.max', line, field);
  },
};
