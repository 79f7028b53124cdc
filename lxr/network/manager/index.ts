// lxr's container networking, as the front end sees it. Networks are CNI network
// configuration lists in a directory (/etc/lxr/net.d by default); attaching a container runs
// the list's plugins (lxr's own lxr-bridge/lxr-ipam/lxr-portmap, or e.g. Debian's
// bridge/host-local/portmap/firewall) and records the attachment, so that DEL gets the same
// configuration and result, hosts files can list the network's containers by name, and GC
// knows what exists.
//
// State: one place for the whole host, whatever --root or --run-root a command was given,
// since there is one bridge and one address space: /run/lxr-net (LXR_NET_STATE_DIR), as
// podman's netavark keeps its IPAM in /run/containers/networks beside --root and --runroot.
// It is run state: after a reboot no container holds an address, a veth or a namespace.
// A configuration list names its IPAM dataDir, so one written before keeps its leases where they were.
//   attachments/<network>/<containerId>.json   one record per attachment (config, result, ports)
//   containers/<containerId>/{hosts,hostname,resolv.conf}   files the front end bind-mounts
//   ipam/<network>/leases.json                 lxr-ipam's leases (dataDir of the default network)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LxrError } from '../../../common/errors.js';
import { packageRoot } from '../../../native/paths.js';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  loadNetworks,
  statusNetworkList,
  type CniExec,
  type LoadedNetwork,
} from '../cni/invoke.js';
import { localPlugins } from '../plugins/local.js';
import type { CniResult, NetworkConfList } from '../cni/types.js';
import { hostResolvConf, hostsContent, resolvConfContent, type HostEntry, type ResolvOptions } from '../dns.js';
import { formatIp, formatSubnet, overlaps, parseIp, parseSubnet } from '../ipv4.js';
import { deleteLink, overlappingRoutes } from '../link.js';
import { checkHostPortFree, parsePortSpec, type PublishedPort } from '../ports.js';
import { rewriteInPlace } from '../sys.js';
import { withExclusiveLock, withExclusiveLockSync } from '../../../native/lock.js';
import { writeFileAtomic } from '../../../common/atomic.js';

export { createNetns, removeNetns, netnsPath, NETNS_DIR } from '../netns.js';
export { parsePortSpec, checkHostPortFree, type PublishedPort } from '../ports.js';
export { resolvConfContent, hostsContent } from '../dns.js';
export type { CniResult, NetworkConfList } from '../cni/types.js';

export const DEFAULT_NETWORK = 'lxr';
/** The network state of the host (attachments, leases, DNS files): one for every --root. */
export const DEFAULT_NET_STATE_DIR = '/run/lxr-net';
export const DEFAULT_BRIDGE = 'lxr0';
/**
 * The default network's subnet is the first of these that overlaps no route of the host and
 * no other network, as docker picks its default bridge's among its default address pools.
 * Never podman's default (10.88.0.0/16, and 10.89.0.0/16 and up for its other networks) nor
 * docker's (172.17.0.0/16): when they share a host, both bridges would claim one route.
 */
