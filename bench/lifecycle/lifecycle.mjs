#!/usr/bin/env node
// Container lifecycle benchmark: lxr-runtime against runc (and crun if present).
//
//   node bench/lifecycle/lifecycle.mjs [--runs N] [--warmup N] [--json FILE]
//   (or bench/lifecycle/run.sh, which does the same)
//
// Two scenarios, on one busybox bundle (rootfs from Debian's busybox-static,
// config.json from `runc spec`):
//   run            `run` of /bin/true, until it exits
//   create-start-delete  `create` + `start` + `delete -f` of /bin/sleep 1000, with
//                  `state`, `kill ID SIGCONT` and `list` timed on the running container
//   node0          `node -e 0` in the same loop: Node's bare start, the floor of issue 16
// Each tool gets its own --root state dir. Wall time of each command, as a user
// would see it, spawned from this process (the spawn overhead is the same for
// every tool). Not part of `npm test`: speed is measured here, never asserted.
//
// Environment: LXR_RUNTIME (default <repo>/bin/lxr-runtime.js), RUNC, CRUN,
// BENCH_RUNS, BENCH_WARMUP, BENCH_WORK (default <repo>/bench/work/lifecycle).
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, cpSync, openSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');

// NODE_EXTRA_CA_CERTS makes Node read and parse a CA bundle at start-up
// (~35 ms on these machines): it would be measured as lxr-runtime's start-up.
delete process.env.NODE_EXTRA_CA_CERTS;

class BenchError extends Error {}

