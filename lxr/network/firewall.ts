// iptables rules of lxr's networks. Every rule lives in one of lxr's own chains and carries
// a comment tag "<owner>:<network>:<containerId>", so removal is exact (by tag) and adding a
// container's rules again first removes its old ones (never duplicated).
//
//   nat    LXR-HOSTPORTS    <- PREROUTING and OUTPUT (-m addrtype --dst-type LOCAL): DNAT of published ports
//   nat    LXR-POSTROUTING  <- POSTROUTING: outbound masquerade, hairpin and 127.0.0.1 masquerade
//   filter LXR-FORWARD      <- FORWARD: accept container traffic even if the FORWARD policy is DROP
//
// Debian 12's iptables is iptables-nft, so these rules are nftables rules underneath.
import { LxrError } from '../../runtime/errors.js';
import { must, run, withLockSync } from './sys.js';

export const LOCK_PATH = '/run/lxr/network/iptables.lock';

export type Table = 'nat' | 'filter';
export interface Rule {
  table: Table;
  chain: string;
  args: string[];
}

const CHAINS: { table: Table; chain: string; from: { chain: string; args: string[] }[] }[] = [
  {
    table: 'nat',
    chain: 'LXR-HOSTPORTS',
    from: [
      { chain: 'PREROUTING', args: ['-m', 'addrtype', '--dst-type', 'LOCAL'] },
      { chain: 'OUTPUT', args: ['-m', 'addrtype', '--dst-type', 'LOCAL'] },
    ],
  },
  { table: 'nat', chain: 'LXR-POSTROUTING', from: [{ chain: 'POSTROUTING', args: [] }] },
  { table: 'filter', chain: 'LXR-FORWARD', from: [{ chain: 'FORWARD', args: [] }] },
];

function ipt(table: Table, ...args: string[]): string {
  return must('iptables', ['-w', '-t', table, ...args]);
}

function ensureChainsLocked(): void {
  for (const c of CHAINS) {
    if (run('iptables', ['-w', '-t', c.table, '-S', c.chain]).status !== 0) {
      const r = run('iptables', ['-w', '-t', c.table, '-N', c.chain]);
      if (r.status !== 0 && !/exists/i.test(r.stderr)) throw new LxrError(`iptables -t ${c.table} -N ${c.chain}: ${r.stderr.trim()}`);
    }
    for (const f of c.from) {
      const spec = [...f.args, '-j', c.chain];
      if (run('iptables', ['-w', '-t', c.table, '-C', f.chain, ...spec]).status !== 0) {
        ipt(c.table, '-I', f.chain, '1', ...spec);
      }
    }
  }
}

/** Split one line of `iptables -S` output into arguments (handles "quoted strings"). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  return out;
}

export interface ListedRule {
  table: Table;
  chain: string;
  /** 1-based position in the chain */
  index: number;
  args: string[];
  tag?: string;
}

/** The rules of lxr's chains, with their tags. */
export function listRules(): ListedRule[] {
  const out: ListedRule[] = [];
  for (const c of CHAINS) {
    const r = run('iptables', ['-w', '-t', c.table, '-S', c.chain]);
    if (r.status !== 0) continue;
    let index = 0;
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('-A ')) continue;
      index++;
      const args = splitRule(line).slice(2);
      const ci = args.indexOf('--comment');
      out.push({ table: c.table, chain: c.chain, index, args, tag: ci >= 0 ? args[ci + 1] : undefined });
    }
  }
  return out;
}

function removeLocked(match: (tag: string) => boolean): number {
  const doomed = listRules().filter((r) => r.tag !== undefined && match(r.tag));
  // Highest index first, so the positions of the remaining ones stay valid.
  doomed.sort((a, b) => (a.table + a.chain).localeCompare(b.table + b.chain) || b.index - a.index);
  for (const r of doomed) ipt(r.table, '-D', r.chain, String(r.index));
  return doomed.length;
}

export function ruleTag(owner: string, network: string, containerId: string): string {
  return `${owner}:${network}:${containerId}`;
}

/**
 * Replace all rules tagged `tag` by `rules` (each gets the tag as its comment). `precheck`
 * runs under the same lock first (e.g. "is this host port mapped by someone else?"), so two
 * concurrent ADDs cannot both pass it.
 */
export function setRules(tag: string, rules: Rule[], precheck?: () => void): void {
  if (tag.length > 255) throw new LxrError(`rule tag ${tag} is too long`);
  withLockSync(LOCK_PATH, () => {
    ensureChainsLocked();
    precheck?.();
    removeLocked((t) => t === tag);
    for (const r of rules) ipt(r.table, '-A', r.chain, ...r.args, '-m', 'comment', '--comment', tag);
  });
}

/** Remove every rule tagged `tag`. Returns how many were removed. */
export function removeRules(tag: string): number {
  return withLockSync(LOCK_PATH, () => removeLocked((t) => t === tag));
}

/** Remove every rule whose tag satisfies `match` (used by GC). */
export function removeRulesWhere(match: (tag: string) => boolean): number {
  return withLockSync(LOCK_PATH, () => removeLocked(match));
}

/** Tags currently present, e.g. to find rules of containers that are gone. */
export function ruleTags(): Set<string> {
  return new Set(listRules().flatMap((r) => (r.tag ? [r.tag] : [])));
}
