// Links, addresses and routes through iproute2 (`ip -json` for reading).
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { LxrError } from '../../runtime/errors.js';
import { ip, must, run } from './sys.js';
import { formatSubnet, overlaps, parseSubnet, type Subnet } from './ipv4.js';

export interface LinkInfo {
  ifname: string;
  address?: string;
  mtu?: number;
  master?: string;
  operstate?: string;
  flags?: string[];
}

function ipJson<T>(args: string[], netns?: string): T | undefined {
  const r = netns ? run('nsenter', [`--net=${netns}`, 'ip', '-json', ...args]) : run('ip', ['-json', ...args]);
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return undefined;
  }
}

export function linkInfo(name: string, netns?: string): LinkInfo | undefined {
  return ipJson<LinkInfo[]>(['link', 'show', 'dev', name], netns)?.[0];
}

export function linkExists(name: string, netns?: string): boolean {
  return linkInfo(name, netns) !== undefined;
}

export interface AddrInfo {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

export function addresses(name: string, netns?: string): string[] {
  const a = ipJson<AddrInfo[]>(['-4', 'addr', 'show', 'dev', name], netns)?.[0];
  return (a?.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`);
}

/** The host end of a container's veth: a stable name from (containerId, ifname), so DEL finds it without the netns. */
export function hostVethName(containerId: string, ifname: string): string {
  return 'veth' + createHash('sha256').update(`${containerId}\u0000${ifname}`).digest('hex').slice(0, 8);
}

/** Create the bridge if missing and bring it up. */
export function ensureBridge(name: string, mtu?: number): LinkInfo {
  let l = linkInfo(name);
  if (!l) {
    // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it when
    // that port leaves, and the other containers' ARP entries for the gateway go stale.
    const mac = '02:' + (createHash('sha256').update(`lxr-bridge:${name}`).digest('hex').slice(0, 10).match(/../g) ?? []).join(':');
    const r = run('ip', ['link', 'add', 'name', name, 'address', mac, ...(mtu ? ['mtu', String(mtu)] : []), 'type', 'bridge']);
    if (r.status !== 0 && !/exists/i.test(r.stderr)) throw new LxrError(`creating bridge ${name}: ${r.stderr.trim()}`);
    l = linkInfo(name);
    if (!l) throw new LxrError(`bridge ${name} vanished after it was created`);
  }
  ip('link', 'set', 'dev', name, 'up');
  return l;
}

/** Add `cidr` (e.g. 10.88.0.1/16) to the link unless it already has it. */
export function ensureAddress(name: string, cidr: string): void {
  if (addresses(name).includes(cidr)) return;
  const r = run('ip', ['addr', 'add', cidr, 'dev', name]);
  if (r.status !== 0 && !/exists/i.test(r.stderr)) throw new LxrError(`adding ${cidr} to ${name}: ${r.stderr.trim()}`);
}

export function deleteLink(name: string): void {
  const r = run('ip', ['link', 'del', 'dev', name]);
  if (r.status !== 0 && !/Cannot find device|does not exist/i.test(r.stderr)) {
    throw new LxrError(`deleting link ${name}: ${r.stderr.trim()}`);
  }
}

/** Run several `ip` commands in a network namespace in one process (`ip -batch`). */
export function ipBatchIn(netns: string, lines: string[]): void {
  must('nsenter', [`--net=${netns}`, 'ip', '-batch', '-'], lines.join('\n') + '\n');
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

interface RouteInfo {
  dst: string;
  dev?: string;
}

/**
 * Host routes (all tables) whose destination overlaps `subnet`, ignoring the ones through
 * `exceptDev` (the network's own bridge) and the default route.
 */
export function overlappingRoutes(subnet: Subnet, exceptDev?: string): string[] {
  const routes = ipJson<RouteInfo[]>(['-4', 'route', 'show', 'table', 'all']) ?? [];
  const out: string[] = [];
  for (const r of routes) {
    if (!r.dst || r.dst === 'default' || (exceptDev && r.dev === exceptDev)) continue;
    let dst: Subnet;
    try {
      dst = parseSubnet(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    } catch {
      continue;
    }
    // local/broadcast entries of the host's own addresses are in table local; they overlap too
    if (overlaps(dst, subnet)) out.push(`${formatSubnet(dst)}${r.dev ? ` dev ${r.dev}` : ''}`);
  }
  return [...new Set(out)];
}
