// lxr-portmap: a chained CNI plugin for published ports (capability "portMappings").
// Host ports are DNATed to the container's address (from prevResult), for traffic arriving
// from outside and for traffic from the host itself (OUTPUT). 127.0.0.1:HOSTPORT works because
// route_localnet is set on the bridge and connections from 127.0.0.0/8 are masqueraded; the
// kernel does the forwarding, so no proxy process has to outlive the `lxr` command.
// route_localnet would also let a container send packets to the host's own 127.0.0.1 services
// (CVE-2020-8558): as kube-proxy does, a rule drops whatever arrives on the bridge for
// 127.0.0.0/8 and is not part of a DNATed (published port's) connection, and route_localnet
// goes back to 0 when the bridge's last published port goes.
// Connections from the network's own subnet that were DNATed (hairpin, container to another
// container's published port on a host address) are masqueraded too, so replies come back
// through the host. A host port already taken (by a listener or another container's mapping)
// fails the ADD.
//   { "type": "lxr-portmap", "capabilities": { "portMappings": true } }
import { existsSync } from 'node:fs';
import type { Plugin, PluginArgs } from '../cni/skel.js';
import { CniError, ERR, type CniResult, type PortMapping } from '../cni/types.js';
import { listRules, removeRules, removeRulesWhere, ruleTag, setRules, type ListedRule, type Rule } from '../firewall.js';
import { checkHostPortFree } from '../ports.js';
import { formatSubnet, parseSubnet } from '../ipv4.js';
import { setSysctl } from '../link.js';

const OWNER = 'lxr-portmap';

function mappings(a: PluginArgs): PortMapping[] {
  const m = a.conf.runtimeConfig?.portMappings ?? [];
  if (!Array.isArray(m)) throw new CniError(ERR.invalidConfig, 'runtimeConfig.portMappings is not a list');
  for (const p of m) {
    if (!Number.isInteger(p.hostPort) || !Number.isInteger(p.containerPort) || p.hostPort < 1 || p.hostPort > 65535 || p.containerPort < 1 || p.containerPort > 65535) {
      throw new CniError(ERR.invalidConfig, `invalid port mapping ${JSON.stringify(p)}`);
    }
    p.protocol = (p.protocol ?? 'tcp').toLowerCase() as PortMapping['protocol'];
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new CniError(ERR.invalidConfig, `unsupported protocol ${p.protocol} in port mapping`);
  }
  return m;
}

function target(prev: CniResult | undefined) {
  const ipc = prev?.ips?.find((x) => !x.address.includes(':'));
  if (!ipc) throw new CniError(ERR.invalidConfig, 'lxr-portmap needs a prevResult with an IPv4 address (put it after the interface plugin)');
  const hostIfs = (prev?.interfaces ?? []).filter((i) => !i.sandbox);
  return { addr: ipc.address.split('/')[0], subnet: formatSubnet(parseSubnet(ipc.address)), bridge: hostIfs[0]?.name };
}

/** Host ports mapped by other containers' lxr-portmap rules, as "proto/port". */
function takenByOthers(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of listRules()) {
    if (r.chain !== 'LXR-HOSTPORTS' || !r.tag?.startsWith(`${OWNER}:`) || r.tag === tag) continue;
    const p = r.args[r.args.indexOf('-p') + 1];
    const port = r.args[r.args.indexOf('--dport') + 1];
    const d = r.args.indexOf('-d');
    const host = d >= 0 ? r.args[d + 1].replace(/\/32$/, '') : '';
    out.set(`${p}/${port}/${host}`, r.tag.split(':').slice(2).join(':'));
  }
  return out;
}

