// A small rtnetlink client: links, IPv4 addresses and routes, over a NETLINK_ROUTE socket
// that native/netns.c opens (in the host's network namespace, or inside another one through a
// short-lived helper: the Node process never enters a namespace). Requests are buffers built
// here; every change is acknowledged, and a kernel error becomes a NetlinkError naming the
// operation, the thing at fault and the errno, e.g.
//   creating veth vethab12cd34 (peer eth0 in /run/netns/x): EEXIST
// Synchronous on purpose, like the rest of lxr/network: each call is one or two system calls.
import { endianness } from 'node:os';
import { openSync, closeSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { native, errnoName, NS_STEP } from '../../native/index.js';
import { formatIp, parseIp } from './ipv4.js';

// ---- constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h) ----
const NLMSG_NOOP = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_OVERRUN = 4;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP_INTR = 0x10;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100; // in NLMSG_ERROR: the request is not echoed beyond its header
const NLM_F_ACK_TLVS = 0x200; // in NLMSG_ERROR: extended ack attributes follow
const NLMSGERR_ATTR_MSG = 1;

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_SETLINK = 19;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_BRIDGE = 7;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_PROTINFO = 12;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_EXT_MASK = 29;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3; // what `ip route add` uses
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

export const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
// the order `ip link` prints them in
const FLAG_NAMES: [number, string][] = [
  [0x8, 'LOOPBACK'], [0x2, 'BROADCAST'], [0x10, 'POINTOPOINT'], [0x1000, 'MULTICAST'], [0x80, 'NOARP'],
  [0x200, 'ALLMULTI'], [0x100, 'PROMISC'], [0x400, 'MASTER'], [0x800, 'SLAVE'], [0x4, 'DEBUG'], [0x8000, 'DYNAMIC'],
  [0x4000, 'AUTOMEDIA'], [0x2000, 'PORTSEL'], [0x20, 'NOTRAILERS'], [0x1, 'UP'], [0x10000, 'LOWER_UP'],
  [0x20000, 'DORMANT'], [0x40000, 'ECHO'],
];
const OPERSTATES = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'];
const RTN_TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];

const LE = endianness() === 'LE';

// ---- errors ----

/** A failed netlink operation: `${what}: ${code}` (plus the kernel's own words when it gave some). */
export class NetlinkError extends LxrError {
  readonly code: string;
  constructor(what: string, errno: number, detail?: string) {
    super(`${what}: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`, { errno });
    this.name = 'NetlinkError';
    this.code = errnoName(errno);
  }
}

export const isErrno = (e: unknown, code: string): boolean => e instanceof NetlinkError && e.code === code;

// ---- message building ----

/** Attributes (struct nlattr: u16 len, u16 type, payload, padded to 4), nestable. */
export class Attrs {
  private parts: Buffer[] = [];
  private size = 0;

  private push(type: number, payload: Buffer): this {
    const len = 4 + payload.length;
    const b = Buffer.alloc(align(len));
    u16(b, 0, len);
    u16(b, 2, type);
    payload.copy(b, 4);
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  bytes(type: number, payload: Buffer): this {
    return this.push(type, payload);
  }
  u8(type: number, v: number): this {
    return this.push(type, Buffer.from([v & 0xff]));
  }
  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    u32(b, 0, v);
    return this.push(type, b);
  }
  str(type: number, s: string): this {
    return this.push(type, Buffer.from(s + '\0', 'utf8'));
  }
  ipv4(type: number, addr: string): this {
    const n = parseIp(addr);
    return this.push(type, Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]));
  }
  nest(type: number, build: (a: Attrs) => void, head?: Buffer): this {
    const inner = new Attrs();
    build(inner);
    return this.push(type | NLA_F_NESTED, head ? Buffer.concat([head, inner.buffer()]) : inner.buffer());
  }
  buffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

const align = (n: number) => (n + 3) & ~3;
function u16(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
function u32(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
const r16 = (b: Buffer, off: number) => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off));
const r32 = (b: Buffer, off: number) => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));
const ri32 = (b: Buffer, off: number) => (LE ? b.readInt32LE(off) : b.readInt32BE(off));

