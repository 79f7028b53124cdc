#!/usr/bin/env node
// Summarise and compare runtime-tools validation results.
//
//   tap-summary.mjs summary RESULTS_DIR [--runtime PATH] [--label NAME] [--partial] [--json FILE]
//   tap-summary.mjs compare BASE OTHER [--known-failures FILE] [--ci] [--json FILE]
//
// RESULTS_DIR holds, per test file NAME: NAME.tap (its stdout), NAME.err,
// NAME.exit (exit status) and NAME.attempts, as conformance/run.sh writes them.
// BASE and OTHER are such directories or JSON summaries written by `summary`.
//
// Plain JavaScript (no build step) so the harness runs from a clean clone.
import { readFileSync, readdirSync, writeFileSync, renameSync, existsSync, statSync, openSync, fsyncSync, closeSync, realpathSync } from 'node:fs';
import { basename, join, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const SUMMARY_VERSION = 1;

class UsageError extends Error {}

/** Parse one TAP stream (the top level only: the suite does not nest). */
export function parseTap(text) {
  const assertions = [];
  const errors = [];
  let plan = null;
  let last = null; // assertion a following YAML block belongs to
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const m = /^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$/.exec(line);
    if (m) {
      let desc = m[3];
      let directive = null;
      const d = /\s*#\s*(SKIP|TODO)\b\s*(.*)$/i.exec(desc);
      if (d) {
        directive = d[1].toUpperCase();
        desc = desc.slice(0, d.index) || d[2];
      }
      const n = m[2] ? Number(m[2]) : assertions.length + 1;
      last = { n, ok: m[1] === 'ok', skip: directive === 'SKIP', todo: directive === 'TODO', desc: desc.trim() };
      assertions.push(last);
      continue;
    }
    const p = /^1\.\.(\d+)/.exec(line);
    // Some files print two TAP streams (two plans): their plans add up.
    if (p) { plan = (plan ?? 0) + Number(p[1]); last = null; continue; }
    // "# expect: X, actual: Y" lines after a failed assertion explain it.
    if (last && !last.ok && /^#\s/.test(line)) {
      last.diag = ((last.diag ? `${last.diag}\n` : '') + line.slice(2).trim()).slice(0, 2000);
      continue;
    }
    if (/^\s+---\s*$/.test(line)) {
      const block = [];
      for (i++; i < lines.length && !/^\s+\.\.\.\s*$/.test(lines[i]); i++) block.push(lines[i]);
      const yaml = block.join('\n');
      if (last && !last.ok) last.diag = ((last.diag ? `${last.diag}\n` : '') + yaml.trim()).slice(0, 2000);
      // A YAML block with an "error" and no assertion before it is how the
      // suite reports a test that gave up (it then prints "1..0").
      if (!last && /"error"\s*:/.test(yaml)) {
        let msg = yaml;
        try { msg = JSON.parse(yaml).error ?? yaml; } catch { /* not JSON: keep raw */ }
        errors.push(String(msg).split('\n')[0].trim());
      }
    }
  }
  return { plan, assertions, errors };
}

function readOr(path, fallback) {
  try { return readFileSync(path, 'utf8'); } catch { return fallback; }
}