export const DEFAULT_SUBNET_POOLS: string[] = [
  ...[80, 81, 82, 83, 84, 85, 86, 87].map((n) => `10.${n}.0.0/16`),
  ...Array.from({ length: 14 }, (_, i) => `172.${18 + i}.0.0/16`),
  ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`),
];
/** Avoided by every automatic choice, even when no route shows them (their bridges may be down). */
export const FOREIGN_DEFAULT_SUBNETS = ['10.88.0.0/16', '172.17.0.0/16'];

/** The first pool that overlaps no route (of the host, or of `netns`) and no subnet in `taken`. */
export function pickDefaultSubnet(o: { taken?: string[]; netns?: string; pools?: string[] } = {}): string {
  const taken = [...FOREIGN_DEFAULT_SUBNETS, ...(o.taken ?? [])].map(parseSubnet);
  for (const p of o.pools ?? DEFAULT_SUBNET_POOLS) {
    const sub = parseSubnet(p);
    if (taken.some((x) => overlaps(x, sub))) continue;
    if (overlappingRoutes(sub, undefined, o.netns).length) continue;
    return formatSubnet(sub);
  }
  throw new LxrError(`no free subnet for the default network: every one of ${(o.pools ?? DEFAULT_SUBNET_POOLS).length} candidates overlaps a route or a network (give one with LXR_NET_SUBNET)`);
}

/** Where things are; every API call accepts these (lxr's context fills them from LXR_NET_CONF_DIR, LXR_NET_STATE_DIR, LXR_CNI_PATH). */
export interface NetworkOptions {
  /** directory of *.conflist files (default /etc/lxr/net.d) */
  confDir?: string;
  /** state directory (default DEFAULT_NET_STATE_DIR, /run/lxr-net) */
  stateDir?: string;
  /** directories searched for CNI plugins (default: lxr's dist/cni, /usr/lib/cni, /opt/cni/bin) */
  cniPath?: string[];
}

function confDirOf(o: NetworkOptions): string {
  return o.confDir ?? '/etc/lxr/net.d';
}
function stateDirOf(o: NetworkOptions): string {
  return o.stateDir ?? DEFAULT_NET_STATE_DIR;
}

/** lxr's own plugins: dist/cni of the package this module runs from (sources or bundles). */
export function lxrPluginDir(): string | undefined {
  const dir = join(packageRoot(), 'dist', 'cni');
  return existsSync(join(dir, 'lxr-bridge')) ? dir : undefined;
}

/** The CNI path, and lxr's own plugins in it run in this process (plugins/local.ts). */
export function cniExecOf(o: NetworkOptions = {}): CniExec {
  return { path: cniPathOf(o), local: localPlugins(lxrPluginDir()) };
}

export function cniPathOf(o: NetworkOptions = {}): string[] {
  if (o.cniPath) return o.cniPath;
  const own = lxrPluginDir();
  return [...(own ? [own] : []), '/usr/lib/cni', '/opt/cni/bin'];
}

export interface NetworkInfo {
  name: string;
  file: string;
  cniVersion: string;
  /** plugin types, in order */
  plugins: string[];
  bridge?: string;
  subnet?: string;
  gateway?: string;
}

function describe(n: LoadedNetwork): NetworkInfo {
  const first = n.list.plugins[0] as Record<string, unknown>;
  const ipam = (first.ipam ?? {}) as Record<string, unknown>;
  let subnet = typeof ipam.subnet === 'string' ? ipam.subnet : undefined;
  let gateway = typeof ipam.gateway === 'string' ? ipam.gateway : undefined;
  const range = (ipam.ranges as { subnet?: string; gateway?: string }[][] | undefined)?.[0]?.[0];
  if (!subnet && range?.subnet) subnet = range.subnet;
  if (!gateway && range?.gateway) gateway = range.gateway;
  if (subnet && !gateway) {
    try {
      gateway = formatIp(parseSubnet(subnet).base + 1);
    } catch {
      /* described as is */
    }
  }
  return {
    name: n.list.name,
    file: n.file,
    cniVersion: n.list.cniVersion,
    plugins: n.list.plugins.map((p) => p.type),
    ...(typeof first.bridge === 'string' ? { bridge: first.bridge } : {}),
    ...(subnet ? { subnet } : {}),
    ...(gateway ? { gateway } : {}),
  };
}

/** The networks in the configuration directory. */
export function listNetworks(o: NetworkOptions = {}): NetworkInfo[] {
  return loadNetworks(confDirOf(o)).map(describe);
}

function loadNetwork(name: string, o: NetworkOptions): LoadedNetwork {
  const n = loadNetworks(confDirOf(o)).find((x) => x.list.name === name);
  if (!n) throw new LxrError(`network ${name} not found (no ${name} in ${confDirOf(o)}/*.conflist)`);
  return n;
}

export interface CreateNetworkOptions extends NetworkOptions {
  name: string;
  bridge: string;
  subnet: string;
  gateway?: string;
  /** which plugins implement it: lxr's own (default) or the containernetworking-plugins ones */
  plugins?: 'lxr' | 'reference';
  /** default "1.1.0" for lxr's plugins, "1.0.0" for the reference plugins (Debian ships 1.1.1, which speaks up to 1.0.0) */
  cniVersion?: string;
  /** lease directory (default <stateDir>/ipam) */
  ipamDataDir?: string;
}

/** The configuration list of a bridge network, without writing it. */
export function bridgeConfList(o: CreateNetworkOptions): NetworkConfList {
  const sub = parseSubnet(o.subnet);
  const subnet = formatSubnet(sub);
  const gateway = o.gateway ?? formatIp(sub.base + 1);
  const dataDir = o.ipamDataDir ?? join(stateDirOf(o), 'ipam');
  if (o.plugins === 'reference') {
    return {
      cniVersion: o.cniVersion ?? '1.0.0',
      name: o.name,
      // Debian's portmap 1.1.1 fails CHECK on hosts without IPv6 addresses ("could not check
      // ipv6 dnat"): a spurious error, which is what disableCheck is for.
      disableCheck: true,
      plugins: [
        {
          type: 'bridge',
          bridge: o.bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet, gateway }]], routes: [{ dst: '0.0.0.0/0' }], dataDir },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall' },
      ],
    };
  }
  return {
    cniVersion: o.cniVersion ?? '1.1.0',
    name: o.name,
    plugins: [
      {
        type: 'lxr-bridge',
        bridge: o.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'lxr-ipam', subnet, gateway, routes: [{ dst: '0.0.0.0/0' }], dataDir },
      },
      { type: 'lxr-portmap', capabilities: { portMappings: true } },
    ],
  };
}

