// lxr-bridge: a CNI interface plugin. It connects a container to a Linux bridge with a veth
// pair (the container end named CNI_IFNAME), gets the address from the delegated IPAM plugin,
// sets loopback up and the routes, optionally makes the bridge the gateway (with ip_forward)
// and masquerades outbound traffic (ipMasq).
//   { "type": "lxr-bridge", "bridge": "lxr0", "isGateway": true, "ipMasq": true,
//     "hairpinMode": true, "mtu": 1500, "ipam": { "type": "lxr-ipam", ... } }
import { delegate, type Plugin, type PluginArgs } from '../cni/skel.js';
import { CniError, ERR, type CniResult } from '../cni/types.js';
import {
  addresses,
  deleteLink,
  ensureAddress,
  ensureBridge,
  hostVethName,
  ipBatchIn,
  linkExists,
  linkInfo,
  netnsExists,
  overlappingRoutes,
  setSysctl,
} from '../link.js';
import { ip, withLockSync } from '../sys.js';
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
  if (linkExists(a.ifname, a.netns)) throw new CniError(ERR.invalidConfig, `interface ${a.ifname} already exists in ${a.netns}`);

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
    const br = withLockSync(`/run/lxr/network/bridge-${c.bridge}.lock`, () => {
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

    const host = hostVethName(a.containerId, a.ifname);
    if (linkExists(host)) deleteLink(host); // left over from an ADD that died half-way
    const mtu = c.mtu ? ['mtu', String(c.mtu)] : [];
    ip('link', 'add', host, ...mtu, 'type', 'veth', 'peer', 'name', a.ifname, ...mtu, 'netns', a.netns);
    ip('link', 'set', 'dev', host, 'master', c.bridge);
    if (c.hairpinMode) ip('link', 'set', 'dev', host, 'type', 'bridge_slave', 'hairpin', 'on');
    ip('link', 'set', 'dev', host, 'up');

    const routes = ipamResult?.routes ?? [];
    const lines = ['link set dev lo up', `addr add ${ipc.address} dev ${a.ifname}`, `link set dev ${a.ifname} up`];
    for (const r of routes) {
      const via = r.gw ?? gw;
      lines.push(`route add ${r.dst === '0.0.0.0/0' ? 'default' : r.dst}${via ? ` via ${via}` : ''} dev ${a.ifname}`);
    }
    ipBatchIn(a.netns, lines);

    if (c.ipMasq) {
      const addr = ipc.address.split('/')[0];
      const rules: Rule[] = [
        { table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', `${addr}/32`, '!', '-d', formatSubnet(subnet), '-j', 'MASQUERADE'] },
        { table: 'filter', chain: 'LXR-FORWARD', args: ['-s', `${addr}/32`, '-j', 'ACCEPT'] },
        { table: 'filter', chain: 'LXR-FORWARD', args: ['-d', `${addr}/32`, '-j', 'ACCEPT'] },
      ];
      setRules(ruleTag(OWNER, a.conf.name, a.containerId), rules);
    }

    const hostInfo = linkInfo(host);
    const ctrInfo = linkInfo(a.ifname, a.netns);
    return {
      cniVersion: a.conf.cniVersion,
      interfaces: [
        { name: c.bridge, mac: br.address },
        { name: host, mac: hostInfo?.address },
        { name: a.ifname, mac: ctrInfo?.address, sandbox: a.netns },
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
    del(a) {
      conf(a); // validates
      const errors: string[] = [];
      const step = (f: () => void) => {
        try {
          f();
        } catch (e) {
          errors.push((e as Error).message);
        }
      };
      if (a.conf.ipam) step(() => void delegate(ipamType(a), 'DEL', a));
      step(() => deleteLink(hostVethName(a.containerId, a.ifname)));
      step(() => void removeRules(ruleTag(OWNER, a.conf.name, a.containerId)));
      if (errors.length) throw new CniError(ERR.system, errors.join('; '));
    },
    check(a) {
      const c = conf(a);
      if (!netnsExists(a.netns)) throw new CniError(ERR.unknownContainer, `network namespace ${a.netns} does not exist`);
      const want = a.conf.prevResult?.ips?.map((x) => x.address) ?? [];
      const have = addresses(a.ifname, a.netns);
      if (!linkExists(a.ifname, a.netns)) throw new CniError(ERR.system, `interface ${a.ifname} is missing in ${a.netns}`);
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
