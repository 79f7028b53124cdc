// net_prio controller (cgroup-v1/net_prio.rst): one "ifname priority" write per interface.
import type { Resources } from '../../../oci-spec/types.js';
import { writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';

export const netPrio: V1Controller = {
  name: 'net_prio',
  needed: (r) => (r.network?.priorities?.length ? 'linux.resources.network.priorities' : undefined),
  set(dir: string, r: Resources) {
    (r.network?.priorities ?? []).forEach((p, i) =>
      writeCgroupFile(dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `linux.resources.network.priorities[${i}]`));
  },
};