/**
 * Write a new bridge network's configuration list (<confDir>/<name>.conflist). Refuses a
 * subnet that overlaps a host route (other than its own bridge's) or another network's subnet.
 */
export async function createNetwork(o: CreateNetworkOptions): Promise<NetworkInfo> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.name)) throw new LxrError(`invalid network name "${o.name}"`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(o.bridge)) throw new LxrError(`invalid bridge name "${o.bridge}" (at most 15 characters)`);
  const sub = parseSubnet(o.subnet);
  if (sub.prefix > 30) throw new LxrError(`subnet ${o.subnet} is too small (at most /30)`);
  if (o.gateway !== undefined && !overlaps(sub, { base: parseIp(o.gateway), prefix: 32 })) {
    throw new LxrError(`gateway ${o.gateway} is outside subnet ${o.subnet}`);
  }
  const dir = confDirOf(o);
  return withExclusiveLock(join(stateDirOf(o), 'networks.lock'), () => {
    const existing = loadNetworks(dir);
    if (existing.some((n) => n.list.name === o.name)) throw new LxrError(`network ${o.name} already exists in ${dir}`);
    for (const n of existing.map(describe)) {
      if (n.bridge === o.bridge) throw new LxrError(`bridge ${o.bridge} is already used by network ${n.name}`);
      if (n.subnet && overlaps(parseSubnet(n.subnet), sub)) {
        throw new LxrError(`subnet ${formatSubnet(sub)} overlaps subnet ${n.subnet} of network ${n.name}`);
      }
    }
    const clash = overlappingRoutes(sub, o.bridge);
    if (clash.length) throw new LxrError(`subnet ${formatSubnet(sub)} overlaps host route ${clash[0]}: choose another subnet`);
    const file = join(dir, `${o.name}.conflist`);
    writeFileAtomic(file, JSON.stringify(bridgeConfList(o), null, 2) + '\n', { mkdir: true });
    return describe({ file, list: bridgeConfList(o) });
  });
}

/** The default network (lxr, bridge lxr0, a subnet from DEFAULT_SUBNET_POOLS unless told otherwise): returned if it exists, else created. */
export async function ensureDefaultNetwork(o: Partial<CreateNetworkOptions> = {}): Promise<NetworkInfo> {
  const name = o.name ?? DEFAULT_NETWORK;
  const found = listNetworks(o).find((n) => n.name === name);
  if (found) return found;
  try {
    const subnet = o.subnet ?? pickDefaultSubnet({ taken: listNetworks(o).map((n) => n.subnet).filter((x): x is string => !!x) });
    return await createNetwork({ ...o, name, bridge: o.bridge ?? DEFAULT_BRIDGE, subnet });
  } catch (e) {
    const again = listNetworks(o).find((n) => n.name === name); // created concurrently
    if (again) return again;
    throw e;
  }
}

/**
 * Remove a network: its configuration list, its bridge and its lease directory. Refuses while
 * containers are attached.
 */
