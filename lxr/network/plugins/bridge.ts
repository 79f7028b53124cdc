// lxr-bridge: a CNI interface plugin. It connects a container to a Linux bridge with a veth
// pair (the container end named CNI_IFNAME), gets the address from the delegated IPAM plugin,
// sets loopback up and the routes, optionally makes the bridge the gateway (with ip_forward)
// and masquerades outbound traffic (ipMasq).
//   { "type": "lxr-bridge", "bridge": "lxr0", "isGateway": true, "ipMasq": true,
//     "hairpinMode": true, "mtu": 1500, "ipam": { "type": "lxr-ipam", ... } }
import { delegate, type Plugin, type PluginArgs } from '../cni/skel.js';
import { CniError, ERR, type CniResult } from '../cni/types.js';
import {
  deleteLink,
  deleteLinkAsync,
  ensureAddress,
  ensureBridge,
  hostVethName,
  linkExists,
  linkInfo,
  netnsExists,
  overlappingRoutes,
  setSysctl,
} from '../link.js';
import { Netlink } from '../netlink.js';
import { withExclusiveLockSync } from '../../../native/lock.js';
import { formatSubnet, parseSubnet } from '../ipv4.js';
import { removeRules, removeRulesWhere, ruleTag, setRules, type Rule } from '../firewall.js';

const OWNER = 'lxr-bridge';

interface BridgeConf {
  bridge: string;
  isGateway: boolean;
  ipMasq: boolean;
  hairpinMode: boolean;
  mtu?: number;
}

function conf(a: PluginArgs): BridgeConf {
  const c = a.conf;
  const bridge = typeof c.bridge === 'string' ? c.bridge : 'lxr0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new CniError(ERR.invalidConfig, `invalid bridge name "${bridge}"`);
  if (c.mtu !== undefined && (typeof c.mtu !== 'number' || c.mtu < 68)) throw new CniError(ERR.invalidConfig, `invalid mtu ${JSON.stringify(c.mtu)}`);
  return {
    bridge,
    isGateway: c.isGateway === true,
    ipMasq: c.ipMasq === true,
    hairpinMode: c.hairpinMode !== false,
    mtu: c.mtu as number | undefined,
  };
}

function ipamType(a: PluginArgs): string {
  const t = a.conf.ipam?.type;
  if (typeof t !== 'string') throw new CniError(ERR.invalidConfig, 'the configuration has no "ipam" section with a "type"');
  return t;
}

/** Undo a failed ADD: rules, veth, lease (each best effort). */
function undo(a: PluginArgs): void {
  try {
    removeRules(ruleTag(OWNER, a.conf.name, a.containerId));
  } catch {
    /* best effort */
  }
  try {
    deleteLink(hostVethName(a.containerId, a.ifname));
  } catch {
    /* best effort */
  }
  try {
    delegate(ipamType(a), 'DEL', a);
  } catch {
    /* best effort */
  }
}

function add(a: PluginArgs): CniResult {
  const c = conf(a);
  const ipam = ipamType(a);
  if (!netnsExists(a.netns)) throw new CniError(ERR.unknownContainer, `network namespace ${a.netns} does not exist`);
  // one netlink socket inside the container's netns for all the work there (this process never enters it)
  const ns = Netlink.open(a.netns);
  try {
    if (ns.getLink(a.ifname)) throw new CniError(ERR.invalidConfig, `interface ${a.ifname} already exists in ${a.netns}`);
    return addIn(a, c, ipam, ns);
  } finally {
    ns.close();
  }
}

