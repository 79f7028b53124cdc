// The address store of lxr's IPAM: one JSON file of leases per network, changed only under
// an exclusive flock and written atomically, so concurrent ADDs never hand out the same
// address and leases survive restarts (they live on disk, by default under /var/lib/lxr).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withExclusiveLockSync } from '../../../native/lock.js';
import { broadcast, contains, formatIp, parseIp, parseSubnet, type Subnet } from '../ipv4.js';
import { CniError, ERR } from '../cni/types.js';
import { writeFileAtomic } from '../../../common/atomic.js';

export const DEFAULT_IPAM_DIR = '/var/lib/lxr/ipam';

export interface Lease {
  containerId: string;
  ifname: string;
}

interface LeaseFile {
  version: 1;
  /** the last address handed out: allocation continues after it, so a freed address is not reused at once */
  last?: string;
  leases: Record<string, Lease>;
}

export interface Pool {
  subnet: Subnet;
  gateway: number;
  first: number;
  last: number;
}

/** The pool described by an ipam section: subnet, gateway (default: first host), rangeStart/rangeEnd. */
export function poolFromConfig(ipam: Record<string, unknown>): Pool {
  if (typeof ipam.subnet !== 'string') throw new CniError(ERR.invalidConfig, 'ipam: "subnet" is required (e.g. "10.88.0.0/16")');
  let subnet: Subnet;
  try {
    subnet = parseSubnet(ipam.subnet);
  } catch (e) {
    throw new CniError(ERR.invalidConfig, `ipam: ${(e as Error).message}`);
  }
  if (subnet.prefix > 30) throw new CniError(ERR.invalidConfig, `ipam: subnet ${ipam.subnet} is too small to allocate from`);
  const ipOf = (k: string, dflt: number): number => {
    const v = ipam[k];
    if (v === undefined) return dflt;
    let n: number;
    try {
      n = parseIp(String(v));
    } catch (e) {
      throw new CniError(ERR.invalidConfig, `ipam: ${k}: ${(e as Error).message}`);
    }
    if (!contains(subnet, n)) throw new CniError(ERR.invalidConfig, `ipam: ${k} ${String(v)} is outside subnet ${ipam.subnet}`);
    return n;
  };
  const gateway = ipOf('gateway', subnet.base + 1);
  const first = ipOf('rangeStart', subnet.base + 1);
  const last = ipOf('rangeEnd', broadcast(subnet) - 1);
  if (first > last) throw new CniError(ERR.invalidConfig, `ipam: rangeStart is after rangeEnd`);
  return { subnet, gateway, first, last };
}

export class LeaseStore {
  readonly dir: string;
  constructor(dataDir: string, network: string) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(network)) throw new CniError(ERR.invalidConfig, `invalid network name "${network}"`);
    this.dir = join(dataDir, network);
  }

  private get file(): string {
    return join(this.dir, 'leases.json');
  }

  private read(): LeaseFile {
    if (!existsSync(this.file)) return { version: 1, leases: {} };
    try {
      const f = JSON.parse(readFileSync(this.file, 'utf8')) as LeaseFile;
      return { version: 1, last: f.last, leases: f.leases ?? {} };
    } catch (e) {
      throw new CniError(ERR.io, `lease file ${this.file} is corrupt: ${(e as Error).message}`);
    }
  }

  private write(f: LeaseFile): void {
    writeFileAtomic(this.file, JSON.stringify(f, null, 2) + '\n', { mode: 0o600, mkdir: true });
  }

  private locked<T>(fn: () => T): T {
    return withExclusiveLockSync(join(this.dir, 'lock'), fn);
  }

  /** Lease an address for (containerId, ifname); returns the existing lease if it has one. */
  allocate(pool: Pool, containerId: string, ifname: string): number {
    return this.locked(() => {
      const f = this.read();
      for (const [addr, l] of Object.entries(f.leases)) {
        if (l.containerId === containerId && l.ifname === ifname) return parseIp(addr);
      }
      const size = pool.last - pool.first + 1;
      let start = f.last ? parseIp(f.last) + 1 : pool.first;
      if (start < pool.first || start > pool.last) start = pool.first;
      for (let i = 0; i < size; i++) {
        const n = pool.first + ((start - pool.first + i) % size);
        if (n === pool.gateway || n === pool.subnet.base || n === broadcast(pool.subnet)) continue;
        const a = formatIp(n);
        if (f.leases[a]) continue;
        f.leases[a] = { containerId, ifname };
        f.last = a;
        this.write(f);
        return n;
      }
      throw new CniError(ERR.poolExhausted, `no free address left in ${formatIp(pool.first)}-${formatIp(pool.last)}`);
    });
  }

  /** Release the lease(s) of (containerId, ifname). Missing leases are fine. */
  release(containerId: string, ifname: string): void {
    this.locked(() => {
      const f = this.read();
      let changed = false;
      for (const [addr, l] of Object.entries(f.leases)) {
        if (l.containerId === containerId && l.ifname === ifname) {
          delete f.leases[addr];
          changed = true;
        }
      }
      if (changed) this.write(f);
    });
  }

  /** Keep only the leases of the given attachments. Returns the released addresses. */
  retainOnly(valid: { containerID: string; ifname: string }[]): string[] {
    return this.locked(() => {
      const f = this.read();
      const keep = new Set(valid.map((v) => `${v.containerID}\u0000${v.ifname}`));
      const gone: string[] = [];
      for (const [addr, l] of Object.entries(f.leases)) {
        if (!keep.has(`${l.containerId}\u0000${l.ifname}`)) {
          delete f.leases[addr];
          gone.push(addr);
        }
      }
      if (gone.length) this.write(f);
      return gone;
    });
  }

  lookup(containerId: string, ifname: string): string | undefined {
    const f = this.read();
    return Object.entries(f.leases).find(([, l]) => l.containerId === containerId && l.ifname === ifname)?.[0];
  }

  all(): Record<string, Lease> {
    return this.read().leases;
  }
}
