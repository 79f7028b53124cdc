// iptables rules of lxr's networks. Every rule lives in one of lxr's own chains and carries
// a comment tag "<owner>:<network>:<containerId>", so removal is exact (by tag) and adding a
// container's rules again first removes its old ones (never duplicated).
//
//   nat    LXR-HOSTPORTS    <- PREROUTING and OUTPUT (-m addrtype --dst-type LOCAL): DNAT of published ports
//   nat    LXR-POSTROUTING  <- POSTROUTING: outbound masquerade, hairpin and 127.0.0.1 masquerade
//   filter LXR-FORWARD      <- FORWARD: accept container traffic even if the FORWARD policy is DROP
//   filter LXR-INPUT        <- INPUT: drop what a bridge sends to 127.0.0.0/8 that is not a published port's
//                              (made with its first rule: route_localnet is set only with published ports)
//
// Each iptables process costs a few milliseconds, and a container start used to run ~15 of
// them. So the state is read with one `iptables-save` (all tables at once) and every change
// of one call is written with one `iptables-restore --noflush`, whose input is built here:
// the chains that are missing, the jumps that are missing, `-D` of the tag's old rules, `-A`
// of the new ones. Both run under LOCK_PATH, so concurrent lxr processes see each other's
// changes whole. Debian 12's iptables is iptables-nft, so these rules are nftables rules
// underneath; the same text works with iptables-legacy.
import { LxrError } from '../../common/errors.js';
import { run, type RunResult } from './sys.js';
import { withExclusiveLockSync } from '../../native/lock.js';

export const LOCK_PATH = '/run/lxr/network/iptables.lock';

export type Table = 'nat' | 'filter';
export interface Rule {
  table: Table;
  chain: string;
  args: string[];
}

const CHAINS: { table: Table; chain: string; from: { chain: string; args: string[] }[]; lazy?: boolean }[] = [
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
  { table: 'filter', chain: 'LXR-INPUT', from: [{ chain: 'INPUT', args: [] }], lazy: true },
];

/** Split one line of `iptables -S` / `iptables-save` output into arguments (handles "quoted strings"). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  return out;
}

/**
 * One argument as iptables-restore reads it back (the inverse of splitRule). Its parser splits
 * on blanks, and inside "..." a backslash takes the next character literally; a line break
 * cannot be expressed at all, since the input is read line by line.
 */
function quoteArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new LxrError(`iptables argument ${JSON.stringify(arg)} contains a line break`);
  if (/^[\w\-.:/,!+=@%]+$/.test(arg)) return arg;
  return `"${arg.replace(/["\\]/g, '\\$&')}"`;
}

function quoteArgs(args: string[]): string {
  return args.map(quoteArg).join(' ');
}

// ---- reading the state: one iptables-save ----

interface SavedRule {
  chain: string;
  /** 1-based position in the chain */
  index: number;
  args: string[];
  /** the rule as iptables-save printed it, after "-A <chain> ": given back verbatim to -D */
  spec: string;
  tag?: string;
}

interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

/** The tables as iptables-save printed them; a table that does not exist yet is absent. */
type Snapshot = Map<string, SavedTable>;

function parseSave(text: string): Snapshot {
  const snap: Snapshot = new Map();
  let cur: SavedTable | undefined;
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: [] };
      snap.set(line.slice(1).trim(), cur);
      counts.clear();
    } else if (!cur) {
      continue;
    } else if (line.startsWith(':')) {
      cur.chains.add(line.slice(1).split(' ')[0]);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1];
      const spec = line.slice(`-A ${chain}`.length).trim();
      const args = splitRule(spec);
      const index = (counts.get(chain) ?? 0) + 1;
      counts.set(chain, index);
      const ci = args.indexOf('--comment');
      cur.rules.push({ chain, index, args, spec, tag: ci >= 0 ? args[ci + 1] : undefined });
    }
  }
  return snap;
}

function save(): Snapshot {
  const r = run('iptables-save', []);
  if (r.status !== 0) throw new LxrError(`iptables-save: ${reasonOf(r)}`);
  return parseSave(r.stdout);
}

