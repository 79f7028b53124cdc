// The conformance harness's summary and comparison, driven through its CLI on
// result directories shaped like the ones conformance/run.sh writes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tool = join(here, '..', 'lib', 'tap-summary.mjs');
const runSh = join(here, '..', 'run.sh');

function summaryTool(args: string[]) {
  const r = spawnSync(process.execPath, [tool, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-conformance-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A results dir: name -> [tap text, exit status]. */
function results(base: string, name: string, files: Record<string, [string, number]>): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, [tap, exit]] of Object.entries(files)) {
    writeFileSync(join(dir, `${f}.tap`), tap);
    writeFileSync(join(dir, `${f}.exit`), `${exit}\n`);
    writeFileSync(join(dir, `${f}.err`), exit === 0 ? '' : 'failed to create the container\nruntime: no such file\n');
    writeFileSync(join(dir, `${f}.attempts`), exit === 0 ? '1\n' : '2\n');
  }
  return dir;
}

const tap = (...lines: string[]) => ['TAP version 13', ...lines].join('\n') + '\n';

const runcFiles: Record<string, [string, number]> = {
  // Repeated descriptions, as the cgroup files print them.
  'linux_cgroups_memory': [tap('ok 1 - memory limit is set correctly', 'not ok 2 - memory kernel is set correctly',
    'ok 3 - memory limit is set correctly', 'not ok 4 - memory kernel is set correctly', '1..4'), 0],
  'default': [tap('ok 1 - has expected hostname', 'ok 2 - has a file at default symlink path "/dev/stdin"',
    'ok 3 - has a file at default symlink path "/dev/stdout"', 'ok 4 # SKIP linux.gidMappings not set', '1..4'), 0],
  'hooks': [tap('  ---', '  {', '    "error": "Hooks MUST be called in the listed order\\nRefer to: x"', '  }', '  ...', '1..0'), 0],
  'pidfile': [tap('ok 1 - create with \'--pid-file\' option works', '1..1'), 0],
};

t.test('summary counts ok, not ok and skipped assertions per file and in total', async (t) => {
  const dir = tmp(t);
  const res = results(dir, 'runc', runcFiles);
  const json = join(dir, 'runc.json');
  const r = summaryTool(['summary', res, '--runtime', '/usr/sbin/runc', '--json', json]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /linux_cgroups_memory\.t\s+0\s+2\s+2\s+0/);
  t.match(r.stdout, /default\.t\s+0\s+4\s+0\s+1/);
  t.match(r.stdout, /hooks\.t\s+0\s+0\s+0\s+0\s+gave up: Hooks MUST be called in the listed order/);
  t.match(r.stdout, /total: 4 files \(2 with failures\), 7 ok \(1 of them skipped\), 2 not ok/);
  const sum = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(sum.runtime, '/usr/sbin/runc');
  t.same(sum.totals, { files: 4, filesFailed: 2, ok: 7, notOk: 2, skip: 1, todo: 0 });
  t.same(sum.files['default.t'].assertions[3], { n: 4, ok: true, skip: true, todo: false, desc: 'linux.gidMappings not set' });
});