/** Build the summary of one results directory. */
export function summariseDir(dir, { runtime = null, label = null, partial = false } = {}) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`results directory not found: ${dir}`);
  const names = readdirSync(dir).filter((f) => f.endsWith('.tap')).map((f) => f.slice(0, -4)).sort();
  if (names.length === 0) throw new UsageError(`no .tap files in ${dir}`);
  const files = {};
  const totals = { files: 0, filesFailed: 0, ok: 0, notOk: 0, skip: 0, todo: 0 };
  for (const name of names) {
    const { plan, assertions, errors } = parseTap(readFileSync(join(dir, `${name}.tap`), 'utf8'));
    const exitText = readOr(join(dir, `${name}.exit`), '').trim();
    const exit = exitText === '' ? null : Number(exitText);
    const attempts = Number(readOr(join(dir, `${name}.attempts`), '1').trim()) || 1;
    const stderr = readOr(join(dir, `${name}.err`), '');
    const ok = assertions.filter((a) => a.ok).length;
    const notOk = assertions.length - ok;
    const skip = assertions.filter((a) => a.ok && a.skip).length;
    const todo = assertions.filter((a) => a.todo).length;
    const planMismatch = plan === null || plan !== assertions.length;
    const failed = exit !== 0 || notOk > 0 || planMismatch || errors.length > 0;
    files[`${name}.t`] = {
      exit, attempts, plan, ok, notOk, skip, todo, planMismatch, errors,
      stderr: stderr.trim().split('\n').filter(Boolean).slice(-3).join('\n').slice(0, 1000),
      failed, assertions,
    };
    totals.files++;
    if (failed) totals.filesFailed++;
    totals.ok += ok; totals.notOk += notOk; totals.skip += skip; totals.todo += todo;
  }
  // partial: only some test files were selected, so absent files are not failures.
  return { version: SUMMARY_VERSION, runtime, label: label ?? basename(dir), partial, generated: new Date().toISOString(), totals, files };
}

/** Load a summary from a results directory or a JSON file written by `summary`. */
export function loadSummary(path) {
  if (!existsSync(path)) throw new UsageError(`results not found: ${path}`);
  if (statSync(path).isDirectory()) return summariseDir(path);
  let data;
  try { data = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new UsageError(`${path}: not a JSON summary (${e.message})`); }
  if (data?.version !== SUMMARY_VERSION || typeof data.files !== 'object') throw new UsageError(`${path}: not a conformance summary (version ${SUMMARY_VERSION})`);
  return data;
}

function writeJsonAtomic(path, value) {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(value, null, 1) + '\n');
  const fd = openSync(tmp, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

export function formatSummary(sum) {
  const out = [];
  const names = Object.keys(sum.files);
  const w = Math.max(10, ...names.map((n) => n.length));
  out.push(`runtime-tools validation: ${sum.label}${sum.runtime ? ` (${sum.runtime})` : ''}`);
  out.push(`${pad('file', w)}  ${pad('exit', 4, true)}  ${pad('ok', 5, true)}  ${pad('not ok', 6, true)}  ${pad('skip', 5, true)}  notes`);
  for (const n of names) {
    const f = sum.files[n];
    const notes = [];
    if (f.attempts > 1) notes.push(`run ${f.attempts} times`);
    if (f.planMismatch) notes.push(f.plan === null ? 'no plan' : `plan 1..${f.plan}, saw ${f.assertions.length}`);
    for (const e of f.errors) notes.push(`gave up: ${e.slice(0, 80)}`);
    if (f.exit !== 0 && f.assertions.length === 0 && f.stderr) notes.push(f.stderr.split('\n').pop().slice(0, 100));
    out.push(`${pad(n, w)}  ${pad(f.exit ?? '-', 4, true)}  ${pad(f.ok, 5, true)}  ${pad(f.notOk, 6, true)}  ${pad(f.skip, 5, true)}  ${notes.join('; ')}`);
  }
  const t = sum.totals;
  out.push(`total: ${t.files} files (${t.filesFailed} with failures), ${t.ok} ok (${t.skip} of them skipped), ${t.notOk} not ok`);
  return out.join('\n');
}

/** Digits vary between runs (temp paths, PIDs): compare descriptions without them. */
export function normaliseDesc(desc) {
  return desc.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, 'UUID').replace(/\d+/g, 'N').trim();
}

/**
 * Known failures: one `file.t:SELECTOR # reason` per line. SELECTOR is an
 * assertion number, a description (`*` matches any text; digits are ignored as
 * in normaliseDesc), `exit` (the file exited non-zero), `error` (the file gave
 * up) or `*` (anything in that file).
 */
