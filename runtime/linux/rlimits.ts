// process.rlimits (config.md "POSIX process"): names to resource numbers, and the check
// that a hard limit can really be raised before the container is made.
import { readFileSync } from 'node:fs';
import type { Rlimit } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const LIMITS_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU', 'Max file size': 'RLIMIT_FSIZE', 'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK', 'Max core file size': 'RLIMIT_CORE', 'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC', 'Max open files': 'RLIMIT_NOFILE', 'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS', 'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE', 'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

const UNLIMITED = 0xffffffffffffffffn;

/** The hard limits this process has now (what the child inherits). */
export function currentHardLimits(): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
    const name = Object.keys(LIMITS_NAMES).find((k) => line.startsWith(k));
    if (!name) continue;
    const fields = line.slice(name.length).trim().split(/\s+/);
    const hard = fields[1]!;
    out[LIMITS_NAMES[name]!] = hard === 'unlimited' ? UNLIMITED : BigInt(hard);
  }
  return out;
}

export function hasCapSysResource(): boolean {
  const m = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return !!m && ((BigInt('0x' + m[1]) >> 24n) & 1n) === 1n;
}

export interface RlimitStep {
  resource: number;
  soft: bigint;
  hard: bigint;
  where: string;
}

/**
 * Check every rlimit up front. Raising a hard limit needs CAP_SYS_RESOURCE; where this
 * process lacks it (some hosts drop it from the bounding set), the kernel would refuse
 * with EPERM half-way through create, so say which entry asks for too much instead.
 */
export function planRlimits(rlimits: Rlimit[] | undefined): RlimitStep[] {
  if (!rlimits?.length) return [];
  const hard = currentHardLimits();
  const canRaise = hasCapSysResource();
  const seen = new Set<string>();
  return rlimits.map((r, i) => {
    const where = `process.rlimits[${i}]`;
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new LxrError(`${where}.type: unknown rlimit "${r.type}"`);
    if (seen.has(r.type)) throw new LxrError(`${where}.type: rlimit "${r.type}" is set twice`);
    seen.add(r.type);
    // 18446744073709551615 (RLIM_INFINITY) comes out of JSON.parse as 2^64: clamp it
    const clamp = (n: number) => (BigInt(n) > UNLIMITED ? UNLIMITED : BigInt(n));
    const soft = clamp(r.soft);
    const h = clamp(r.hard);
    if (soft > h) throw new LxrError(`${where}: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    const cur = hard[r.type];
    if (!canRaise && cur !== undefined && h > cur) {
      throw new LxrError(
        `${where}: hard limit ${r.hard} for ${r.type} is above the current hard limit ${cur === UNLIMITED ? 'unlimited' : cur}, and this host does not grant CAP_SYS_RESOURCE to raise it`,
      );
    }
    return { resource, soft, hard: h, where };
  });
}
