// --format for inspect, ps, version, info, volume and events: the subset of Go's text/template
// that scripts and tools (the Dev Containers CLI among them) write for docker and podman:
//   {{.Field.Sub}}  {{json .X}}  {{index .Map "key"}}  {{join .List ","}}  {{upper .X}} {{lower .X}}
//   {{range .List}}...{{end}}  {{if .X}}...{{else}}...{{end}}  {{println}}  "{{-" / "-}}" trimming
// Missing fields print "<no value>", as Go's templates do for maps. "json" alone means the
// value as JSON (docker's `--format json`).
import { LxrError } from '../../common/errors.js';

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; expr: string }
  | { kind: 'range'; expr: string; body: Node[]; otherwise: Node[] }
  | { kind: 'if'; expr: string; body: Node[]; otherwise: Node[] };

function tokenize(tpl: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  while (i < tpl.length) {
    const open = tpl.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: tpl.slice(i) });
      break;
    }
    let text = tpl.slice(i, open);
    const close = tpl.indexOf('}}', open + 2);
    if (close < 0) throw new LxrError(`--format ${tpl}: unclosed action at offset ${open}`);
    let inner = tpl.slice(open + 2, close);
    if (inner.startsWith('-')) {
      text = text.trimEnd();
      inner = inner.slice(1);
    }
    let next = close + 2;
    if (inner.endsWith('-')) {
      inner = inner.slice(0, -1);
      while (next < tpl.length && /\s/.test(tpl[next]!)) next++;
    }
    if (text) out.push({ text });
    out.push({ action: inner.trim() });
    i = next;
  }
  return out;
}

function parse(tpl: string): Node[] {
  const toks = tokenize(tpl);
  let pos = 0;
  const block = (inside: boolean): { body: Node[]; otherwise: Node[] } => {
    const body: Node[] = [];
    const otherwise: Node[] = [];
    let cur = body;
    while (pos < toks.length) {
      const t = toks[pos++]!;
      if ('text' in t) {
        cur.push({ kind: 'text', text: t.text });
        continue;
      }
      const a = t.action;
      if (a === 'end') {
        if (!inside) throw new LxrError(`--format ${tpl}: {{end}} without {{range}} or {{if}}`);
        return { body, otherwise };
      }
      if (a === 'else') {
        if (!inside) throw new LxrError(`--format ${tpl}: {{else}} without {{range}} or {{if}}`);
        cur = otherwise;
        continue;
      }
      const m = /^(range|if)\s+(.+)$/.exec(a);
      if (m) {
        const b = block(true);
        cur.push({ kind: m[1] as 'range' | 'if', expr: m[2]!, ...b });
        continue;
      }
      if (a.startsWith('/*')) continue;
      cur.push({ kind: 'action', expr: a });
    }
    if (inside) throw new LxrError(`--format ${tpl}: missing {{end}}`);
    return { body, otherwise };
  };
  return block(false).body;
}

const NO_VALUE = Symbol('no value');

function field(dot: unknown, path: string): unknown {
  if (path === '.') return dot;
  let v: unknown = dot;
  for (const k of path.slice(1).split('.')) {
    if (v === null || typeof v !== 'object' || !(k in (v as object))) return NO_VALUE;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** Arguments: .Path, "string", number, or a parenthesised pipeline. */
function args(s: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\([^)]*\)|[^\s]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1]!);
  return out;
}

function evalExpr(expr: string, dot: unknown, tpl: string): unknown {
  // a pipeline "A | json": the left side's value is the right side's last argument
  const stages = expr.split(/\s\|\s/);
  let piped: unknown = NO_VALUE;
  for (const stage of stages) {
    const parts = args(stage.trim());
    const val = (a: string): unknown => {
      if (a.startsWith('.') || a === '$') return field(dot, a === '$' ? '.' : a);
      if (a.startsWith('"')) return JSON.parse(a);
      if (a.startsWith('`')) return a.slice(1, -1);
      if (a.startsWith('(')) return evalExpr(a.slice(1, -1), dot, tpl);
      if (/^-?\d+$/.test(a)) return Number(a);
      throw new LxrError(`--format ${tpl}: unknown function or value "${a}"`);
    };
    const [head, ...rest] = parts;
    if (head === undefined) throw new LxrError(`--format ${tpl}: empty action`);
    const vals = rest.map(val);
    if (piped !== NO_VALUE) vals.push(piped);
    switch (head) {
      case 'json':
        piped = JSON.stringify(vals[0] === NO_VALUE ? null : vals[0]) ?? 'null';
        break;
      case 'index': {
        let v = vals[0];
        for (const k of vals.slice(1)) {
          if (v === null || typeof v !== 'object') return NO_VALUE;
          v = (v as Record<string, unknown>)[String(k)];
          if (v === undefined) return '';
        }
        piped = v;
        break;
      }
      case 'join':
        piped = Array.isArray(vals[0]) ? (vals[0] as unknown[]).map(String).join(String(vals[1] ?? '')) : '';
        break;
      case 'upper':
        piped = show(vals[0]).toUpperCase();
        break;
      case 'lower':
        piped = show(vals[0]).toLowerCase();
        break;
      case 'println':
        piped = `${vals.map(show).join(' ')}\n`;
        break;
      case 'len':
        piped = Array.isArray(vals[0]) ? vals[0].length : vals[0] && typeof vals[0] === 'object' ? Object.keys(vals[0]).length : String(vals[0] ?? '').length;
        break;
      default:
        if (rest.length || piped !== NO_VALUE) throw new LxrError(`--format ${tpl}: unknown function "${head}" (known: json, index, join, upper, lower, println, len)`);
        piped = val(head);
    }
  }
  return piped;
}

/** A value as Go's templates print it. */
function show(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => `${k}:${show(x)}`).join(' ')}]`;
  return String(v);
}

const truthy = (v: unknown): boolean =>
  !(v === NO_VALUE || v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0));

function run(nodes: Node[], dot: unknown, tpl: string): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'action') out += show(evalExpr(n.expr, dot, tpl));
    else if (n.kind === 'if') out += run(truthy(evalExpr(n.expr, dot, tpl)) ? n.body : n.otherwise, dot, tpl);
    else {
      const v = evalExpr(n.expr, dot, tpl);
      const items = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => (v as Record<string, unknown>)[k]) : [];
      if (!items.length) out += run(n.otherwise, dot, tpl);
      for (const item of items) out += run(n.body, item, tpl);
    }
  }
  return out;
}

/** A compiled --format: call it with each object; "json" gives the object as one JSON line. */
export function compileFormat(tpl: string): (dot: unknown) => string {
  if (tpl === 'json') return (dot) => JSON.stringify(dot);
  const nodes = parse(tpl.replace(/\\n/g, '\n').replace(/\\t/g, '\t'));
  return (dot) => run(nodes, dot, tpl);
}

/** Render each item with --format, one per line (as docker prints them). */
export function formatEach(tpl: string, items: unknown[]): string {
  const f = compileFormat(tpl);
  return items.map((i) => `${f(i)}\n`).join('');
}