/** struct ifinfomsg: family, type, index, flags, change */
function ifinfomsg(o: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b[0] = o.family ?? AF_UNSPEC;
  if (LE) b.writeInt32LE(o.index ?? 0, 4);
  else b.writeInt32BE(o.index ?? 0, 4);
  u32(b, 8, o.flags ?? 0);
  u32(b, 12, o.change ?? 0);
  return b;
}

/** struct ifaddrmsg: family, prefixlen, flags, scope, index */
function ifaddrmsg(o: { prefixlen?: number; index?: number } = {}): Buffer {
  const b = Buffer.alloc(8);
  b[0] = AF_INET;
  b[1] = o.prefixlen ?? 0;
  u32(b, 4, o.index ?? 0);
  return b;
}

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags */
function rtmsg(o: { dstLen?: number; table?: number; protocol?: number; scope?: number; type?: number } = {}): Buffer {
  const b = Buffer.alloc(12);
  b[0] = AF_INET;
  b[1] = o.dstLen ?? 0;
  b[4] = o.table ?? 0;
  b[5] = o.protocol ?? 0;
  b[6] = o.scope ?? 0;
  b[7] = o.type ?? 0;
  return b;
}

/** The attributes in b[start, end), by type (the first of each type). */
export function parseAttrs(b: Buffer, start: number, end: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = start;
  while (off + 4 <= end) {
    const len = r16(b, off);
    if (len < 4 || off + len > end) break;
    const type = r16(b, off + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, b.subarray(off + 4, off + len));
    off += align(len);
  }
  return out;
}

const cstr = (b: Buffer | undefined) => {
  if (!b) return undefined;
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
};
const mac = (b: Buffer | undefined) => (b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : undefined);
const ipOf = (b: Buffer | undefined) => (b && b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined);

