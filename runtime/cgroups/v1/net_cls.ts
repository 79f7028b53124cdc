// net_cls controller (cgroup-v1/net_cls.rst).
import type { Resources } from '../../../oci-spec/types.js';
import { writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';

export const netCls: V1Controller = {
  name: 'net_cls',
  needed: (r) => (r.network?.classID !== undefined ? 'linux.resources.network.classID' : undefined),
  set(dir: string, r: Resources) {
    if (r.network?.classID !== undefined) writeCgroupFile(dir, 'net_cls.classid', String(r.network.classID), 'linux.resources.network.classID');
  },
};