export async function removeNetwork(o: NetworkOptions & { name: string }): Promise<void> {
  const n = loadNetwork(o.name, o);
  const attached = records(o.name, o);
  if (attached.length) throw new LxrError(`network ${o.name} still has ${attached.length} container(s) attached (${attached[0].containerId}...)`);
  const info = describe(n);
  unlinkSync(n.file);
  if (info.bridge) deleteLink(info.bridge);
  const ipam = (n.list.plugins[0] as { ipam?: { dataDir?: string } }).ipam;
  if (ipam?.dataDir) rmSync(join(ipam.dataDir, o.name), { recursive: true, force: true });
  rmSync(join(stateDirOf(o), 'attachments', o.name), { recursive: true, force: true });
}

/** STATUS of a network's plugins (CNI 1.1.0 lists; older lists are assumed ready). */
export async function networkStatus(o: NetworkOptions & { network?: string } = {}): Promise<void> {
  await statusNetworkList(loadNetwork(o.network ?? DEFAULT_NETWORK, o).list, cniExecOf(o));
}

// ---- attachments ----

export interface AttachmentRecord {
  containerId: string;
  name: string;
  network: string;
  ifname: string;
  netns: string;
  ports: PublishedPort[];
  ip: string;
  gateway?: string;
  prefixLength: number;
  mac?: string;
  /** the configuration list as it was at ADD time (DEL must use the same) */
  list: NetworkConfList;
  result: CniResult;
}

export interface AttachOptions extends NetworkOptions {
  containerId: string;
  /** the container's name, used in hosts files */
  name: string;
  netnsPath: string;
  /** network name (default "lxr") */
  network?: string;
  /** interface name in the container (default eth0) */
  ifname?: string;
  ports?: (PublishedPort | string)[];
}

export interface AttachResult {
  ip: string;
  gateway?: string;
  mac?: string;
  prefixLength: number;
  network: string;
  ifname: string;
  result: CniResult;
}

function recordPath(o: NetworkOptions, network: string, containerId: string): string {
  return join(stateDirOf(o), 'attachments', network, `${containerId}.json`);
}

function records(network: string, o: NetworkOptions): AttachmentRecord[] {
  const dir = join(stateDirOf(o), 'attachments', network);
  if (!existsSync(dir)) return [];
  const out: AttachmentRecord[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as AttachmentRecord);
    } catch {
      /* a torn record cannot exist (atomic writes); skip anything foreign */
    }
  }
  return out;
}

function allRecords(o: NetworkOptions): AttachmentRecord[] {
  const dir = join(stateDirOf(o), 'attachments');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => statSync(join(dir, d)).isDirectory())
    .flatMap((d) => records(d, o));
}