function parseArgs(argv) {
  const opts = {
    runs: Number(process.env.BENCH_RUNS ?? 20),
    warmup: Number(process.env.BENCH_WARMUP ?? 2),
    json: null,
    ctr: process.env.BENCH_CTR !== '0',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new BenchError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--runs' || a === '-n') opts.runs = Number(value());
    else if (a === '--warmup') opts.warmup = Number(value());
    else if (a === '--json') opts.json = value();
    else if (a === '--no-ctr') opts.ctr = false;
    else if (a === '-h' || a === '--help') {
      console.log('usage: bench/lifecycle/run.sh [--runs N] [--warmup N] [--json FILE] [--no-ctr]');
      process.exit(0);
    } else throw new BenchError(`unknown option: ${a}`);
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new BenchError(`--runs must be a positive integer, got ${opts.runs}`);
  if (!Number.isInteger(opts.warmup) || opts.warmup < 0) throw new BenchError(`--warmup must be a non-negative integer, got ${opts.warmup}`);
  return opts;
}

function which(name) {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(d || '.', name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

function isExecutable(p) {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

/** The command line that starts a runtime: a .js file without +x goes through node. */
function launcher(path) {
  if (/\.[cm]?js$/.test(path) && !isExecutable(path)) return [process.execPath, path];
  return [path];
}

function sh(argv, what) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new BenchError(`${what}: ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new BenchError(`${what}: \`${argv.join(' ')}\` exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  return r.stdout;
}

/** A read-only busybox rootfs shared by two bundles: /bin/true and a long sleep. */
function prepareBundles(work, runc) {
  const rootfs = join(work, 'rootfs');
  const stamp = join(work, '.bundles-ready');
  const bundles = { run: join(work, 'bundle-true'), long: join(work, 'bundle-sleep') };
  if (existsSync(stamp)) return bundles;
  const busybox = '/bin/busybox';
  if (!existsSync(busybox)) throw new BenchError(`${busybox} not found: apt-get install busybox-static`);
  const ldd = spawnSync('ldd', [busybox], { encoding: 'utf8' });
  if (ldd.status === 0 && !/not a dynamic executable/.test(ldd.stdout + ldd.stderr)) {
    throw new BenchError(`${busybox} is dynamically linked: apt-get install busybox-static`);
  }
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'root']) mkdirSync(join(rootfs, d), { mode: 0o755 });
  cpSync(busybox, join(rootfs, 'bin', 'busybox'));
  for (const applet of sh([busybox, '--list'], 'listing busybox applets').split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  for (const [name, args] of [['run', ['/bin/true']], ['long', ['/bin/sleep', '1000']]]) {
    const dir = bundles[name];
    mkdirSync(dir, { recursive: true });
    sh([runc, 'spec', '--bundle', dir], `generating ${dir}/config.json`);
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    spec.process.args = args;
    spec.process.terminal = false;
    spec.root = { path: rootfs, readonly: true };
    writeFileSync(join(dir, 'config.json.tmp'), JSON.stringify(spec, null, 2));
    renameSync(join(dir, 'config.json.tmp'), join(dir, 'config.json'));
  }
  writeFileSync(stamp, '');
  return bundles;
}

let stderrFile = null;

/** Node's bare start (issue 16's floor): `node -e 0`, with NODE_EXTRA_CA_CERTS unset as for lxr-runtime. */
const NODE0 = [process.execPath, '-e', '0'];

/**
 * Wall time of one command. Its stdout is discarded and its stderr goes to a
 * file, never to a pipe: after `create`, the container's init keeps the
 * runtime's stdio open, and a pipe would never reach EOF.
 */
function timeCommand(argv) {
  const fd = openSync(stderrFile, 'w');
  let r;
  const t0 = process.hrtime.bigint();
  try {
    r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', fd], timeout: 60_000, killSignal: 'SIGKILL' });
  } finally {
    closeSync(fd);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error || r.status !== 0) {
    const err = readFileSync(stderrFile, 'utf8').trim().split('\n').pop() ?? '';
    const why = r.error ? r.error.message : `exited ${r.status ?? r.signal}: ${err}`;
    throw new BenchError(`\`${argv.join(' ')}\` ${why}`);
  }
  return ms;
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((x, y) => x + y, 0) / s.length;
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const sd = Math.sqrt(s.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, s.length - 1));
  return { n: s.length, mean, median, min: s[0], max: s[s.length - 1], sd };
}

/** One tool, both scenarios. Throws BenchError on the first failing command. */
function benchTool(tool, bundles, work, opts) {
  const root = join(work, 'state', tool.name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const rt = (...args) => [...tool.argv, '--root', root, ...args];
  const samples = { node0: [], run: [], create: [], start: [], state: [], kill: [], list: [], delete: [], 'create-start-delete': [] };
  let seq = 0;
  const live = new Set();
  try {
    for (let i = 0; i < opts.warmup + opts.runs; i++) {
      const keep = i >= opts.warmup;
      const id1 = `bench-${process.pid}-${seq++}`;
      const tRun = timeCommand(rt('run', '--bundle', bundles.run, id1));
      const id2 = `bench-${process.pid}-${seq++}`;
      live.add(id2);
      const tCreate = timeCommand(rt('create', '--bundle', bundles.long, id2));
      const tStart = timeCommand(rt('start', id2));
      // the commands that only read or signal, on the running container (SIGCONT does
      // nothing to a running sleep): what containerd's shim calls between start and delete
      const tState = timeCommand(rt('state', id2));
      const tKill = timeCommand(rt('kill', id2, 'SIGCONT'));
      const tList = timeCommand(rt('list'));
      const tDelete = timeCommand(rt('delete', '-f', id2));
      live.delete(id2);
      // Node's bare start in the same loop, so that it sees the same load
      const tNode0 = timeCommand(NODE0);
      if (keep) {
        samples.node0.push(tNode0);
        samples.run.push(tRun);
        samples.create.push(tCreate);
        samples.start.push(tStart);
        samples.state.push(tState);
        samples.kill.push(tKill);
        samples.list.push(tList);
        samples.delete.push(tDelete);
        samples['create-start-delete'].push(tCreate + tStart + tDelete);
      }
    }
  } finally {
    for (const id of live) spawnSync(rt('delete', '-f', id)[0], rt('delete', '-f', id).slice(1), { stdio: 'ignore' });
    // Anything `run` left behind (it should remove its container itself).
    for (const id of existsSync(root) ? readdirSync(root) : []) {
      if (id.startsWith('bench-')) spawnSync(rt('delete', '-f', id)[0], rt('delete', '-f', id).slice(1), { stdio: 'ignore' });
    }
    rmSync(root, { recursive: true, force: true });
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
}

function fmt(ms) { return ms.toFixed(1).padStart(8); }

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new BenchError('must run as root (containers need namespaces, mounts and cgroups)');
  const work = resolve(process.env.BENCH_WORK ?? join(repo, 'bench', 'work', 'lifecycle'));
  const runc = process.env.RUNC ?? which('runc');
  if (!runc) throw new BenchError('runc not found (apt-get install runc): it is the baseline and writes the bundle config');
  const bundles = prepareBundles(work, runc);
  stderrFile = join(work, 'stderr.log');

  const tools = [];
  const skipped = [];
  const lxr = resolve(process.env.LXR_RUNTIME ?? join(repo, 'bin', 'lxr-runtime.js'));
  const lxrArgv = launcher(lxr);
  const probe = existsSync(lxr) ? spawnSync(lxrArgv[0], [...lxrArgv.slice(1), '--version'], { encoding: 'utf8', timeout: 30000 }) : null;
  if (!probe) skipped.push(['lxr-runtime', `${lxr} does not exist (npm run build)`]);
  else if (probe.status !== 0) skipped.push(['lxr-runtime', `${lxr} --version failed: ${(probe.stderr || probe.stdout || String(probe.error ?? '')).trim().split('\n').pop()}`]);
  else tools.push({ name: 'lxr-runtime', path: lxr, argv: lxrArgv });
  tools.push({ name: 'runc', path: runc, argv: [runc] });
  const crun = process.env.CRUN ?? which('crun');
  if (crun) tools.push({ name: 'crun', path: crun, argv: [crun] });
  else skipped.push(['crun', 'not installed (apt-get install crun)']);

  console.log(`lifecycle benchmark: ${opts.runs} runs after ${opts.warmup} warm-up runs, busybox bundle in ${work}`);
  console.log('NODE_EXTRA_CA_CERTS is unset for all runs (it adds ~35 ms to every Node start-up here).');
  const results = {};
  for (const tool of tools) {
    try {
      results[tool.name] = benchTool(tool, bundles, work, opts);
    } catch (e) {
      if (!(e instanceof BenchError)) throw e;
      if (tool.name === 'runc') throw e;
      skipped.push([tool.name, e.message]);
    }
  }
  // containerd (issue 6): `ctr run --rm` of an image of the same rootfs, through the
  // io.containerd.runc.v2 shim with each runtime as its runc binary (see ctr.mjs).
  if (opts.ctr && which('containerd') && which('ctr')) {
    const ctrTools = tools.filter((t) => results[t.name] && t.name !== 'crun');
    try {
      const { benchCtrRun } = await import('./ctr.mjs');
      const { samples, failed } = await benchCtrRun({ tools: ctrTools, rootfs: join(work, 'rootfs'), work, runs: opts.runs, warmup: opts.warmup, timeCommand });
      for (const [name, s] of Object.entries(samples)) results[name]['ctr run --rm'] = stats(s);
      for (const [name, why] of failed) skipped.push([`${name} (ctr run --rm)`, why]);
    } catch (e) {
      skipped.push(['ctr run --rm', e.message]);
    }
  } else if (opts.ctr) skipped.push(['ctr run --rm', 'containerd or ctr not installed (apt-get install containerd)']);
  for (const [name, why] of skipped) console.log(`skipped ${name}: ${why}`);

  const names = Object.keys(results);
  console.log(`\n${'scenario'.padEnd(22)}${'tool'.padEnd(13)}${'mean ms'.padStart(8)}${'median'.padStart(8)}${'min'.padStart(8)}${'sd'.padStart(8)}`);
  for (const scenario of ['node0', 'run', 'create-start-delete', 'create', 'start', 'state', 'kill', 'list', 'delete', 'ctr run --rm']) {
    for (const name of names) {
      // node0 is measured in every tool's loop; show it once per tool only where Node runs
      if (scenario === 'node0' && name !== 'lxr-runtime') continue;
      const s = results[name][scenario];
      if (!s) continue;
      console.log(`${scenario.padEnd(22)}${name.padEnd(13)}${fmt(s.mean)}${fmt(s.median)}${fmt(s.min)}${fmt(s.sd)}`);
    }
  }
  const ratios = {};
  if (results['lxr-runtime']) {
    console.log('\nlxr-runtime / runc:');
    for (const scenario of ['run', 'create-start-delete', 'ctr run --rm']) {
      const l = results['lxr-runtime'][scenario];
      const r = results.runc[scenario];
      if (!l || !r) continue;
      ratios[scenario] = { mean: l.mean / r.mean, median: l.median / r.median };
      console.log(`  ${scenario.padEnd(20)} mean ${ratios[scenario].mean.toFixed(2)}x, median ${ratios[scenario].median.toFixed(2)}x`);
    }
    // issue 16's goals, on medians of this run: node0 is `node -e 0` measured in lxr-runtime's loop
    const L = results['lxr-runtime'];
    const R = results.runc;
    const node0 = L.node0.median;
    console.log(`\nissue 16 goals (medians of this run; node0 = \`node -e 0\` = ${node0.toFixed(1)} ms):`);
    const goal = (label, lxr, budget, budgetText) => {
      const r = lxr / budget;
      ratios[`goal ${label}`] = { lxr, budget, ratio: r };
      console.log(`  ${label.padEnd(22)} ${lxr.toFixed(1).padStart(7)} ms, goal ${budgetText} = ${budget.toFixed(1).padStart(6)} ms: ${r.toFixed(2)}x of the goal ${r <= 1 ? '(met)' : '(missed)'}`);
    };
    goal('run', L.run.median, node0 + 1.2 * R.run.median, 'node0 + 1.2 x runc');
    goal('create+start+delete', L['create-start-delete'].median, 3 * node0 + 1.2 * R['create-start-delete'].median, '3 node0 + 1.2 x runc');
    for (const c of ['state', 'start', 'kill', 'delete', 'list']) {
      const over = L[c].median - node0;
      ratios[`over node0 ${c}`] = { lxr: L[c].median, node0, over, runc: R[c].median };
      console.log(`  ${c.padEnd(22)} ${L[c].median.toFixed(1).padStart(7)} ms = node0 ${over >= 0 ? '+' : '-'} ${Math.abs(over).toFixed(1)} ms (runc ${R[c].median.toFixed(1)} ms)`);
    }
  }
  if (opts.json) {
    const tools_ = Object.fromEntries(tools.map((t) => [t.name, t.path]));
    const doc = { runs: opts.runs, warmup: opts.warmup, tools: tools_, skipped: Object.fromEntries(skipped), results, ratios, nodeExtraCaCerts: 'unset' };
    writeFileSync(`${opts.json}.tmp`, JSON.stringify(doc, null, 2) + '\n');
    renameSync(`${opts.json}.tmp`, opts.json);
  }
}

main().catch((e) => {
  if (!(e instanceof BenchError)) throw e;
  console.error(`bench/lifecycle: ${e.message}`);
  process.exitCode = 1;
});