function addIn(a: PluginArgs, c: BridgeConf, ipam: string, ns: Netlink): CniResult {
  const ipamResult = delegate(ipam, 'ADD', a);
  const ipc = ipamResult?.ips?.[0];
  if (!ipc) {
    delegate(ipam, 'DEL', a);
    throw new CniError(ERR.system, `IPAM plugin ${ipam} returned no address`);
  }
  try {
    const subnet = parseSubnet(ipc.address);
    const gw = ipc.gateway;
    // The bridge, its gateway address and the sysctls are shared by all containers: set up under a lock.
    const br = withExclusiveLockSync(`/run/lxr/network/bridge-${c.bridge}.lock`, () => {
      if (!linkExists(c.bridge)) {
        const clash = overlappingRoutes(subnet, c.bridge);
        if (clash.length) {
          throw new CniError(ERR.invalidConfig, `subnet ${formatSubnet(subnet)} of network ${a.conf.name} overlaps host route ${clash[0]}`);
        }
      }
      const l = ensureBridge(c.bridge, c.mtu);
      if (c.isGateway && gw) {
        ensureAddress(c.bridge, `${gw}/${subnet.prefix}`);
        setSysctl('net.ipv4.ip_forward', '1');
      }
      return l;
    });

    const nl = Netlink.host();
    const host = hostVethName(a.containerId, a.ifname);
    nl.deleteLink(host); // left over from an ADD that died half-way
    // the container's end is made directly in its netns, under its final name
    nl.addVeth(host, { mtu: c.mtu, master: br.ifindex, masterName: c.bridge, peer: { name: a.ifname, mtu: c.mtu, netns: a.netns } });
    const hostLink = nl.getLink(host);
    if (!hostLink) throw new CniError(ERR.system, `veth ${host} vanished after it was created`);
    if (c.hairpinMode) nl.setHairpin(hostLink.index, true, host);
    nl.setLink(hostLink.index, { up: true }, host);

    ns.setLink('lo', { up: true });
    const ctr = ns.getLink(a.ifname);
    if (!ctr) throw new CniError(ERR.system, `interface ${a.ifname} did not appear in ${a.netns}`);
    ns.addAddress(ctr.index, ipc.address, a.ifname);
    ns.setLink(ctr.index, { up: true }, a.ifname);
    const routes = ipamResult?.routes ?? [];
    for (const r of routes) ns.addRoute({ dst: r.dst, gateway: r.gw ?? gw, oif: ctr.index }, a.ifname);

    if (c.ipMasq) {
      const addr = ipc.address.split('/')[0];
      const rules: Rule[] = [
        { table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', `${addr}/32`, '!', '-d', formatSubnet(subnet), '-j', 'MASQUERADE'] },
        { table: 'filter', chain: 'LXR-FORWARD', args: ['-s', `${addr}/32`, '-j', 'ACCEPT'] },
        { table: 'filter', chain: 'LXR-FORWARD', args: ['-d', `${addr}/32`, '-j', 'ACCEPT'] },
      ];
      setRules(ruleTag(OWNER, a.conf.name, a.containerId), rules);
    }

    return {
      cniVersion: a.conf.cniVersion,
      interfaces: [
        { name: c.bridge, mac: br.address },
        { name: host, mac: hostLink.address },
        { name: a.ifname, mac: ctr.address, sandbox: a.netns },
      ],
      ips: [{ address: ipc.address, gateway: gw, interface: 2 }],
      routes,
      dns: ipamResult?.dns ?? a.conf.dns ?? {},
    };
  } catch (e) {
    undo(a);
    throw e;
  }
}

export const plugin: Plugin = {
  about: 'lxr-bridge: lxr bridge + veth networking',
  handlers: {
    add,
    async del(a) {
      conf(a); // validates
      const errors: string[] = [];
      const step = (f: () => void) => {
        try {
          f();
        } catch (e) {
          errors.push((e as Error).message);
        }
      };
      // The kernel takes 20-40 ms to delete the veth: that waiting runs on a worker thread
      // while the lease and the rules go.
      const veth = deleteLinkAsync(hostVethName(a.containerId, a.ifname)).catch((e) => void errors.push((e as Error).message));
      if (a.conf.ipam) step(() => void delegate(ipamType(a), 'DEL', a));
      step(() => void removeRules(ruleTag(OWNER, a.conf.name, a.containerId)));
      await veth;
      if (errors.length) throw new CniError(ERR.system, errors.join('; '));
    },
    check(a) {
      const c = conf(a);
      if (!netnsExists(a.netns)) throw new CniError(ERR.unknownContainer, `network namespace ${a.netns} does not exist`);
      const want = a.conf.prevResult?.ips?.map((x) => x.address) ?? [];
      const have = Netlink.in(a.netns, (ns) => {
        const l = ns.getLink(a.ifname);
        if (!l) throw new CniError(ERR.system, `interface ${a.ifname} is missing in ${a.netns}`);
        return ns.addresses(l.index).map((x) => `${x.address}/${x.prefixlen}`);
      });
      for (const w of want) if (!have.includes(w)) throw new CniError(ERR.system, `interface ${a.ifname} in ${a.netns} lacks address ${w}`);
      const host = linkInfo(hostVethName(a.containerId, a.ifname));
      if (!host) throw new CniError(ERR.system, `host veth ${hostVethName(a.containerId, a.ifname)} is missing`);
      if (host.master !== c.bridge) throw new CniError(ERR.system, `host veth ${host.ifname} is not attached to bridge ${c.bridge}`);
      delegate(ipamType(a), 'CHECK', a);
    },
    status(a) {
      conf(a);
      delegate(ipamType(a), 'STATUS', a);
    },
    gc(a) {
      const valid = new Set((a.conf['cni.dev/valid-attachments'] ?? []).map((v) => v.containerID));
      const prefix = `${OWNER}:${a.conf.name}:`;
      const errors: string[] = [];
      try {
        removeRulesWhere((t) => t.startsWith(prefix) && !valid.has(t.slice(prefix.length)));
      } catch (e) {
        errors.push((e as Error).message);
      }
      try {
        delegate(ipamType(a), 'GC', a);
      } catch (e) {
        errors.push((e as Error).message);
      }
      if (errors.length) throw new CniError(ERR.system, errors.join('; '));
    },
  },
};
