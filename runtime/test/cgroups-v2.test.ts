// The cgroup library on a pure cgroup v2 system: a QEMU guest (test/vm) whose
// /sys/fs/cgroup is cgroup2 with every controller. One boot runs a script that drives
// the library for real processes and, as the oracle, Debian's runc with the same
// resources; it prints "name: value" lines that the assertions below read.
import t from 'tap';
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm, vmAvailable } from '../../test/vm/vm.js';

const here = dirname(fileURLToPath(import.meta.url));
const avail = process.getuid?.() === 0 ? vmAvailable() : { ok: false, reason: 'needs root' };

const RESOURCES = {
  memory: { limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20 },
  cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0', mems: '0' },
  pids: { limit: 20 },
  blockIO: { weight: 500 },
  unified: { 'memory.high': String(60 << 20) },
};
const FILES = ['memory.max', 'memory.low', 'memory.swap.max', 'memory.high', 'cpu.weight', 'cpu.max', 'cpuset.cpus', 'cpuset.mems', 'pids.max', 'io.weight', 'io.bfq.weight'];

// Runs in the guest with node; imports the library bundle next to it.
const GUEST = String.raw`
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import * as cg from './cgroups.mjs';
const RESOURCES = ${JSON.stringify(RESOURCES)};
const FILES = ${JSON.stringify(FILES)};
const out = (k, v) => console.log(k + ': ' + (typeof v === 'string' ? v : JSON.stringify(v)));
const read = (dir, f) => existsSync(dir + '/' + f) ? readFileSync(dir + '/' + f, 'utf8').trim() : '(absent)';
function held(script) {
  const child = spawn('/bin/sh', ['-c', 'read x; ' + script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => setTimeout(() => resolve({ code, signal, stdout, stderr }), 100)));
  return { pid: child.pid, release: () => child.stdin.end('go\n'), exited, kill: () => child.kill('SIGKILL') };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function gone(paths) {
  for (let i = 0; i < 300 && cg.cgroupPids(paths).length; i++) await sleep(10);
  cg.destroyCgroup(paths);
}
const step = async (name, fn) => { console.error('step ' + name); try { await fn(); } catch (e) { out(name + '_error', e.message); } };

// Never outlive the VM's time budget: a stuck step still lets the others' output out.
setTimeout(() => { out('guest_error', 'watchdog: guest script took more than 150 s'); process.exit(9); }, 150_000).unref();
out('layout', cg.detectLayout());

await step('values', async () => {
  const p = cg.resolveCgroupPaths({ id: 'v', cgroupsPath: '/lxrt/values' });
  out('dir', p.dirs.unified);
  const h = held('exec sleep 100');
  const warnings = [];
  cg.createCgroup(p, { ...RESOURCES, memory: { ...RESOURCES.memory, kernel: 1 << 20 } }, h.pid, { warn: (m) => warnings.push(m) });
  out('warnings', warnings);
  for (const f of FILES) out('lxr ' + f, read(p.dirs.unified, f));
  out('procs', read(p.dirs.unified, 'cgroup.procs') === String(h.pid));
  const s = cg.cgroupStats(p);
  out('stats_memory_limit', s.memory.usage.limit);
  out('stats_pids', s.pids);
  cg.updateCgroup(p, { memory: { limit: 128 << 20, swap: -1 }, pids: { limit: -1 }, cpu: { quota: -1, period: 200000 } });
  for (const f of ['memory.max', 'memory.swap.max', 'pids.max', 'cpu.max']) out('updated ' + f, read(p.dirs.unified, f));
  cg.killCgroup(p, 9);
  out('killed', (await h.exited).signal);
  await gone(p);
  out('removed', !existsSync(p.dirs.unified));
});

await step('runc', async () => {
  const B = '/tmp/runc-bundle';
  mkdirSync(B + '/rootfs/bin', { recursive: true });
  copyFileSync('/bin/busybox', B + '/rootfs/bin/busybox');
  execFileSync('runc', ['spec'], { cwd: B });
  const c = JSON.parse(readFileSync(B + '/config.json', 'utf8'));
  c.process.terminal = false;
  c.process.args = ['/bin/busybox', 'sleep', '100'];
  c.linux.resources = { ...c.linux.resources, ...RESOURCES };
  c.linux.cgroupsPath = '/lxrt/runc';
  writeFileSync(B + '/config.json', JSON.stringify(c));
  // All stdio ignored: the container's init keeps whatever it is given open until it starts.
  // A bound, because a synchronous call blocks the watchdog: runc create once hung in the
  // guest, and the whole VM ran into the host's timeout with no step's output.
  execFileSync('runc', ['create', 'oracle'], { cwd: B, stdio: 'ignore', timeout: 60_000 });
  try {
    for (const f of FILES) out('runc ' + f, read('/sys/fs/cgroup/lxrt/runc', f));
  } finally {
    execFileSync('runc', ['delete', '-f', 'oracle'], { stdio: 'ignore', timeout: 60_000 });
  }
});

await step('devices', async () => {
  const p = cg.resolveCgroupPaths({ id: 'd', cgroupsPath: '/lxrt/devices' });
  const h = held('[ "$(head -c1 /dev/zero | wc -c)" = 1 ] && echo zero-read; (echo x >/dev/null) && echo null-write; true');
  cg.createCgroup(p, { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }] }, h.pid);
  h.release();
  const r = await h.exited;
  out('devices_stdout', JSON.stringify(r.stdout));
  out('devices_stderr', JSON.stringify(r.stderr));
  await gone(p);
});

await step('oom', async () => {
  const p = cg.resolveCgroupPaths({ id: 'o', cgroupsPath: '/lxrt/oom' });
  const h = held('head -c 300000000 /dev/zero | tail >/dev/null');
  cg.createCgroup(p, { memory: { limit: 32 << 20, swap: 32 << 20 } }, h.pid);
  out('oom_before', cg.cgroupOomEvents(p));
  h.release();
  const r = await h.exited;
  out('oom_exit', r.code);
  out('oom_after', cg.cgroupOomEvents(p));
  await gone(p);
});

await step('pids', async () => {
  const p = cg.resolveCgroupPaths({ id: 'p', cgroupsPath: '/lxrt/pids' });
  const h = held('for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done; wait');
  cg.createCgroup(p, { pids: { limit: 4 } }, h.pid);
  h.release();
  const r = await h.exited;
  out('pids_exit', r.code);
  out('pids_left', cg.cgroupPids(p).length);
  out('pids_events', read(p.dirs.unified, 'pids.events'));
  cg.killCgroup(p, 9);
  await gone(p);
});

await step('freeze', async () => {
  const p = cg.resolveCgroupPaths({ id: 'f', cgroupsPath: '/lxrt/freeze' });
  const h = held('echo done');
  cg.createCgroup(p, undefined, h.pid);
  await cg.freezeCgroup(p, true);
  out('frozen', read(p.dirs.unified, 'cgroup.events').includes('frozen 1'));
  h.release();
  out('ran_while_frozen', await Promise.race([h.exited.then(() => true), sleep(500).then(() => false)]));
  await cg.freezeCgroup(p, false);
  out('after_thaw', (await h.exited).stdout.trim());
  await gone(p);
});

await step('errors', async () => {
  const h = held('exec sleep 100');
  const cases = {
    unknown_key: { unified: { 'memory.nosuch': '1' } },
    bad_cpuset: { cpu: { cpus: '7' } },
    rt: { cpu: { realtimeRuntime: 1000 } },
  };
  for (const [name, r] of Object.entries(cases)) {
    const p = cg.resolveCgroupPaths({ id: 'e', cgroupsPath: '/lxrt/err-' + name });
    try {
      cg.createCgroup(p, r, h.pid);
      out('error ' + name, 'no error');
    } catch (e) {
      out('error ' + name, e.message);
    }
    out('left ' + name, existsSync(p.dirs.unified));
  }
  h.kill();
});
try { execFileSync('rmdir', ['/sys/fs/cgroup/lxrt']); } catch {}
`;