export function parseKnownFailures(text, source = 'known-failures') {
  const entries = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source}:${i + 1}`;
    const hash = line.indexOf(' #');
    if (hash < 0 || line.slice(hash + 2).trim() === '') throw new UsageError(`${where}: missing reason (write "file.t:selector # reason")`);
    const spec = line.slice(0, hash).trim();
    const reason = line.slice(hash + 2).trim();
    const colon = spec.indexOf(':');
    if (colon < 0 || !spec.slice(0, colon).endsWith('.t') || spec.slice(colon + 1).trim() === '') {
      throw new UsageError(`${where}: expected "file.t:selector # reason", got "${spec}"`);
    }
    entries.push({ file: spec.slice(0, colon), selector: spec.slice(colon + 1).trim(), reason, where, used: false });
  });
  return entries;
}

function globToRegExp(s) {
  return new RegExp('^' + s.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

function knownFailureFor(known, file, reg) {
  for (const k of known) {
    if (k.file !== file) continue;
    const s = k.selector;
    let hit = false;
    if (s === '*') hit = true;
    else if (/^\d+$/.test(s)) hit = reg.n === Number(s);
    else if (s === 'exit' || s === 'error') hit = reg.kind === s;
    else hit = reg.desc !== undefined && globToRegExp(normaliseDesc(s)).test(normaliseDesc(reg.desc));
    if (hit) { k.used = true; return k; }
  }
  return null;
}

const passed = (a) => a.ok && !a.skip && !a.todo;

function groupByDesc(assertions) {
  const groups = new Map();
  for (const a of assertions) {
    const key = normaliseDesc(a.desc);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  return groups;
}

/**
 * Match by description, not number: the suite walks Go maps, so the order of
 * assertions (and their numbers) changes between runs. Descriptions repeat (one
 * per cgroup setting...), so count how many pass per description.
 */
function compareAssertions(baseAssertions, otherAssertions, regs, better) {
  const groupsO = groupByDesc(otherAssertions);
  for (const [key, bs] of groupByDesc(baseAssertions)) {
    const os = groupsO.get(key) ?? [];
    const passB = bs.filter(passed);
    const passO = os.filter(passed);
    if (passO.length < passB.length) {
      const failingO = [...os.filter((x) => !x.ok), ...os.filter((x) => x.ok && !passed(x))];
      for (let i = 0; i < passB.length - passO.length; i++) {
        const x = failingO[i];
        if (x) regs.push({ kind: x.ok ? 'skipped' : 'not ok', n: x.n, desc: x.desc, ...(x.diag ? { diag: x.diag } : {}) });
        else regs.push({ kind: 'missing', n: passB[passO.length + i].n, desc: passB[passO.length + i].desc });
      }
    } else if (passO.length > passB.length && bs.some((a) => !a.ok)) {
      for (const x of passO.slice(passB.length)) better.push({ n: x.n, desc: x.desc });
    }
  }
}

/** Assertions (and file-level outcomes) that pass under BASE but not under OTHER. */
export function compareSummaries(base, other, known = []) {
  const files = {};
  let regressions = 0, unexpected = 0, improvements = 0;
  for (const [name, b] of Object.entries(base.files)) {
    const o = other.files[name];
    const regs = [];
    const better = [];
    if (!o && other.partial) continue;
    if (!o) {
      regs.push({ kind: 'missing-file', desc: 'test file was not run for the other runtime' });
    } else {
      if (b.exit === 0 && o.exit !== 0) regs.push({ kind: 'exit', desc: `exited ${o.exit ?? '?'}${o.stderr ? `: ${o.stderr.split('\n').pop()}` : ''}` });
      if (b.errors.length === 0 && o.errors.length > 0) regs.push({ kind: 'error', desc: `gave up: ${o.errors[0]}` });
      // A file that exits non-zero under BASE failed as a whole there, and its
      // assertions prove nothing: the *_fail files print a full set of "ok"s
      // when the runtime wrongly accepts a bad config, then exit 1.
      if (b.exit !== 0) {
        if (o.exit === 0) better.push({ desc: `exits 0 (${base.label} exits ${b.exit ?? '?'})` });
      } else {
        compareAssertions(b.assertions, o.assertions, regs, better);
      }
    }
    for (const r of regs) {
      const k = knownFailureFor(known, name, r);
      if (k) r.known = k.reason; else unexpected++;
    }
    regressions += regs.length;
    improvements += better.length;
    if (regs.length || better.length) files[name] = { regressions: regs, improvements: better };
  }
  const stale = known.filter((k) => !k.used).map(({ file, selector, reason, where }) => ({ file, selector, reason, where }));
  return { base: base.label, other: other.label, regressions, unexpected, improvements, staleKnownFailures: stale, files };
}

export function formatComparison(cmp) {
  const out = [`assertions that pass under ${cmp.base} but not under ${cmp.other}:`];
  for (const [name, f] of Object.entries(cmp.files)) {
    if (f.regressions.length === 0) continue;
    out.push(`${name}: ${f.regressions.length}`);
    for (const r of f.regressions) {
      const id = r.n !== undefined ? `#${r.n} ` : '';
      const tag = r.known ? `known (${r.known})` : r.kind;
      out.push(`  ${id}[${tag}] ${r.desc}`);
    }
  }
  const better = Object.entries(cmp.files).filter(([, f]) => f.improvements.length);
  if (better.length) {
    out.push(`assertions that fail under ${cmp.base} but pass under ${cmp.other}:`);
    for (const [name, f] of better) for (const r of f.improvements) out.push(`  ${name}${r.n !== undefined ? ` #${r.n}` : ''} ${r.desc}`);
  }
  for (const s of cmp.staleKnownFailures) out.push(`note: known failure no longer seen: ${s.file}:${s.selector} (${s.where})`);
  out.push(`total: ${cmp.regressions} regressions against ${cmp.base} (${cmp.regressions - cmp.unexpected} known, ${cmp.unexpected} unexpected), ${cmp.improvements} improvements`);
  return out.join('\n');
}

