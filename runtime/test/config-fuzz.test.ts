// A seeded config.json fuzzer through `lxr-runtime create`: each mutant deletes a field,
// gives it the wrong type, an extreme value or the wrong nesting. Every mutant is either
// created and deleted cleanly, or refused with an error naming a JSON path of the config:
// never a signal, a timeout, a JavaScript error or a stack, and never a leftover.
// The seed varies per run, so that each run tries new mutants, except under CI (CI=true),
// which replays one fixed seed so that its verdict does not depend on the draw.
// LXR_FUZZ_SEED fixes it, LXR_FUZZ_COUNT sets the count; a failure prints the seed and the
// mutation, so it can be replayed.
//
// Each lxr-runtime runs under `unshare -m -u -i -n`: a mutant that drops a namespace
// then shares a throw-away one, never the host's mounts, hostname or network.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cleanEnv, haveBusybox, makeBundle, makeRoot, RUNTIME } from './helpers/bundle.js';
import { resolveCgroupPaths } from '../cgroups/manager/index.js';

const CI_SEED = 2131398449;
const SEED = Number(process.env.LXR_FUZZ_SEED ?? (process.env.CI ? CI_SEED : Math.floor(Math.random() * 2 ** 31)));
const COUNT = Number(process.env.LXR_FUZZ_COUNT ?? 150);

/** mulberry32: small, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

function paths(v: Json, at: Path = []): Path[] {
  const out: Path[] = at.length ? [at] : [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) out.push(...paths(v[k]!, [...at, k]));
  return out;
}

function show(p: Path): string {
  return p.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

const EXTREMES: Json[] = [-1, 0, 2 ** 31, 2 ** 32 + 1, -(2 ** 53), 2 ** 64, 1.5, '', 'x'.repeat(5000), '../../../../..', '/', '\u0000', '-1', 'ALL'];
const WRONG_TYPES: Json[] = [null, true, 7, 'str', [], {}, [1, 'a'], { a: 1 }];

function mutate(spec: Json, rand: () => number): { spec: Json; what: string; path: Path } {
  const all = paths(spec);
  const path = all[Math.floor(rand() * all.length)]!;
  const copy = JSON.parse(JSON.stringify(spec)) as Json;
  let parent = copy as Record<string | number, Json>;
  for (const s of path.slice(0, -1)) parent = parent[s] as Record<string | number, Json>;
  const key = path[path.length - 1]!;
  const pick = <T>(l: T[]): T => l[Math.floor(rand() * l.length)]!;
  const kind = pick(['delete', 'type', 'extreme', 'nest']);
  let what: string;
  if (kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    what = 'deleted';
  } else if (kind === 'type') {
    parent[key] = pick(WRONG_TYPES);
    what = `set to ${JSON.stringify(parent[key])}`;
  } else if (kind === 'extreme') {
    parent[key] = pick(EXTREMES);
    what = `set to ${JSON.stringify(parent[key]).slice(0, 40)}`;
  } else {
    parent[key] = rand() < 0.5 ? [parent[key]!] : { value: parent[key]! };
    what = 'nested one level deeper';
  }
  return { spec: copy, what, path };
}

/** stderr goes to a file, not a pipe: a created container inherits it and keeps a pipe open. */
function run(root: string, args: string[]): { status: number | null; signal: string | null; stderr: string } {
  const errFile = join(root, '..', `${basename(root)}.stderr`);
  const fd = openSync(errFile, 'w+');
  try {
    const r = spawnSync('unshare', ['-m', '-u', '-i', '-n', '--propagation', 'private', process.execPath, RUNTIME, '--root', root, ...args], {
      stdio: ['ignore', 'ignore', fd],
      timeout: 30000,
      env: cleanEnv(),
    });
    return { status: r.status, signal: r.signal, stderr: readFileSync(errFile, 'utf8') };
  } finally {
    closeSync(fd);
    rmSync(errFile, { force: true });
  }
}

const JS_ERROR = /TypeError|ReferenceError|RangeError|SyntaxError(?!.*JSON)|Cannot read propert|is not a function|is not iterable|undefined|\n\s+at /;

t.test(`config.json fuzzer (seed ${SEED}, ${COUNT} mutants)`, { skip: !haveBusybox && 'no busybox' }, async (t) => {
  const rand = rng(SEED);
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '1000'];
    s.hostname = 'fuzz';
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 100 } };
    s.annotations = { 'org.example.fuzz': 'yes' };
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const base = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')) as Json;
  const failures: string[] = [];
  let created = 0;
  for (let i = 0; i < COUNT; i++) {
    const m = mutate(base, rand);
    const id = `fuzz-${process.pid}-${i}`;
    const label = `seed ${SEED} mutant ${i}: ${show(m.path)} ${m.what}`;
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(m.spec));
    const c = run(root, ['create', '-b', b.dir, id]);
    if (c.signal) failures.push(`${label}: create got ${c.signal}`);
    else if (c.status === 0) {
      created++;
      const d = run(root, ['delete', '-f', id]);
      if (d.status !== 0) failures.push(`${label}: delete -f failed: ${d.stderr.trim()}`);
    } else {
      const msg = c.stderr.trim();
      if (JS_ERROR.test(msg)) failures.push(`${label}: a JavaScript error: ${msg.slice(0, 400)}`);
      else if (!/(^|[\s:(])(\(root\)|[a-zA-Z]+(\[\d+\]|\.[a-zA-Z]+)*(\[\d+\])?)(: | )/.test(msg) || !mentionsConfig(msg, m.path))
        failures.push(`${label}: the error names no JSON path of the config: ${msg.slice(0, 400)}`);
    }
    if (existsSync(join(root, id))) failures.push(`${label}: state dir left behind`);
    try {
      for (const dir of new Set(Object.values(resolveCgroupPaths({ id }).dirs))) if (existsSync(dir)) failures.push(`${label}: cgroup ${dir} left behind`);
    } catch {
      /* no cgroups here */
    }
  }
  t.comment(`${created} of ${COUNT} mutants were created and deleted; the rest were refused`);
  t.same(failures, [], `no mutant misbehaved (replay with LXR_FUZZ_SEED=${SEED})`);
  t.same(readdirSync(root), [], 'nothing left under the root');
});

/**
 * The error names a JSON path of the config: the mutated field, one of its ancestors, or a
 * field that depends on it (deleting a mount can make a masked path fail, for example).
 */
function mentionsConfig(msg: string, path: Path): boolean {
  const names = [show(path.slice(0, 2)), ...path.filter((s): s is string => typeof s === 'string')];
  if (names.some((n) => n && msg.includes(n))) return true;
  return /\b(ociVersion|process|root|hostname|domainname|mounts|linux|annotations|hooks)(\[\d+\]|\.[a-zA-Z]+)*\b/.test(msg);
}