t.test('cgroup v2 in the test VM', { skip: avail.ok ? false : `VM not available: ${avail.reason}` }, async (t) => {
  // A directory under the repo, so the bundle finds node_modules (koffi) from there.
  const dir = t.testdir({});
  await build({
    entryPoints: [join(here, '..', 'cgroups', 'manager', 'index.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: join(dir, 'cgroups.mjs'),
    external: ['koffi'], logLevel: 'silent',
  });
  writeFileSync(join(dir, 'guest.mjs'), GUEST);
  const r = await runInVm({ command: ['node', join(dir, 'guest.mjs')], cwd: dir, timeoutMs: 240_000 });
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 2));
  }
  const diag = { stdout: r.stdout, stderr: r.stderr, console: r.console.slice(-1500) };
  t.equal(r.exitCode, 0, 'the guest script ran', diag);
  for (const [k, v] of out) if (k.endsWith('_error')) t.fail(`${k}: ${v}`, diag);

  t.equal(out.get('layout'), 'v2');
  t.equal(out.get('dir'), '/sys/fs/cgroup/lxrt/values');
  t.equal(out.get('procs'), 'true', 'the process was moved in');
  t.equal(out.get('warnings'), JSON.stringify(['Kernel memory settings are ignored and will be removed']));
  // The oracle: every file as runc 1.1 writes it for the same resources.
  for (const f of FILES) t.equal(out.get(`lxr ${f}`), out.get(`runc ${f}`), `${f} matches runc`, diag);
  t.equal(out.get('lxr memory.max'), String(64 << 20));
  t.equal(out.get('lxr memory.swap.max'), String(32 << 20), 'swap - limit');
  t.equal(out.get('lxr cpu.weight'), '39', 'runc 1.1 linear conversion of 1024 shares');
  t.equal(out.get('lxr cpu.max'), '50000 100000');
  t.equal(out.get('lxr memory.high'), String(60 << 20), 'unified key written verbatim');
  t.equal(out.get('stats_memory_limit'), String(64 << 20));
  t.equal(out.get('stats_pids'), JSON.stringify({ current: 1, limit: 20 }));
  t.equal(out.get('updated memory.max'), String(128 << 20));
  t.equal(out.get('updated memory.swap.max'), 'max');
  t.equal(out.get('updated pids.max'), 'max');
  t.equal(out.get('updated cpu.max'), 'max 200000');
  t.equal(out.get('killed'), 'SIGKILL', 'cgroup.kill');
  t.equal(out.get('removed'), 'true');

  t.equal(out.get('devices_stdout'), JSON.stringify('null-write\n'), 'eBPF filter: /dev/zero denied, /dev/null allowed');
  t.match(out.get('devices_stderr') ?? '', /\/dev\/zero.*Operation not permitted/);
  t.equal(out.get('oom_before'), '0');
  t.not(out.get('oom_exit'), '0', 'the allocating pipeline failed');
  t.ok(Number(out.get('oom_after')) >= 1, 'memory.events oom_kill counted it');
  t.equal(out.get('pids_exit'), '2', 'the forking shell gave up');
  t.equal(out.get('pids_left'), '3', 'the limit (4) minus the shell');
  t.match(out.get('pids_events') ?? '', /max [1-9]/);
  t.equal(out.get('frozen'), 'true');
  t.equal(out.get('ran_while_frozen'), 'false');
  t.equal(out.get('after_thaw'), 'done');
  t.match(out.get('error unknown_key') ?? '', /^linux\.resources\.unified\["memory\.nosuch"\]: unknown cgroup v2 key \(no such file in \/sys\/fs\/cgroup\/lxrt\/err-unknown_key\)$/);
  t.match(out.get('error bad_cpuset') ?? '', /^linux\.resources\.cpu\.cpus: writing "7" to .*cpuset\.cpus: .*\(this cgroup can use CPUs 0-1\)$/);
  t.match(out.get('error rt') ?? '', /^linux\.resources\.cpu\.realtimeRuntime: not supported on cgroup v2/);
  for (const name of ['unknown_key', 'bad_cpuset', 'rt']) t.equal(out.get(`left ${name}`), 'false', `${name}: nothing left behind`);
});