/** The attachments of a container (all networks), or of everything on a network. */
export function listAttachments(o: NetworkOptions & { containerId?: string; network?: string } = {}): AttachmentRecord[] {
  const all = o.network ? records(o.network, o) : allRecords(o);
  return all.filter((r) => !o.containerId || r.containerId === o.containerId);
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function normalizePorts(ports: (PublishedPort | string)[] | undefined): PublishedPort[] {
  const out = (ports ?? []).map((p) => (typeof p === 'string' ? parsePortSpec(p) : p));
  const seen = new Set<string>();
  for (const p of out) {
    const k = `${p.protocol}/${p.hostPort}`;
    if (seen.has(k)) throw new LxrError(`host port ${p.hostPort}/${p.protocol} is published twice`);
    seen.add(k);
  }
  return out;
}

function netLock(o: NetworkOptions, network: string): string {
  return join(stateDirOf(o), 'attachments', `${network}.lock`);
}

/**
 * Connect a container's network namespace to a network: runs the network's CNI ADD chain
 * with the published ports as the portMappings capability. A host port that is taken (by a
 * host listener or another container) fails the attach. Whatever a failed attach made is
 * removed again (CNI DEL of the chain). Refreshes the hosts files of the network's containers.
 */
export async function attachContainer(o: AttachOptions): Promise<AttachResult> {
  if (!ID_RE.test(o.containerId)) throw new LxrError(`invalid container id "${o.containerId}"`);
  const network = o.network ?? DEFAULT_NETWORK;
  const ifname = o.ifname ?? 'eth0';
  const n = loadNetwork(network, o);
  if (!existsSync(o.netnsPath)) throw new LxrError(`network namespace ${o.netnsPath} does not exist`);
  const ports = normalizePorts(o.ports);
  if (existsSync(recordPath(o, network, o.containerId))) {
    throw new LxrError(`container ${o.containerId} is already attached to network ${network}`);
  }
  // Host ports: taken by another container's mapping, or by a listener on the host.
  for (const p of ports) {
    for (const r of allRecords(o)) {
      if (r.containerId === o.containerId) continue;
      const clash = r.ports.find(
        (q) => q.protocol === p.protocol && q.hostPort === p.hostPort && (!q.hostIp || !p.hostIp || q.hostIp === p.hostIp),
      );
      if (clash) throw new LxrError(`host port ${p.hostIp ?? '0.0.0.0'}:${p.hostPort}/${p.protocol} is already published by container ${r.containerId}`);
    }
    await checkHostPortFree(p);
  }
  const attachment = {
    containerId: o.containerId,
    netns: o.netnsPath,
    ifname,
    capabilityArgs: {
      portMappings: ports.map((p) => ({
        hostPort: p.hostPort,
        containerPort: p.containerPort,
        protocol: p.protocol,
        ...(p.hostIp ? { hostIP: p.hostIp } : {}),
      })),
    },
  };
  const cni = cniExecOf(o);
  let result: CniResult;
  try {
    result = await addNetworkList(n.list, attachment, cni);
  } catch (e) {
    // SPEC.md: "A delete must still be executed even if the add fails."
    await delNetworkList(n.list, attachment, cni, undefined, true).catch(() => undefined);
    throw e;
  }
  const ifIndex = (result.interfaces ?? []).findIndex((i) => i.name === ifname && !!i.sandbox);
  const ipc = result.ips?.find((x) => x.interface === ifIndex && !x.address.includes(':')) ?? result.ips?.find((x) => !x.address.includes(':'));
  if (!ipc) {
    await delNetworkList(n.list, attachment, cni, result, true).catch(() => undefined);
    throw new LxrError(`network ${network}: the CNI result has no IPv4 address for ${ifname}`);
  }
  const [ipAddr, prefix] = ipc.address.split('/');
  const rec: AttachmentRecord = {
    containerId: o.containerId,
    name: o.name,
    network,
    ifname,
    netns: o.netnsPath,
    ports,
    ip: ipAddr,
    gateway: ipc.gateway,
    prefixLength: Number(prefix),
    mac: ifIndex >= 0 ? result.interfaces?.[ifIndex]?.mac : undefined,
    list: n.list,
    result,
  };
  await withExclusiveLock(netLock(o, network), () => {
    writeFileAtomic(recordPath(o, network, o.containerId), JSON.stringify(rec, null, 2) + '\n', { mode: 0o600, mkdir: true });
    refreshHostsLocked(network, o);
  });
  return { ip: rec.ip, gateway: rec.gateway, mac: rec.mac, prefixLength: rec.prefixLength, network, ifname, result };
}

export interface DetachOptions extends NetworkOptions {
  containerId: string;
  /** the netns, if the front end still knows it (a record has it too) */
  netnsPath?: string;
  /** one network, or every network the container is attached to when missing */
  network?: string;
  ifname?: string;
  ports?: (PublishedPort | string)[];
}

/**
 * Disconnect a container: CNI DEL of the chain (with the configuration and result recorded at
 * ADD time), which releases the lease, removes veth and rules. Idempotent, and it works for a
 * container that was only half attached (no record: the current configuration is used).
 * Removes the container's DNS files once it is on no network, and refreshes the others' hosts.
 */
export async function detachContainer(o: DetachOptions): Promise<void> {
  if (!ID_RE.test(o.containerId)) throw new LxrError(`invalid container id "${o.containerId}"`);
  const recs = listAttachments({ ...o, containerId: o.containerId, network: o.network });
  const targets: { network: string; rec?: AttachmentRecord }[] = recs.map((r) => ({ network: r.network, rec: r }));
  if (o.network && targets.length === 0) targets.push({ network: o.network });
  const errors: string[] = [];
  for (const t of targets) {
    let list: NetworkConfList;
    if (t.rec) list = t.rec.list;
    else {
      try {
        list = loadNetwork(t.network, o).list;
      } catch {
        continue; // neither a record nor a configuration: nothing to undo
      }
    }
    const ports = t.rec?.ports ?? normalizePorts(o.ports);
    const attachment = {
      containerId: o.containerId,
      netns: t.rec?.netns ?? o.netnsPath ?? '',
      ifname: t.rec?.ifname ?? o.ifname ?? 'eth0',
      capabilityArgs: {
        portMappings: ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, ...(p.hostIp ? { hostIP: p.hostIp } : {}) })),
      },
    };
    // CNI_NETNS is optional for DEL; a netns that is gone is passed as empty.
    if (attachment.netns && !existsSync(attachment.netns)) attachment.netns = '';
    try {
      await delNetworkList(list, attachment, cniExecOf(o), t.rec?.result);
    } catch (e) {
      errors.push((e as Error).message);
      continue; // keep the record, so that a retry can finish the job
    }
    await withExclusiveLock(netLock(o, t.network), () => {
      rmSync(recordPath(o, t.network, o.containerId), { force: true });
      refreshHostsLocked(t.network, o);
    });
  }
  if (errors.length) throw new LxrError(errors.join('; '));
  if (listAttachments({ ...o, containerId: o.containerId }).length === 0) {
    rmSync(join(stateDirOf(o), 'containers', o.containerId), { recursive: true, force: true });
  }
}