async function add(a: PluginArgs): Promise<CniResult> {
  const prev = a.conf.prevResult;
  if (!prev) throw new CniError(ERR.invalidConfig, 'lxr-portmap must be chained after an interface plugin (no prevResult)');
  const m = mappings(a);
  if (m.length === 0) return prev;
  const t = target(prev);
  const tag = ruleTag(OWNER, a.conf.name, a.containerId);
  // Mapped by another container: checked under the rules' lock, when the rules are set.
  const precheck = () => {
    const others = takenByOthers(tag);
    for (const p of m) {
      for (const [k, owner] of others) {
        const [proto, port, host] = k.split('/');
        if (proto === p.protocol && Number(port) === p.hostPort && (!host || !p.hostIP || host === p.hostIP)) {
          throw new CniError(ERR.portInUse, `host port ${p.hostIP ?? '0.0.0.0'}:${p.hostPort}/${p.protocol} is already published by container ${owner}`);
        }
      }
    }
  };
  // Taken by a listener on the host.
  for (const p of m) {
    try {
      await checkHostPortFree({ hostIp: p.hostIP, hostPort: p.hostPort, protocol: p.protocol });
    } catch (e) {
      throw new CniError(ERR.portInUse, (e as Error).message);
    }
  }
  const rules: Rule[] = [];
  for (const p of m) {
    const dst = p.hostIP && p.hostIP !== '0.0.0.0' ? ['-d', `${p.hostIP}/32`] : [];
    const to = ['-p', p.protocol, '-m', p.protocol];
    rules.push({ table: 'nat', chain: 'LXR-HOSTPORTS', args: [...dst, ...to, '--dport', String(p.hostPort), '-j', 'DNAT', '--to-destination', `${t.addr}:${p.containerPort}`] });
    const svc = ['-d', `${t.addr}/32`, ...to, '--dport', String(p.containerPort)];
    rules.push({ table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', '127.0.0.0/8', ...svc, '-j', 'MASQUERADE'] });
    rules.push({ table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', t.subnet, ...svc, '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'MASQUERADE'] });
    rules.push({ table: 'filter', chain: 'LXR-FORWARD', args: [...svc, '-j', 'ACCEPT'] });
  }
  // the drop rule first, route_localnet after it: never one without the other
  if (t.bridge) rules.push(localnetRule(t.bridge));
  setRules(tag, rules, precheck);
  if (t.bridge) setSysctl(`net.ipv4.conf.${t.bridge}.route_localnet`, '1');
  return prev;
}

/** Drop what arrives on `bridge` for 127.0.0.0/8 unless it belongs to a DNATed connection (a published port's). */
function localnetRule(bridge: string): Rule {
  return { table: 'filter', chain: 'LXR-INPUT', args: ['-i', bridge, '-d', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'DNAT', '-j', 'DROP'] };
}

function bridgesOf(rules: ListedRule[]): Set<string> {
  return new Set(rules.filter((r) => r.chain === 'LXR-INPUT' && r.args.includes('-i')).map((r) => r.args[r.args.indexOf('-i') + 1]!));
}

/** Under the rules' lock, before they go: route_localnet=0 on each bridge whose last published port goes. */
function resetLocalnet(removed: ListedRule[], left: ListedRule[]): void {
  const still = bridgesOf(left);
  for (const bridge of bridgesOf(removed)) {
    if (still.has(bridge)) continue;
    const key = `net.ipv4.conf.${bridge}.route_localnet`;
    if (existsSync(`/proc/sys/${key.replaceAll('.', '/')}`)) setSysctl(key, '0');
  }
}

export const plugin: Plugin = {
  about: 'lxr-portmap: lxr published ports',
  handlers: {
    add,
    del(a) {
      removeRules(ruleTag(OWNER, a.conf.name, a.containerId), resetLocalnet);
    },
    check(a) {
      const m = mappings(a);
      if (m.length === 0) return;
      const tag = ruleTag(OWNER, a.conf.name, a.containerId);
      const n = listRules().filter((r) => r.tag === tag && r.chain === 'LXR-HOSTPORTS').length;
      if (n !== m.length) throw new CniError(ERR.system, `container ${a.containerId} has ${n} of its ${m.length} port rules`);
    },
    status() {},
    gc(a) {
      const valid = new Set((a.conf['cni.dev/valid-attachments'] ?? []).map((v) => v.containerID));
      const prefix = `${OWNER}:${a.conf.name}:`;
      removeRulesWhere((t) => t.startsWith(prefix) && !valid.has(t.slice(prefix.length)), resetLocalnet);
    },
  },
};