function macBytes(s: string): Buffer {
  const parts = s.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new LxrError(`invalid MAC address "${s}"`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

// ---- what comes back ----

export interface Link {
  index: number;
  ifname: string;
  /** MAC address, aa:bb:cc:dd:ee:ff */
  address?: string;
  mtu?: number;
  /** ifindex of the master (a bridge), if enslaved */
  master?: number;
  /** IF_OPER_* as `ip` names it: UP, DOWN, LOWERLAYERDOWN, UNKNOWN, ... */
  operstate: string;
  /** IFF_* bits */
  flags: number;
  /** IFLA_INFO_KIND: bridge, veth, ... (absent for lo and physical devices) */
  kind?: string;
}

/** The IFF_* names of `flags` as `ip link` shows them (NO-CARRIER for up without carrier). */
export function flagNames(flags: number): string[] {
  const out: string[] = [];
  if (flags & IFF_UP && !(flags & IFF_RUNNING)) out.push('NO-CARRIER');
  for (const [bit, name] of FLAG_NAMES) if (flags & bit) out.push(name);
  return out;
}

export interface Address {
  index: number;
  /** the local address */
  address: string;
  prefixlen: number;
}

export interface Route {
  /** "default", or the destination as `ip route` prints it: a.b.c.d for /32, else a.b.c.d/len */
  dst: string;
  dstLen: number;
  table: number;
  /** unicast, local, broadcast, ... */
  type: string;
  oif?: number;
  gateway?: string;
  prefsrc?: string;
  scope: number;
  protocol: number;
}

export interface VethOptions {
  mtu?: number;
  /** enslave the new host end to this bridge (ifindex) */
  master?: number;
  /** the master's name, for messages */
  masterName?: string;
  peer: {
    name: string;
    mtu?: number;
    /** put the peer into this network namespace (path of a netns file, e.g. /run/netns/x) */
    netns?: string;
  };
}

export interface RouteSpec {
  /** "default" or a.b.c.d/len */
  dst: string;
  gateway?: string;
  /** ifindex of the outgoing link */
  oif: number;
}

// ---- the client ----

interface Answer {
  out: [number, Buffer][];
  finished: boolean;
  interrupted: boolean;
}

let hostSocket: Netlink | undefined;

export class Netlink {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly rx = Buffer.alloc(65536);
  private closed = false;

  private constructor(
    private readonly fd: number,
    /** the network namespace this socket works in, for messages: a netns path, or "" for the host's */
    readonly netns: string,
  ) {}

  /** A socket in the host's (our own) network namespace, kept open for the process's life. */
  static host(): Netlink {
    if (!hostSocket || hostSocket.closed) hostSocket = Netlink.open();
    return hostSocket;
  }

  /** A new socket, inside the network namespace at `netns` (a path) or in ours; close() it. */
  static open(netns?: string): Netlink {
    const [fd, step] = native().netlinkOpen(netns ?? null);
    if (fd < 0) {
      const where = netns ? `in network namespace ${netns}` : 'in the host network namespace';
      throw new NetlinkError(`opening a netlink socket ${where}: ${NS_STEP[step] ?? `step ${step}`}`, -fd);
    }
    return new Netlink(fd, netns ?? '');
  }

  /** Run fn with a socket inside the netns at `netns`, closed afterwards. */
  static in<T>(netns: string, fn: (nl: Netlink) => T): T {
    const nl = Netlink.open(netns);
    try {
      return fn(nl);
    } finally {
      nl.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().close(this.fd);
  }

  /** " in /run/netns/x" for messages about things inside a netns, "" on the host */
  private get where(): string {
    return this.netns ? ` in ${this.netns}` : '';
  }

  /**
   * Send one request and collect the answer: for a change, the ack (and nothing); for a GET,
   * the reply; for a dump, every message up to NLMSG_DONE (again from the start if the kernel
   * says the dump was interrupted by a change). Messages are returned as [type, payload].
   */
  request(type: number, flags: number, body: Buffer, what: string): [number, Buffer][] {
    const n = native();
    for (let attempt = 0; ; attempt++) {
      const { msg, seq } = this.message(type, flags, body);
      const sent = n.netlinkSend(this.fd, msg, msg.length);
      if (sent < 0) throw new NetlinkError(`${what}: sending the request`, -sent);
      const answer: Answer = { out: [], finished: false, interrupted: false };
      while (!answer.finished) this.absorb(n.netlinkRecv(this.fd, this.rx), seq, what, answer);
      if (answer.interrupted && attempt < 5) continue;
      return answer.out;
    }
  }

  /**
   * request() for a change, with the waiting on a worker thread: for kernel work that takes
   * long (deleting a link waits for RCU, 20-40 ms) and can overlap with other work. The socket
   * must not be used for anything else meanwhile: use one of its own (Netlink.open()).
   */
  async requestAsync(type: number, flags: number, body: Buffer, what: string): Promise<void> {
    const n = native();
    const { msg, seq } = this.message(type, flags, body);
    const answer: Answer = { out: [], finished: false, interrupted: false };
    const rx = Buffer.alloc(8192); // an ack, and the kernel's text with it
    this.absorb(await n.netlinkTransactAsync(this.fd, msg, rx), seq, what, answer, rx);
    while (!answer.finished) this.absorb(await n.netlinkRecvAsync(this.fd, rx), seq, what, answer, rx);
  }

  private message(type: number, flags: number, body: Buffer): { msg: Buffer; seq: number } {
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
    const msg = Buffer.alloc(16 + body.length);
    u32(msg, 0, msg.length);
    u16(msg, 4, type);
    u16(msg, 6, flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK));
    u32(msg, 8, seq);
    u32(msg, 12, 0);
    body.copy(msg, 16);
    return { msg, seq };
  }

  /** Take in one received datagram (`got` bytes, or -errno) of the answer to request `seq`. */
  private absorb(got: number, seq: number, what: string, answer: Answer, rx = this.rx): void {
    if (got < 0) {
      throw new NetlinkError(`${what}: ${-got === 11 ? 'no answer from the kernel within 10 s' : 'receiving the answer'}`, -got);
    }
    let off = 0;
    while (off + 16 <= got) {
      const len = r32(rx, off);
      if (len < 16 || off + len > got) break;
      const mtype = r16(rx, off + 4);
      const mflags = r16(rx, off + 6);
      const mseq = r32(rx, off + 8);
      const payload = rx.subarray(off + 16, off + len);
      off += align(len);
      if (mseq !== seq) continue; // an answer to an earlier request that was given up on
      if (mflags & NLM_F_DUMP_INTR) answer.interrupted = true;
      if (mtype === NLMSG_ERROR) {
        const err = ri32(payload, 0);
        if (err !== 0) throw new NetlinkError(what, -err, extAckMessage(payload, mflags));
        answer.finished = true; // the ack
        return;
      }
      if (mtype === NLMSG_DONE) {
        const err = payload.length >= 4 ? ri32(payload, 0) : 0;
        if (err < 0) throw new NetlinkError(what, -err, extAckMessage(payload, mflags, 4));
        answer.finished = true;
        return;
      }
      if (mtype === NLMSG_NOOP) continue;
      if (mtype === NLMSG_OVERRUN) throw new NetlinkError(`${what}: the kernel's answer overran the socket buffer`, 105);
      answer.out.push([mtype, Buffer.from(payload)]); // a GET's reply comes before its ack
    }
  }

  // ---- links ----

  /** The link called `name`, or undefined when there is none. */
  getLink(name: string): Link | undefined {
    return this.getLinkBy({ name });
  }

  getLinkByIndex(index: number): Link | undefined {
    return this.getLinkBy({ index });
  }

  private getLinkBy(ref: { name?: string; index?: number }): Link | undefined {
    const a = new Attrs().u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if (ref.name !== undefined) a.str(IFLA_IFNAME, checkIfname(ref.name));
    const what = `looking up link ${ref.name ?? `#${ref.index}`}${this.where}`;
    try {
      const msgs = this.request(RTM_GETLINK, 0, Buffer.concat([ifinfomsg({ index: ref.index ?? 0 }), a.buffer()]), what);
      const m = msgs.find(([t]) => t === RTM_NEWLINK);
      return m ? parseLink(m[1]) : undefined;
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  /** Every link. */
  links(): Link[] {
    const body = Buffer.concat([ifinfomsg(), new Attrs().u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS).buffer()]);
    return this.request(RTM_GETLINK, NLM_F_DUMP, body, `listing links${this.where}`)
      .filter(([t]) => t === RTM_NEWLINK)
      .map(([, p]) => parseLink(p));
  }

  /** Create a bridge (fails with EEXIST if the name is taken). */
  addBridge(name: string, o: { mac?: string; mtu?: number } = {}): void {
    const a = new Attrs().str(IFLA_IFNAME, checkIfname(name));
    if (o.mac) a.bytes(IFLA_ADDRESS, macBytes(o.mac));
    if (o.mtu) a.u32(IFLA_MTU, o.mtu);
    a.nest(IFLA_LINKINFO, (li) => li.str(IFLA_INFO_KIND, 'bridge'));
    this.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([ifinfomsg(), a.buffer()]), `creating bridge ${name}${this.where}`);
  }

  /**
   * Create a veth pair: `name` here, its peer (optionally) directly in another network
   * namespace, so it never shows up in this one.
   */
  addVeth(name: string, o: VethOptions): void {
    checkIfname(name);
    checkIfname(o.peer.name);
    const on = o.master ? ` on bridge ${o.masterName ?? `#${o.master}`}` : '';
    const what = `creating veth ${name} (peer ${o.peer.name}${o.peer.netns ? ` in ${o.peer.netns}` : ''})${on}${this.where}`;
    let nsfd = -1;
    if (o.peer.netns) {
      try {
        nsfd = openSync(o.peer.netns, 'r');
      } catch (e) {
        throw new LxrError(`${what}: opening ${o.peer.netns}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    try {
      const a = new Attrs().str(IFLA_IFNAME, name);
      if (o.mtu) a.u32(IFLA_MTU, o.mtu);
      if (o.master) a.u32(IFLA_MASTER, o.master);
      a.nest(IFLA_LINKINFO, (li) =>
        li.str(IFLA_INFO_KIND, 'veth').nest(IFLA_INFO_DATA, (d) =>
          d.nest(
            VETH_INFO_PEER,
            (p) => {
              p.str(IFLA_IFNAME, o.peer.name);
              if (o.peer.mtu) p.u32(IFLA_MTU, o.peer.mtu);
              if (nsfd >= 0) p.u32(IFLA_NET_NS_FD, nsfd);
            },
            ifinfomsg(), // the peer's own header
          ),
        ),
      );
      this.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([ifinfomsg(), a.buffer()]), what);
    } finally {
      if (nsfd >= 0) closeSync(nsfd);
    }
  }

  /**
   * Change a link (by index, or by name): up/down, master (an ifindex, 0 to release), mtu.
   * `label` names it in errors when given by index.
   */
  setLink(ref: number | string, o: { up?: boolean; master?: number; mtu?: number }, label?: string): void {
    const byName = typeof ref === 'string';
    const a = new Attrs();
    if (byName) a.str(IFLA_IFNAME, checkIfname(ref));
    if (o.master !== undefined) a.u32(IFLA_MASTER, o.master);
    if (o.mtu !== undefined) a.u32(IFLA_MTU, o.mtu);
    const hdr = ifinfomsg({
      index: byName ? 0 : ref,
      flags: o.up ? IFF_UP : 0,
      change: o.up === undefined ? 0 : IFF_UP,
    });
    const name = label ?? (byName ? ref : `#${ref}`);
    const what = [o.up !== undefined ? `setting link ${name}${this.where} ${o.up ? 'up' : 'down'}` : '', o.master !== undefined ? `${o.master ? `enslaving link ${name}${this.where} to bridge #${o.master}` : `releasing link ${name}${this.where}`}` : '', o.mtu !== undefined ? `setting the mtu of ${name}${this.where} to ${o.mtu}` : '']
      .filter(Boolean)
      .join(', ');
    this.request(RTM_NEWLINK, 0, Buffer.concat([hdr, a.buffer()]), what || `changing link ${name}${this.where}`);
  }

  /** Hairpin mode of a bridge port (IFLA_PROTINFO / IFLA_BRPORT_MODE, as `bridge link set hairpin`). */
  setHairpin(index: number, on: boolean, label?: string): void {
    const a = new Attrs().nest(IFLA_PROTINFO, (p) => p.u8(IFLA_BRPORT_MODE, on ? 1 : 0));
    const what = `setting hairpin mode ${on ? 'on' : 'off'} on bridge port ${label ?? `#${index}`}${this.where}`;
    this.request(RTM_SETLINK, 0, Buffer.concat([ifinfomsg({ family: AF_BRIDGE, index }), a.buffer()]), what);
  }

  /** Delete the link called `name`; false when there was none. */
  deleteLink(name: string): boolean {
    const a = new Attrs().str(IFLA_IFNAME, checkIfname(name));
    try {
      this.request(RTM_DELLINK, 0, Buffer.concat([ifinfomsg(), a.buffer()]), `deleting link ${name}${this.where}`);
      return true;
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return false;
      throw e;
    }
  }

  /**
   * deleteLink, waiting on a worker thread: the kernel takes 20-40 ms to delete a link (it
   * waits for RCU callbacks), which other work can overlap. Uses a socket of its own.
   */
  static async deleteLinkAsync(name: string, netns?: string): Promise<boolean> {
    const nl = Netlink.open(netns);
    try {
      const a = new Attrs().str(IFLA_IFNAME, checkIfname(name));
      await nl.requestAsync(RTM_DELLINK, 0, Buffer.concat([ifinfomsg(), a.buffer()]), `deleting link ${name}${nl.where}`);
      return true;
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return false;
      throw e;
    } finally {
      nl.close();
    }
  }

  // ---- addresses ----

  /** Add an IPv4 address ("10.88.0.5/16") to a link (EEXIST if it has it already). */
  addAddress(index: number, cidr: string, label?: string): void {
    const { address, prefixlen } = splitCidr(cidr);
    const a = new Attrs().ipv4(IFA_LOCAL, address).ipv4(IFA_ADDRESS, address);
    const what = `adding address ${cidr} to ${label ?? `link #${index}`}${this.where}`;
    this.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([ifaddrmsg({ prefixlen, index }), a.buffer()]), what);
  }

  /** The IPv4 addresses (of one link when `index` is given). */
  addresses(index?: number): Address[] {
    const out: Address[] = [];
    for (const [t, p] of this.request(RTM_GETADDR, NLM_F_DUMP, ifaddrmsg(), `listing addresses${this.where}`)) {
      if (t !== RTM_NEWADDR || p[0] !== AF_INET) continue;
      const idx = r32(p, 4);
      if (index !== undefined && idx !== index) continue;
      const at = parseAttrs(p, 8, p.length);
      const address = ipOf(at.get(IFA_LOCAL)) ?? ipOf(at.get(IFA_ADDRESS));
      if (address) out.push({ index: idx, address, prefixlen: p[1]! });
    }
    return out;
  }

  // ---- routes ----

  /** Add an IPv4 route in the main table: through a gateway, or on-link (scope link) without one. */
  addRoute(r: RouteSpec, label?: string): void {
    const def = r.dst === 'default' || r.dst === '0.0.0.0/0';
    const { address, prefixlen } = def ? { address: '0.0.0.0', prefixlen: 0 } : splitCidr(r.dst);
    const a = new Attrs();
    if (!def) a.ipv4(RTA_DST, address);
    if (r.gateway) a.ipv4(RTA_GATEWAY, r.gateway);
    a.u32(RTA_OIF, r.oif);
    const hdr = rtmsg({
      dstLen: prefixlen,
      table: RT_TABLE_MAIN,
      protocol: RTPROT_BOOT,
      scope: r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
      type: RTN_UNICAST,
    });
    const what = `adding route ${def ? 'default' : r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${label ?? `#${r.oif}`}${this.where}`;
    this.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([hdr, a.buffer()]), what);
  }

  /** Every IPv4 route of every table (main, local, and any other). */
  routes(): Route[] {
    const out: Route[] = [];
    for (const [t, p] of this.request(RTM_GETROUTE, NLM_F_DUMP, rtmsg(), `listing routes${this.where}`)) {
      if (t !== RTM_NEWROUTE || p[0] !== AF_INET) continue;
      const at = parseAttrs(p, 12, p.length);
      const dstLen = p[1]!;
      const dstIp = ipOf(at.get(RTA_DST));
      const table = at.get(RTA_TABLE) ? r32(at.get(RTA_TABLE)!, 0) : p[4]!;
      out.push({
        dst: dstLen === 0 && !dstIp ? 'default' : dstLen === 32 ? dstIp ?? '0.0.0.0' : `${dstIp ?? '0.0.0.0'}/${dstLen}`,
        dstLen,
        table,
        type: RTN_TYPES[p[7]!] ?? String(p[7]),
        oif: at.get(RTA_OIF) ? r32(at.get(RTA_OIF)!, 0) : undefined,
        gateway: ipOf(at.get(RTA_GATEWAY)),
        prefsrc: ipOf(at.get(RTA_PREFSRC)),
        scope: p[6]!,
        protocol: p[5]!,
      });
    }
    return out;
  }
}

function parseLink(p: Buffer): Link {
  const at = parseAttrs(p, 16, p.length);
  const info = at.get(IFLA_LINKINFO);
  const kind = info ? cstr(parseAttrs(info, 0, info.length).get(IFLA_INFO_KIND)) : undefined;
  const master = at.get(IFLA_MASTER);
  const mtu = at.get(IFLA_MTU);
  const op = at.get(IFLA_OPERSTATE);
  return {
    index: LE ? p.readInt32LE(4) : p.readInt32BE(4),
    ifname: cstr(at.get(IFLA_IFNAME)) ?? '',
    address: mac(at.get(IFLA_ADDRESS)),
    mtu: mtu ? r32(mtu, 0) : undefined,
    master: master ? r32(master, 0) || undefined : undefined,
    operstate: op ? OPERSTATES[op[0]!] ?? String(op[0]) : 'UNKNOWN',
    flags: r32(p, 8),
    kind,
  };
}

/** The kernel's extended-ack text in an NLMSG_ERROR (or NLMSG_DONE) payload, if any. */
function extAckMessage(payload: Buffer, flags: number, errLen = 4): string | undefined {
  if (!(flags & NLM_F_ACK_TLVS)) return undefined;
  let off = errLen;
  if (errLen === 4) {
    // the offending request's header follows the error (all of the request without NLM_F_CAPPED)
    if (payload.length < off + 16) return undefined;
    off += flags & NLM_F_CAPPED ? 16 : align(r32(payload, off));
  }
  return cstr(parseAttrs(payload, off, payload.length).get(NLMSGERR_ATTR_MSG)) || undefined;
}

function checkIfname(name: string): string {
  if (!/^[^\s/:]{1,15}$/.test(name) || name === '.' || name === '..') throw new LxrError(`invalid interface name "${name}"`);
  return name;
}

function splitCidr(cidr: string): { address: string; prefixlen: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || Number(m[2]) > 32) throw new LxrError(`invalid IPv4 address with prefix "${cidr}" (expected e.g. 10.88.0.5/16)`);
  return { address: formatIp(parseIp(m[1]!)), prefixlen: Number(m[2]) };
}