/** CNI CHECK of a container's attachment(s). Rejects with the first failing plugin's error. */
export async function checkContainer(o: NetworkOptions & { containerId: string; network?: string }): Promise<void> {
  const recs = listAttachments(o);
  if (recs.length === 0) throw new LxrError(`container ${o.containerId} is not attached to ${o.network ? `network ${o.network}` : 'any network'}`);
  for (const r of recs) {
    await checkNetworkList(
      r.list,
      {
        containerId: r.containerId,
        netns: r.netns,
        ifname: r.ifname,
        capabilityArgs: { portMappings: r.ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, ...(p.hostIp ? { hostIP: p.hostIp } : {}) })) },
      },
      cniExecOf(o),
      r.result,
    );
  }
}

// ---- DNS files ----

export interface DnsFilesOptions extends NetworkOptions {
  containerId: string;
  /** the container's name: in its own hosts entry and in the other containers' hosts files */
  name: string;
  /** default: the name */
  hostname?: string;
  dns?: ResolvOptions;
  /** the host resolv.conf to start from (default /etc/resolv.conf) */
  hostResolvConf?: string;
  /** lines of its own for the hosts file (docker's --add-host), kept across refreshes */
  extraHosts?: HostEntry[];
}

export interface DnsFiles {
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
}

function containerDir(o: NetworkOptions, id: string): string {
  return join(stateDirOf(o), 'containers', id);
}

function hostsFor(containerId: string, name: string, hostname: string | undefined, o: NetworkOptions): string {
  const mine = allRecords(o).filter((r) => r.containerId === containerId);
  const self: HostEntry | undefined = mine[0] ? { ip: mine[0].ip, names: [...new Set([name, ...(hostname ? [hostname] : [])])] } : undefined;
  const nets = new Set(mine.map((r) => r.network));
  const others: HostEntry[] = [];
  const seen = new Set<string>();
  for (const net of nets) {
    for (const r of records(net, o)) {
      if (r.containerId === containerId || seen.has(r.containerId)) continue;
      seen.add(r.containerId);
      others.push({ ip: r.ip, names: [r.name] });
    }
  }
  // --add-host entries, written by dnsFiles (extra-hosts) and kept by every refresh
  try {
    others.push(...(JSON.parse(readFileSync(join(containerDir(o, containerId), 'extra-hosts'), 'utf8')) as HostEntry[]));
  } catch {
    /* none */
  }
  return hostsContent(self, others);
}

/**
 * Write the container's /etc/hosts, /etc/hostname and /etc/resolv.conf under
 * <stateDir>/containers/<id>/ and return their paths (the front end bind-mounts them). Call it
 * after attachContainer so the hosts file has the container's address. The files are rewritten
 * in place, and attach/detach of other containers on the same network refresh the hosts file.
 */
