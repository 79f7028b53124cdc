// IPv4 arithmetic for subnets, ranges and overlap checks. lxr's networks are IPv4 only.
import { LxrError } from '../../common/errors.js';

export interface Subnet {
  /** network address as an unsigned 32-bit number */
  base: number;
  prefix: number;
}

export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) throw new LxrError(`invalid IPv4 address "${s}"`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new LxrError(`invalid IPv4 address "${s}"`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  try {
    parseIp(s);
    return true;
  } catch {
    return false;
  }
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "10.88.0.0/16"; the host bits are cleared ("10.88.0.1/16" means 10.88.0.0/16). */
export function parseSubnet(s: string): Subnet {
  const [addr, len, extra] = s.split('/');
  const prefix = Number(len);
  if (extra !== undefined || len === undefined || !/^\d+$/.test(len) || prefix > 32) {
    throw new LxrError(`invalid IPv4 subnet "${s}" (expected ADDRESS/PREFIX, e.g. 10.88.0.0/16)`);
  }
  return { base: (parseIp(addr) & maskOf(prefix)) >>> 0, prefix };
}

export function formatSubnet(n: Subnet): string {
  return `${formatIp(n.base)}/${n.prefix}`;
}

export function contains(n: Subnet, ipNum: number): boolean {
  return ((ipNum & maskOf(n.prefix)) >>> 0) === n.base;
}

export function broadcast(n: Subnet): number {
  return (n.base | (~maskOf(n.prefix) >>> 0)) >>> 0;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}