function parseArgs(argv) {
  const pos = [];
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ci') opts.ci = true;
    else if (a === '--partial') opts.partial = true;
    else if (['--json', '--runtime', '--label', '--known-failures'].includes(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      opts[a.slice(2).replace(/-(.)/g, (_, c) => c.toUpperCase())] = argv[++i];
    } else if (a.startsWith('--')) throw new UsageError(`unknown option: ${a}`);
    else pos.push(a);
  }
  return { pos, opts };
}

function main(argv) {
  const [cmd, ...rest] = argv;
  const { pos, opts } = parseArgs(rest);
  if (cmd === 'summary' && pos.length === 1) {
    const sum = summariseDir(pos[0], { runtime: opts.runtime ?? null, label: opts.label ?? null, partial: Boolean(opts.partial) });
    console.log(formatSummary(sum));
    if (opts.json) writeJsonAtomic(opts.json, sum);
    return 0;
  }
  if (cmd === 'compare' && pos.length === 2) {
    const base = loadSummary(pos[0]);
    const other = loadSummary(pos[1]);
    let known = [];
    if (opts.knownFailures) {
      if (!existsSync(opts.knownFailures)) throw new UsageError(`known failures file not found: ${opts.knownFailures}`);
      known = parseKnownFailures(readFileSync(opts.knownFailures, 'utf8'), opts.knownFailures);
    }
    const cmp = compareSummaries(base, other, known);
    console.log(formatComparison(cmp));
    if (opts.json) writeJsonAtomic(opts.json, cmp);
    if (opts.ci && cmp.unexpected > 0) {
      console.error(`conformance: FAIL: ${cmp.other} fails ${cmp.unexpected} assertion(s) that ${cmp.base} passes and that are not in ${opts.knownFailures ?? 'a known-failures file'}`);
      return 1;
    }
    return 0;
  }
  throw new UsageError('usage: tap-summary.mjs summary RESULTS_DIR [--runtime PATH] [--label NAME] [--partial] [--json FILE]\n       tap-summary.mjs compare BASE OTHER [--known-failures FILE] [--ci] [--json FILE]');
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tap-summary: ${e.message}`); process.exitCode = 2; }
    else throw e;
  }
}