export async function dnsFiles(o: DnsFilesOptions): Promise<DnsFiles> {
  if (!ID_RE.test(o.containerId)) throw new LxrError(`invalid container id "${o.containerId}"`);
  const dir = containerDir(o, o.containerId);
  const paths = { hostsPath: join(dir, 'hosts'), resolvConfPath: join(dir, 'resolv.conf'), hostnamePath: join(dir, 'hostname') };
  const hostname = o.hostname ?? o.name;
  const result = allRecords(o).find((r) => r.containerId === o.containerId)?.result;
  const dns: ResolvOptions = { ...o.dns };
  if (!dns.servers?.length && result?.dns?.nameservers?.length) dns.servers = result.dns.nameservers;
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'name'), `${o.name}\n${hostname}\n`, { mkdir: true });
  if (o.extraHosts?.length) writeFileAtomic(join(dir, 'extra-hosts'), JSON.stringify(o.extraHosts), { mkdir: true });
  rewriteInPlace(paths.hostnamePath, `${hostname}\n`);
  rewriteInPlace(paths.resolvConfPath, resolvConfContent(hostResolvConf(o.hostResolvConf), dns));
  const nets = [...new Set(allRecords(o).filter((r) => r.containerId === o.containerId).map((r) => r.network))];
  const write = () => writeHosts(paths.hostsPath, hostsFor(o.containerId, o.name, hostname, o));
  if (nets.length) await withExclusiveLock(netLock(o, nets[0]), write);
  else write();
  return paths;
}

/** A container on two networks can be refreshed by both at once: one writer per file. */
function writeHosts(path: string, content: string): void {
  withExclusiveLockSync(`${path}.lock`, () => rewriteInPlace(path, content));
}

function refreshHostsLocked(network: string, o: NetworkOptions): void {
  for (const r of records(network, o)) {
    const dir = containerDir(o, r.containerId);
    const hosts = join(dir, 'hosts');
    if (!existsSync(hosts)) continue; // dnsFiles was not called for it
    let hostname: string | undefined;
    try {
      hostname = readFileSync(join(dir, 'name'), 'utf8').split('\n')[1] || undefined;
    } catch {
      hostname = undefined;
    }
    writeHosts(hosts, hostsFor(r.containerId, r.name, hostname, o));
  }
}

/** Rewrite (in place) the hosts files of every container on `network`. attach/detach do this already. */
export async function refreshHosts(o: NetworkOptions & { network?: string } = {}): Promise<void> {
  const network = o.network ?? DEFAULT_NETWORK;
  await withExclusiveLock(netLock(o, network), () => refreshHostsLocked(network, o));
}

// ---- garbage collection ----

export interface GcOptions extends NetworkOptions {
  /** ids of the containers that still exist; everything of any other container is removed */
  keep: string[];
}

/**
 * Remove leases, veths, rules, records and DNS files of containers that no longer exist:
 * CNI DEL for each recorded attachment of a container not in `keep`, then CNI GC (1.1.0 lists)
 * with the kept attachments as the valid ones, which also catches what has no record.
 * Returns the removed container ids and the errors met (it goes on after an error).
 */
export async function gcNetwork(o: GcOptions): Promise<{ removed: string[]; errors: string[] }> {
  const keep = new Set(o.keep);
  const removed = new Set<string>();
  const errors: string[] = [];
  for (const r of allRecords(o)) {
    if (keep.has(r.containerId)) continue;
    try {
      await detachContainer({ ...o, containerId: r.containerId, network: r.network });
      removed.add(r.containerId);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  for (const n of loadNetworks(confDirOf(o))) {
    const valid = records(n.list.name, o).map((r) => ({ containerID: r.containerId, ifname: r.ifname }));
    try {
      await gcNetworkList(n.list, valid, cniExecOf(o));
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  const cdir = join(stateDirOf(o), 'containers');
  if (existsSync(cdir)) {
    for (const id of readdirSync(cdir)) {
      if (!keep.has(id) && allRecords(o).every((r) => r.containerId !== id)) {
        rmSync(join(cdir, id), { recursive: true, force: true });
        removed.add(id);
      }
    }
  }
  return { removed: [...removed], errors };
}
