// The shape ARCHITECTURE.md describes, kept true: the import graph of the sources (tests
// aside) is a DAG at file level and at folder level, each layer imports only the layers
// below it, lxr reaches the runtime and the image tool only through their entry points, and
// the constants that C and TypeScript share come from native/abi.json alone.
import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TOP = ['common', 'oci-spec', 'native', 'runtime', 'image-tool', 'lxr'];

/** What each top-level folder may import besides itself (ARCHITECTURE.md's layers). */
const MAY_IMPORT: Record<string, string[]> = {
  common: [],
  'oci-spec': ['common'],
  native: ['common', 'oci-spec'],
  runtime: ['common', 'oci-spec', 'native'],
  'image-tool': ['common', 'oci-spec', 'native'],
  lxr: ['common', 'oci-spec', 'native', 'runtime', 'image-tool'],
};

interface Edge { from: string; to: string; spec: string }

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(REPO, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'test' && e.name !== 'build' && e.name !== 'node_modules') sources(p, out);
    } else if (/\.(ts|mjs)$/.test(e.name) && !/\.(test|d)\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Every relative import of a file: static, `import type`, re-exports and dynamic import(). */
export function importsOf(file: string, text: string): Edge[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
  const out: Edge[] = [];
  for (let m; (m = re.exec(code)); ) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) continue;
    let to = relative(REPO, resolve(REPO, dirname(file), spec));
    if (to.endsWith('.js') && !existsSync(join(REPO, to))) to = to.replace(/\.js$/, '.ts');
    out.push({ from: file, to, spec });
  }
  return out;
}

const files = TOP.flatMap((d) => sources(d));
const edges = files.flatMap((f) => importsOf(f, readFileSync(join(REPO, f), 'utf8')));

/** The cycles of a graph (its strongly connected components with more than one node). */
function cycles(nodes: string[], next: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) found.push(c.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return found;
}

function graph(key: (f: string) => string): { nodes: string[]; next: Map<string, Set<string>> } {
  const next = new Map<string, Set<string>>();
  for (const f of files) next.set(key(f), next.get(key(f)) ?? new Set());
  for (const e of edges) {
    const a = key(e.from);
    const b = key(e.to);
    if (a !== b) next.get(a)!.add(b);
  }
  return { nodes: [...next.keys()], next };
}

const top = (f: string) => f.split('/')[0]!;

t.test('the sources are found and read', async (t) => {
  t.ok(files.length > 150, `${files.length} source files`);
  t.ok(edges.length > 500, `${edges.length} imports`);
  t.ok(edges.some((e) => e.spec.endsWith('/index.js') && top(e.from) === 'lxr' && top(e.to) === 'runtime'), 'dynamic and static imports alike');
});

t.test('every import names a file that exists', async (t) => {
  const missing = edges.filter((e) => !existsSync(join(REPO, e.to)));
  t.same(missing.map((e) => `${e.from} -> ${e.spec}`), []);
});

t.test('no import cycle between files', async (t) => {
  const g = graph((f) => f);
  t.same(cycles(g.nodes, g.next), [], 'each cycle is listed with its files');
});

t.test('no import cycle between folders', async (t) => {
  const g = graph((f) => dirname(f));
  t.same(cycles(g.nodes, g.next), [], 'each cycle is listed with its folders');
});

t.test('each layer imports only the layers below it', async (t) => {
  const wrong = edges.filter((e) => top(e.from) !== top(e.to) && !(MAY_IMPORT[top(e.from)] ?? []).includes(top(e.to)));
  t.same(wrong.map((e) => `${e.from} -> ${e.to}`), [], 'runtime/ and image-tool/ never import each other, nor lxr/');
});

t.test('lxr reaches the runtime and the image tool only through their entry points', async (t) => {
  const deep = edges.filter((e) => top(e.from) === 'lxr' && ['runtime', 'image-tool'].includes(top(e.to)) && e.to !== `${top(e.to)}/index.ts`);
  t.same(deep.map((e) => `${e.from} -> ${e.to}`), []);
});

t.test('the checks can fail: a cycle and a deep import are seen', async (t) => {
  const next = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]);
  t.same(cycles(['a', 'b', 'c', 'd'], next), [['a', 'b', 'c']]);
  const e = importsOf('lxr/x.ts', "import type { Spec } from '../runtime/container/create.js';\nconst m = await import('./y.js');");
  t.same(e.map((x) => x.to), ['runtime/container/create.ts', 'lxr/y.ts']);
});

t.test('C and TypeScript share their constants through native/abi.json only', async (t) => {
  const abi = JSON.parse(readFileSync(join(REPO, 'native', 'abi.json'), 'utf8')) as {
    ops: Record<string, { code: number }>; sync: Record<string, number>; ns_steps: Record<string, [number, string]>; monitor: { RESTART_EXIT: number };
  };
  // the C side: build/abi.h is what the build makes from abi.json, and no C file defines those names itself
  const header = join(REPO, 'native', 'build', 'abi.h');
  t.ok(existsSync(header), 'native/build/abi.h is built (npm install)');
  const h = existsSync(header) ? readFileSync(header, 'utf8') : '';
  for (const [name, op] of Object.entries(abi.ops)) t.match(h, new RegExp(`\\bOP_${name} = ${op.code},`), `OP_${name}`);
  for (const [name, v] of Object.entries(abi.sync)) t.match(h, new RegExp(`\\bSYNC_${name} = ${v},`), `SYNC_${name}`);
  for (const [name, [v]] of Object.entries(abi.ns_steps)) t.match(h, new RegExp(`\\bNS_STEP_${name} = ${v},`), `NS_STEP_${name}`);
  t.match(h, new RegExp(`#define MONITOR_RESTART_EXIT ${abi.monitor.RESTART_EXIT}\\b`));
  const cFiles = readdirSync(join(REPO, 'native')).filter((f) => /\.[ch]$/.test(f));
  for (const f of cFiles) {
    const c = readFileSync(join(REPO, 'native', f), 'utf8');
    t.notMatch(c, /#define\s+(OP|SYNC|NS_STEP|MONITOR)_[A-Z_]+\s+\d/, `${f} defines no ABI constant by hand`);
    t.notMatch(c, /^\s*(OP|SYNC|NS_STEP)_[A-Z_]+\s*=\s*\d+/m, `${f} enumerates no ABI constant by hand`);
  }
  // the TypeScript side: the opcodes and sync ids are read from abi.json, never written out
  const { Op } = await import('../native/plan.js');
  for (const [name, op] of Object.entries(abi.ops)) t.equal((Op as Record<string, number>)[name], op.code, `Op.${name}`);
  const restartUsers = files.filter((f) => /RESTART_EXIT/.test(readFileSync(join(REPO, f), 'utf8')));
  t.ok(restartUsers.length > 0, `the monitor's restart code is read from abi.json (${restartUsers.join(', ')})`);
  const handWritten = files.filter((f) => /\bRESTART\s*=\s*\d+|\bSYNC_[A-Z]+\s*=\s*\d+/.test(readFileSync(join(REPO, f), 'utf8')));
  t.same(handWritten, [], 'no TypeScript module writes a shared constant out');
});