t.test('a file that prints fewer assertions than planned, or exits non-zero, is failed', async (t) => {
  const dir = tmp(t);
  const res = results(dir, 'x', { 'start': [tap('ok 1 - start works', '1..3'), 0], 'create': [tap(), 1] });
  const r = summaryTool(['summary', res, '--json', join(dir, 'x.json')]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /start\.t\s+0\s+1\s+0\s+0\s+plan 1\.\.3, saw 1/);
  t.match(r.stdout, /create\.t\s+1\s+0\s+0\s+0\s+run 2 times; no plan; runtime: no such file/);
  t.same(JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')).totals.filesFailed, 2);
});

t.test('compare lists what runc passes and the other fails, ignoring the order of assertions', async (t) => {
  const dir = tmp(t);
  const base = results(dir, 'runc', { ...runcFiles, 'mounts': [tap('not ok 1 - mount /a', 'ok 2 - mount /b', '1..2'), 0] });
  const other = results(dir, 'lxr-runtime', {
    ...runcFiles,
    // The failure runc has, at another number: still not a regression.
    'mounts': [tap('ok 1 - mount /b', 'not ok 2 - mount /a', '1..2'), 0],
    // Same assertions in another order (Go map iteration): not a regression.
    'default': [tap('ok 1 - has a file at default symlink path "/dev/stdout"', 'ok 2 - has expected hostname',
      'ok 3 - has a file at default symlink path "/dev/stdin"', 'ok 4 # SKIP linux.gidMappings not set', '1..4'), 0],
    // One of two "memory limit" assertions fails; the kernel ones fail under both.
    'linux_cgroups_memory': [tap('ok 1 - memory limit is set correctly', 'not ok 2 - memory kernel is set correctly',
      'not ok 3 - memory limit is set correctly', '  ---', '  {"actual": 1, "expected": 2}', '  ...',
      'not ok 4 - memory kernel is set correctly', '1..4'), 0],
    'pidfile': [tap('1..1'), 1],
  });
  const known = join(dir, 'known.txt');
  writeFileSync(known, '# comment\n\n');
  const r = summaryTool(['compare', base, other, '--known-failures', known, '--ci']);
  t.equal(r.status, 1, 'CI mode fails on an unexpected regression');
  t.notMatch(r.stdout, /default\.t/, 'reordered assertions are not reported');
  t.notMatch(r.stdout, /mounts\.t/, 'a failure runc shares is not reported, whatever its number');
  t.match(r.stdout, /linux_cgroups_memory\.t: 1\n  #3 \[not ok\] memory limit is set correctly/);
  t.match(r.stdout, /pidfile\.t: 2\n  \[exit\] exited 1: runtime: no such file\n  #1 \[missing\] create with '--pid-file' option works/);
  t.match(r.stdout, /total: 3 regressions against runc \(0 known, 3 unexpected\)/);
  t.match(r.stderr, /lxr-runtime fails 3 assertion\(s\) that runc passes/);

  // Without --ci the comparison is only a report.
  t.equal(summaryTool(['compare', base, other, '--known-failures', known]).status, 0);

  writeFileSync(known, [
    'linux_cgroups_memory.t:memory limit is set * # not implemented yet',
    'pidfile.t:* # pid file is written after create returns',
    'hostname.t:1 # a stale entry',
  ].join('\n'));
  const json = join(dir, 'cmp.json');
  const r2 = summaryTool(['compare', base, other, '--known-failures', known, '--ci', '--json', json]);
  t.equal(r2.status, 0, 'known failures do not fail CI');
  t.match(r2.stdout, /#3 \[known \(not implemented yet\)\] memory limit is set correctly/);
  t.match(r2.stdout, /note: known failure no longer seen: hostname\.t:1/);
  const cmp = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(cmp.unexpected, 0);
  t.equal(cmp.regressions, 3);
  t.equal(cmp.files['linux_cgroups_memory.t'].regressions[0].diag, '{"actual": 1, "expected": 2}');
});

t.test('compare reports assertions the other runtime passes and runc fails', async (t) => {
  const dir = tmp(t);
  const base = results(dir, 'runc', runcFiles);
  const other = results(dir, 'other', {
    ...runcFiles,
    'linux_cgroups_memory': [tap('ok 1 - memory limit is set correctly', 'ok 2 - memory kernel is set correctly',
      'ok 3 - memory limit is set correctly', 'not ok 4 - memory kernel is set correctly', '1..4'), 0],
  });
  const known = join(dir, 'known.txt');
  writeFileSync(known, '');
  const r = summaryTool(['compare', base, other, '--known-failures', known, '--ci']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /fail under runc but pass under other:\n  linux_cgroups_memory\.t #2 memory kernel is set correctly/);
  t.match(r.stdout, /0 regressions against runc .*1 improvements/);
});

t.test('a file that runc fails as a whole (non-zero exit) is not used to judge assertions', async (t) => {
  const dir = tmp(t);
  // process_capabilities_fail: runc wrongly accepts CAP_TEST, runs the checks
  // inside the container (all ok) and the file exits 1.
  const failAll = tap('ok 1 - has expected hostname', 'ok 2 - has expected working directory', '1..2');
  const base = results(dir, 'runc', { 'process_capabilities_fail': [failAll, 1], 'hostname': [tap('ok 1 - hostname', '1..1'), 0] });
  const other = results(dir, 'other', { 'process_capabilities_fail': [tap('1..0'), 0], 'hostname': [tap('ok 1 - hostname', '1..1'), 0] });
  const known = join(dir, 'known.txt');
  writeFileSync(known, '');
  const r = summaryTool(['compare', base, other, '--known-failures', known, '--ci']);
  t.equal(r.status, 0, r.stdout);
  t.match(r.stdout, /pass under other:\n  process_capabilities_fail\.t exits 0 \(runc exits 1\)/);
  t.match(r.stdout, /total: 0 regressions against runc \(0 known, 0 unexpected\), 1 improvements/);
});

t.test('user errors get one clear line and exit 2', async (t) => {
  const dir = tmp(t);
  const base = results(dir, 'runc', runcFiles);
  let r = summaryTool(['summary', join(dir, 'nope')]);
  t.equal(r.status, 2);
  t.equal(r.stderr, `tap-summary: results directory not found: ${join(dir, 'nope')}\n`);

  const known = join(dir, 'known.txt');
  writeFileSync(known, '# header\ndefault.t:3\n');
  r = summaryTool(['compare', base, base, '--known-failures', known]);
  t.equal(r.status, 2);
  t.equal(r.stderr, `tap-summary: ${known}:2: missing reason (write "file.t:selector # reason")\n`);

  writeFileSync(join(dir, 'bad.json'), '{"version": 99}');
  r = summaryTool(['compare', base, join(dir, 'bad.json')]);
  t.equal(r.status, 2);
  t.match(r.stderr, /bad\.json: not a conformance summary/);
});

t.test('run.sh names a missing suite tarball and a missing runtime', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const dir = tmp(t);
  let r = spawnSync('bash', [runSh, '--runtime', 'runc'], {
    encoding: 'utf8', env: { ...process.env, RUNTIME_TOOLS_TARBALL: join(dir, 'missing.tar.gz'), CONFORMANCE_WORK: join(dir, 'work') },
  });
  t.equal(r.status, 2);
  t.equal(r.stderr, `conformance/run.sh: runtime-tools tarball not found: ${join(dir, 'missing.tar.gz')} (set RUNTIME_TOOLS_TARBALL)\n`);

  // A tarball that is not runtime-tools is refused before anything is built.
  const fake = join(dir, 'fake.tar.gz');
  mkdirSync(join(dir, 'src', 'x'), { recursive: true });
  t.equal(spawnSync('tar', ['-czf', fake, '-C', join(dir, 'src'), 'x']).status, 0);
  r = spawnSync('bash', [runSh, '--build-only'], {
    encoding: 'utf8', env: { ...process.env, RUNTIME_TOOLS_TARBALL: fake, CONFORMANCE_WORK: join(dir, 'work') },
  });
  t.equal(r.status, 2);
  t.match(r.stderr, /fake\.tar\.gz does not look like runtime-tools with a vendor dir/);
});