/** The snapshot setRules took under the lock, while its precheck runs (which may call listRules). */
let held: Snapshot | undefined;

const EMPTY: SavedTable = { chains: new Set(), rules: [] };

function tableOf(snap: Snapshot, table: string): SavedTable {
  return snap.get(table) ?? EMPTY;
}

function hasJump(snap: Snapshot, table: Table, from: string, spec: string[]): boolean {
  return tableOf(snap, table).rules.some((r) => r.chain === from && sameArgs(r.args, spec));
}

function sameArgs(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The rules of lxr's chains in `snap`, in CHAINS order, as listRules reports them. */
function lxrRules(snap: Snapshot): (SavedRule & { table: Table })[] {
  return CHAINS.flatMap((c) => tableOf(snap, c.table).rules.filter((r) => r.chain === c.chain).map((r) => ({ ...r, table: c.table })));
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
  return lxrRules(held ?? save()).map((r) => ({ table: r.table, chain: r.chain, index: r.index, args: r.args, tag: r.tag }));
}

// ---- writing: one iptables-restore ----

/** One change of a call: one line of its iptables-restore input (described for errors, and undone if need be). */
type Op =
  | { kind: 'chain'; table: Table; chain: string }
  | { kind: 'jump'; table: Table; chain: string; target: string; spec: string }
  | { kind: 'delete'; table: Table; chain: string; index: number; spec: string; tag: string }
  | { kind: 'append'; table: Table; chain: string; spec: string; tag: string };

function lineOf(op: Op): string {
  switch (op.kind) {
    case 'chain':
      return `:${op.chain} - [0:0]`;
    case 'jump':
      return `-I ${op.chain} 1 ${op.spec}`;
    case 'delete':
    case 'append':
      return `${op.kind === 'delete' ? '-D' : '-A'} ${op.chain} ${op.spec}`;
  }
}

function describe(op: Op): string {
  switch (op.kind) {
    case 'chain':
      return `creating chain ${op.chain} in table ${op.table}`;
    case 'jump':
      return `adding the jump from ${op.table} ${op.chain} to ${op.target}`;
    case 'delete':
      return `removing rule ${op.index} of ${op.tag} from ${op.table} ${op.chain}`;
    case 'append':
      return `adding a rule of ${op.tag} to ${op.table} ${op.chain}`;
  }
}

/**
 * What puts a table back after its part of the transaction was committed: the new rules
 * deleted, the old ones inserted again at their positions (ascending, so each position is
 * right when it is used), then the jumps and chains that were created removed.
 */
function undoOps(ops: Op[]): string[] {
  const appends = ops.flatMap((o) => (o.kind === 'append' ? [`-D ${o.chain} ${o.spec}`] : []));
  const deletes = ops.flatMap((o) => (o.kind === 'delete' ? [o] : [])).sort((a, b) => a.index - b.index);
  const jumps = ops.flatMap((o) => (o.kind === 'jump' ? [`-D ${o.chain} ${o.spec}`] : []));
  const chains = ops.flatMap((o) => (o.kind === 'chain' ? [`-X ${o.chain}`] : []));
  return [...appends, ...deletes.map((o) => `-I ${o.chain} ${o.index} ${o.spec}`), ...jumps, ...chains];
}

/** One line of iptables-restore input, and what it does (for the error that names it). */
interface Line {
  kind: 'table' | 'rule' | 'commit';
  table: string;
  text: string;
  what: string;
}

interface Script {
  text: string;
  /** line N of `text` is lines[N - 1] */
  lines: Line[];
  tables: string[];
}

/** `*table`, its lines, `COMMIT`, per table (nat before filter, as iptables-save orders them too). */
function script(body: Line[]): Script {
  const order = [...new Set(['nat', 'filter', ...body.map((l) => l.table)])];
  const lines: Line[] = [];
  const tables: string[] = [];
  for (const table of order) {
    const mine = body.filter((l) => l.table === table);
    if (mine.length === 0) continue;
    tables.push(table);
    lines.push({ kind: 'table', table, text: `*${table}`, what: `starting table ${table}` }, ...mine, { kind: 'commit', table, text: 'COMMIT', what: `committing table ${table}` });
  }
  return { text: lines.map((l) => l.text).join('\n') + '\n', lines, tables };
}

function opLine(op: Op): Line {
  const text = lineOf(op);
  return { kind: 'rule', table: op.table, text, what: `${describe(op)} (${text})` };
}

function restore(text: string): RunResult {
  return run('iptables-restore', ['--noflush', '-w'], text);
}

/** iptables-restore's complaint without its banner and usage hints. */
function reasonOf(r: RunResult): string {
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('Try `') && !/^Error occurred at line/.test(l))
    .map((l) => l.replace(/^iptables-(?:restore|save)(?: v[\d.]+)?(?: \([^)]*\))?:\s*/, '').replace(/^line \d+ failed:?\s*/, ''));
  return lines.map((l) => l.replace(/\.$/, '')).join('; ') || `exit status ${r.status}`;
}

