// lxr-ipam: a CNI IPAM plugin (SPEC.md section 4) handing out IPv4 addresses from one
// subnet, with leases on disk under a lock (see ipam/store.ts).
//   "ipam": { "type": "lxr-ipam", "subnet": "10.88.0.0/16", "gateway": "10.88.0.1",
//             "rangeStart": "...", "rangeEnd": "...", "routes": [{ "dst": "0.0.0.0/0" }],
//             "dataDir": "/var/lib/lxr/ipam" }
import type { Plugin, PluginArgs } from '../cni/skel.js';
import { CniError, ERR, type CniResult, type CniRoute } from '../cni/types.js';
import { DEFAULT_IPAM_DIR, LeaseStore, poolFromConfig } from '../ipam/store.js';
import { broadcast, formatIp } from '../ipv4.js';

function setup(a: PluginArgs) {
  const ipam = a.conf.ipam;
  if (!ipam || typeof ipam !== 'object') throw new CniError(ERR.invalidConfig, 'the configuration has no "ipam" section');
  const pool = poolFromConfig(ipam);
  const dataDir = typeof ipam.dataDir === 'string' ? ipam.dataDir : DEFAULT_IPAM_DIR;
  return { ipam, pool, store: new LeaseStore(dataDir, a.conf.name) };
}

export const plugin: Plugin = {
  about: 'lxr-ipam: lxr IPv4 address management',
  handlers: {
    add(a): CniResult {
      const { ipam, pool, store } = setup(a);
      const n = store.allocate(pool, a.containerId, a.ifname);
      const routes = Array.isArray(ipam.routes) ? (ipam.routes as CniRoute[]) : [{ dst: '0.0.0.0/0' }];
      return {
        cniVersion: a.conf.cniVersion,
        ips: [{ address: `${formatIp(n)}/${pool.subnet.prefix}`, gateway: formatIp(pool.gateway) }],
        routes,
        ...(a.conf.dns ? { dns: a.conf.dns } : {}),
      };
    },
    del(a) {
      const { store } = setup(a);
      store.release(a.containerId, a.ifname);
    },
    check(a) {
      const { store } = setup(a);
      if (!store.lookup(a.containerId, a.ifname)) {
        throw new CniError(ERR.system, `no address is leased to container ${a.containerId} interface ${a.ifname}`);
      }
    },
    status(a) {
      const { pool, store } = setup(a);
      const used = Object.keys(store.all()).length;
      let size = pool.last - pool.first + 1;
      for (const n of [pool.gateway, pool.subnet.base, broadcast(pool.subnet)]) if (n >= pool.first && n <= pool.last) size--;
      if (used >= size) throw new CniError(ERR.notAvailable, `address pool of network ${a.conf.name} is exhausted (${used} leases)`);
    },
    gc(a) {
      const { store } = setup(a);
      store.retainOnly(a.conf['cni.dev/valid-attachments'] ?? []);
    },
  },
};
