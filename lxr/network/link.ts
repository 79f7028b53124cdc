// Links, addresses and routes, through rtnetlink (netlink.ts): no `ip` process. Functions
// that take `netns` (a path such as /run/netns/x) work inside that network namespace through
// a socket opened there; without it, in the host's.
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { Netlink, flagNames, isErrno, type Link } from './netlink.js';
import { formatSubnet, overlaps, parseSubnet, type Subnet } from './ipv4.js';

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  address?: string;
  mtu?: number;
  /** the master's name (a bridge) */
  master?: string;
  operstate?: string;
  flags?: string[];
  /** bridge, veth, ... */
  kind?: string;
}

/** Run fn with a netlink socket in `netns` (closed afterwards), or with the host's. */
export function withNetlink<T>(netns: string | undefined, fn: (nl: Netlink) => T): T {
  return netns ? Netlink.in(netns, fn) : fn(Netlink.host());
}

/** A Link as LinkInfo (the master by name). */
export function describeLink(nl: Netlink, l: Link): LinkInfo {
  return {
    ifname: l.ifname,
    ifindex: l.index,
    address: l.address,
    mtu: l.mtu,
    master: l.master ? nl.getLinkByIndex(l.master)?.ifname : undefined,
    operstate: l.operstate,
    flags: flagNames(l.flags),
    kind: l.kind,
  };
}

export function linkInfo(name: string, netns?: string): LinkInfo | undefined {
  return withNetlink(netns, (nl) => {
    const l = nl.getLink(name);
    return l && describeLink(nl, l);
  });
}

export function linkExists(name: string, netns?: string): boolean {
  return withNetlink(netns, (nl) => nl.getLink(name) !== undefined);
}

/** The link's IPv4 addresses as ADDRESS/PREFIX; none when the link is missing. */
export function addresses(name: string, netns?: string): string[] {
  return withNetlink(netns, (nl) => {
    const l = nl.getLink(name);
    return l ? nl.addresses(l.index).map((a) => `${a.address}/${a.prefixlen}`) : [];
  });
}

/** The host end of a container's veth: a stable name from (containerId, ifname), so DEL finds it without the netns. */
export function hostVethName(containerId: string, ifname: string): string {
  return 'veth' + createHash('sha256').update(`${containerId}\u0000${ifname}`).digest('hex').slice(0, 8);
}

/** The bridge's fixed MAC (see ensureBridge). */
export function bridgeMac(name: string): string {
  return '02:' + (createHash('sha256').update(`lxr-bridge:${name}`).digest('hex').slice(0, 10).match(/../g) ?? []).join(':');
}

/** Create the bridge if missing and bring it up. */
export function ensureBridge(name: string, mtu?: number): LinkInfo {
  const nl = Netlink.host();
  let l = nl.getLink(name);
  if (!l) {
    // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it when
    // that port leaves, and the other containers' ARP entries for the gateway go stale.
    try {
      nl.addBridge(name, { mac: bridgeMac(name), mtu });
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e; // made concurrently
    }
    l = nl.getLink(name);
    if (!l) throw new LxrError(`bridge ${name} vanished after it was created`);
  }
  if (l.kind !== 'bridge') throw new LxrError(`link ${name} exists and is not a bridge (${l.kind ? `a ${l.kind}` : 'no kind'}): choose another bridge name`);
  if (!(l.flags & 1)) nl.setLink(l.index, { up: true }, name);
  return describeLink(nl, l);
}

/** Add `cidr` (e.g. 10.88.0.1/16) to the link unless it already has it. */
export function ensureAddress(name: string, cidr: string): void {
  const nl = Netlink.host();
  const l = nl.getLink(name);
  if (!l) throw new LxrError(`adding ${cidr} to ${name}: there is no link ${name}`);
  try {
    nl.addAddress(l.index, cidr, name);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
  }
}

/** Delete a link of the host; missing is fine. */
export function deleteLink(name: string): void {
  Netlink.host().deleteLink(name);
}

/**
 * deleteLink with the kernel's 20-40 ms of waiting (for RCU) on a worker thread, so that the
 * caller can do other work meanwhile; missing is fine.
 */
export async function deleteLinkAsync(name: string): Promise<void> {
  await Netlink.deleteLinkAsync(name);
}

export function setSysctl(key: string, value: string): void {
  const p = `/proc/sys/${key.replaceAll('.', '/')}`;
  try {
    writeFileSync(p, value);
  } catch (e) {
    throw new LxrError(`setting ${key}=${value} (${p}): ${(e as Error).message}`);
  }
}

export function netnsExists(path: string): boolean {
  return !!path && existsSync(path);
}

/**
 * Host routes (all tables) whose destination overlaps `subnet`, ignoring the ones through
 * `exceptDev` (the network's own bridge) and the default route. `netns`: the routes of that
 * network namespace (a path) instead of the host's (tests make one with routes of their own).
 */
export function overlappingRoutes(subnet: Subnet, exceptDev?: string, netns?: string): string[] {
  if (netns) return Netlink.in(netns, (nl) => overlappingRoutesOf(nl, subnet, exceptDev));
  return overlappingRoutesOf(Netlink.host(), subnet, exceptDev);
}

function overlappingRoutesOf(nl: Netlink, subnet: Subnet, exceptDev?: string): string[] {
  const except = exceptDev ? nl.getLink(exceptDev)?.index : undefined;
  const names = new Map<number, string | undefined>();
  const devName = (i: number) => {
    if (!names.has(i)) names.set(i, nl.getLinkByIndex(i)?.ifname);
    return names.get(i);
  };
  const out: string[] = [];
  for (const r of nl.routes()) {
    if (r.dst === 'default' || (except !== undefined && r.oif === except)) continue;
    let dst: Subnet;
    try {
      dst = parseSubnet(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    } catch {
      continue;
    }
    // local/broadcast entries of the host's own addresses are in table local; they overlap too
    if (!overlaps(dst, subnet)) continue;
    const dev = r.oif ? devName(r.oif) : undefined;
    out.push(`${formatSubnet(dst)}${dev ? ` dev ${dev}` : ''}`);
  }
  return [...new Set(out)];
}