/**
 * The line iptables-restore failed at ("line N failed: ..." or "Error occurred at line: N").
 * iptables-nft checks some things only when it commits the table (a -j to a chain that does
 * not exist), and then points at COMMIT: the culprit is the line of that table that has the
 * name the error quotes.
 */
function failedLine(s: Script, r: RunResult, reason: string): Line | undefined {
  const n = /line:? (\d+)/.exec(r.stderr);
  const line = n ? s.lines[Number(n[1]) - 1] : undefined;
  if (line?.kind !== 'commit') return line;
  const names = [...reason.matchAll(/['`]([^'`]+)'/g)].map((m) => m[1]);
  return s.lines.find((l) => l.kind === 'rule' && l.table === line.table && splitRule(l.text).some((w) => names.includes(w))) ?? line;
}

/**
 * Apply `ops` in one iptables-restore. It commits table by table, so when a later table
 * fails the earlier ones are already in: those are found (their chains no longer look like
 * `before`) and undone, so a failed call changes nothing. The error names the failing line.
 */
function applyLocked(before: Snapshot, ops: Op[]): void {
  if (ops.length === 0) return;
  const s = script(ops.map(opLine));
  const r = restore(s.text);
  if (r.status === 0) return;
  const reason = reasonOf(r);
  const where = failedLine(s, r, reason);
  let msg = `iptables-restore failed${where ? ` while ${where.what}` : ''}: ${reason}`;
  try {
    const undone = undoCommitted(before, ops, s.tables);
    msg += undone.length ? ` (undid what was applied to table ${undone.join(' and ')}; no rule changed)` : ' (no rule changed)';
  } catch (e) {
    msg += `; undoing what was applied failed too, the rules may be half-changed: ${(e as Error).message}`;
  }
  throw new LxrError(msg);
}

/** The chains `ops` touch in `table`, as `snap` has them: what tells whether that table changed. */
function fingerprint(snap: Snapshot, table: string, ops: Op[]): string {
  const t = tableOf(snap, table);
  const chains = [...new Set(ops.filter((o) => o.table === table).map((o) => o.chain))].sort();
  return JSON.stringify(chains.map((c) => [c, t.chains.has(c), t.rules.filter((r) => r.chain === c).map((r) => r.spec)]));
}

/** Undo the tables of a failed restore that were committed anyway; returns their names. */
function undoCommitted(before: Snapshot, ops: Op[], tables: string[]): string[] {
  const now = save();
  const changed = tables.filter((t) => fingerprint(now, t, ops) !== fingerprint(before, t, ops));
  if (changed.length === 0) return [];
  const s = script(changed.flatMap((table) => undoOps(ops.filter((o) => o.table === table)).map((text): Line => ({ kind: 'rule', table, text, what: `undoing with "${text}"` }))));
  const r = restore(s.text);
  if (r.status !== 0) {
    const reason = reasonOf(r);
    const where = failedLine(s, r, reason);
    throw new LxrError(`${where ? `${where.what}: ` : ''}${reason}`);
  }
  return changed;
}

/** The chains and jumps that `snap` lacks (a lazy chain only once a rule goes into it). */
function ensureOps(snap: Snapshot, rules: Rule[] = []): Op[] {
  const ops: Op[] = [];
  const chains = CHAINS.filter((c) => !c.lazy || rules.some((r) => r.table === c.table && r.chain === c.chain));
  for (const c of chains) {
    if (!tableOf(snap, c.table).chains.has(c.chain)) ops.push({ kind: 'chain', table: c.table, chain: c.chain });
  }
  for (const c of chains) {
    for (const f of c.from) {
      const spec = [...f.args, '-j', c.chain];
      if (!hasJump(snap, c.table, f.chain, spec)) ops.push({ kind: 'jump', table: c.table, chain: f.chain, target: c.chain, spec: quoteArgs(spec) });
    }
  }
  return ops;
}

/**
 * `-D` of every tagged rule of lxr's chains whose tag satisfies `match`, by its rule spec as
 * iptables-save printed it. A spec names the rule itself, while a position is only right as
 * long as nothing else changed the chain since it was read; and a rule listed twice is
 * deleted twice (-D takes the first match each time).
 */
function removeOps(snap: Snapshot, match: (tag: string) => boolean): Op[] {
  return lxrRules(snap).flatMap((r): Op[] =>
    r.tag !== undefined && match(r.tag) ? [{ kind: 'delete', table: r.table, chain: r.chain, index: r.index, spec: r.spec, tag: r.tag }] : [],
  );
}

/**
 * Called under the lock before rules are removed, with the rules that go and the rules of
 * lxr's chains that stay: what depends on the rules (a sysctl) can follow them atomically.
 */
export type BeforeRemove = (removed: ListedRule[], left: ListedRule[]) => void;

function removeLocked(match: (tag: string) => boolean, before?: BeforeRemove): number {
  const snap = save();
  const ops = removeOps(snap, match);
  if (before) {
    const listed = lxrRules(snap).map((r) => ({ table: r.table, chain: r.chain, index: r.index, args: r.args, tag: r.tag }));
    const goes = (r: ListedRule) => r.tag !== undefined && match(r.tag);
    before(listed.filter(goes), listed.filter((r) => !goes(r)));
  }
  applyLocked(snap, ops);
  return ops.length;
}

export function ruleTag(owner: string, network: string, containerId: string): string {
  return `${owner}:${network}:${containerId}`;
}

/**
 * Replace all rules tagged `tag` by `rules` (each gets the tag as its comment). `precheck`
 * runs under the same lock first (e.g. "is this host port mapped by someone else?"), so two
 * concurrent ADDs cannot both pass it; if it throws, nothing is changed.
 */
export function setRules(tag: string, rules: Rule[], precheck?: () => void): void {
  if (tag.length > 255) throw new LxrError(`rule tag ${tag} is too long`);
  withExclusiveLockSync(LOCK_PATH, () => {
    const snap = save();
    held = snap;
    try {
      precheck?.();
    } finally {
      held = undefined;
    }
    const adds = rules.map((r): Op => ({ kind: 'append', table: r.table, chain: r.chain, spec: quoteArgs([...r.args, '-m', 'comment', '--comment', tag]), tag }));
    applyLocked(snap, [...ensureOps(snap, rules), ...removeOps(snap, (t) => t === tag), ...adds]);
  });
}

/** Remove every rule tagged `tag`. Returns how many were removed. */
export function removeRules(tag: string, before?: BeforeRemove): number {
  return withExclusiveLockSync(LOCK_PATH, () => removeLocked((t) => t === tag, before));
}

/** Remove every rule whose tag satisfies `match` (used by GC). */
export function removeRulesWhere(match: (tag: string) => boolean, before?: BeforeRemove): number {
  return withExclusiveLockSync(LOCK_PATH, () => removeLocked(match, before));
}

/** Tags currently present, e.g. to find rules of containers that are gone. */
export function ruleTags(): Set<string> {
  return new Set(listRules().flatMap((r) => (r.tag ? [r.tag] : [])));
}
