// linux.resources through lxr-runtime on a pure cgroup v2 system, with Debian's runc 1.1.5
// as the oracle (issue 7). One QEMU guest boot (test/vm) runs GUEST below: the same
// config.json (from `runc spec`) under runc and under `node dist/lxr-runtime.js`, then
// prints one JSON line with the cgroup files each runtime wrote and what the containers
// did. The assertions are here, on the host: every file must match runc's, except the
// deviations listed in DEVIATIONS, each recorded with its reason in conformance/README.md
// ("cgroups").
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm, vmAvailable, vmWorkDir } from '../../test/vm/vm.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNTIME = join(REPO, 'dist', 'lxr-runtime.js');

function available(): { ok: boolean; reason?: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root' };
  if (spawnSync('runc', ['--version']).status !== 0) return { ok: false, reason: 'runc (the oracle) is not installed: apt-get install runc' };
  if (!existsSync(RUNTIME)) return { ok: false, reason: `${RUNTIME} is missing: run node scripts/build.mjs all` };
  return vmAvailable();
}
const avail = available();
// About 80 s on a quiet machine; when the host is loaded (other test files, other VMs) every
// lxr-runtime call in the guest slows from ~3 s to ~12 s. Tell the runner (.taprc says 300 s).
if (avail.ok) t.setTimeout(560_000);

// Runs in the guest (plain JS for node: tap and TypeScript cost a minute there). Runtime
// calls are the expensive part (2 to 5 s each for lxr-runtime under TCG), so runc goes
// first and lxr-runtime's scenarios then run in two lanes, one per guest CPU.
const GUEST = String.raw`
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';

const LXR = process.argv[2];
const T0 = Date.now();
const R = { runc: {}, lxr: {}, failures: {}, env: {}, log: [] };
const CG = '/sys/fs/cgroup';
const ROOTS = { runc: '/run/t-runc', lxr: '/run/t-lxr' };
const CMD = { runc: ['runc', '--root', ROOTS.runc], lxr: [process.execPath, LXR, '--root', ROOTS.lxr] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const read = (p) => { try { return readFileSync(p, 'utf8').trim(); } catch (e) { return '(' + (e.code || e.message) + ')'; } };
// Progress also goes to stderr at once, so a guest that times out still shows where it was.
const note = (m) => { const l = ((Date.now() - T0) / 1000).toFixed(1) + 's ' + m; R.log.push(l); process.stderr.write(l + '\n'); };
function finish() {
  R.elapsedMs = Date.now() - T0;
  process.stdout.write('\nLXR-RESULT ' + JSON.stringify(R) + '\n');
  process.exit(0);
}
setTimeout(() => { R.failures.watchdog = 'the guest script took more than 400 s'; finish(); }, 400000).unref();

let n = 0;
// stdout/stderr go to files: a created container keeps what it inherits open.
async function rt(name, args) {
  const o = '/tmp/o' + ++n, e = '/tmp/e' + n;
  const ofd = openSync(o, 'w'), efd = openSync(e, 'w');
  const t = Date.now();
  const child = spawn(CMD[name][0], [...CMD[name].slice(1), ...args], { stdio: ['ignore', ofd, efd] });
  closeSync(ofd); closeSync(efd);
  const killer = setTimeout(() => child.kill('SIGKILL'), 60000);
  const status = await new Promise((res) => child.on('exit', (code, sig) => res(code ?? sig)));
  clearTimeout(killer);
  note(name + ' ' + args.join(' ') + ' -> ' + status + ' (' + (Date.now() - t) + ' ms)');
  return { status, stdout: readFileSync(o, 'utf8'), stderr: readFileSync(e, 'utf8') };
}
async function until(f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (f()) return true; await sleep(50); }
  return f();
}

const BASE = (() => {
  mkdirSync('/tmp/spec', { recursive: true });
  execFileSync('runc', ['spec'], { cwd: '/tmp/spec' });
  const c = JSON.parse(readFileSync('/tmp/spec/config.json', 'utf8'));
  c.process.terminal = false;
  c.root.readonly = false;
  return c;
})();
const APPLETS = ['sh', 'cat', 'cut', 'echo', 'sleep', 'head', 'tail', 'mknod', 'grep', 'true'];
// One bundle per runtime and case; the configs differ only in cgroupsPath.
function bundle(r, name, edit) {
  const B = '/tmp/b/' + r + '-' + name;
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp']) mkdirSync(B + '/rootfs/' + d, { recursive: true });
  copyFileSync('/bin/busybox', B + '/rootfs/bin/busybox');
  for (const a of APPLETS) symlinkSync('busybox', B + '/rootfs/bin/' + a);
  const c = structuredClone(BASE);
  c.linux.cgroupsPath = '/t/' + r + '-' + name;
  edit(c);
  writeFileSync(B + '/config.json', JSON.stringify(c, null, 1));
  return B;
}

// The guest has no disk: a null_blk device gives the io throttles a real major:minor.
let blk = null;
try {
  execFileSync('modprobe', ['null_blk', 'nr_devices=1'], { stdio: 'ignore' });
  const [major, minor] = read('/sys/block/nullb0/dev').split(':').map(Number);
  if (major > 0) blk = { major, minor };
} catch (e) { R.env.nullBlk = String(e.message); }
R.env.blk = blk;
// As a systemd host would have it: the controllers enabled below the root.
writeFileSync(CG + '/cgroup.subtree_control', '+cpuset +cpu +io +memory +hugetlb +pids');

const MiB = 1 << 20;
const FULL = {
  memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 96 * MiB },
  cpu: { shares: 512, quota: 50000, period: 100000, burst: 20000, cpus: '0', mems: '0' },
  pids: { limit: 50 },
  blockIO: { weight: 500 },
  hugepageLimits: [{ pageSize: '2MB', limit: 8 * MiB }],
  unified: { 'memory.high': String(60 * MiB) },
};
if (blk) {
  const d = (rate) => [{ major: blk.major, minor: blk.minor, rate }];
  Object.assign(FULL.blockIO, { throttleReadBpsDevice: d(MiB), throttleWriteBpsDevice: d(2 * MiB), throttleReadIOPSDevice: d(100), throttleWriteIOPSDevice: d(200) });
}
// The other values: idle, -1, 0, the minimum weight, a quota without a period, memory without swap.
const OTHER = {
  memory: { limit: 48 * MiB, reservation: -1 },
  cpu: { idle: 1, quota: 30000, cpus: '1' },
  pids: { limit: 0 },
  blockIO: { weight: 10 },
};
const FILES = ['memory.max', 'memory.low', 'memory.high', 'memory.swap.max', 'memory.oom.group', 'cpu.weight', 'cpu.idle', 'cpu.max', 'cpu.max.burst',
  'cpuset.cpus', 'cpuset.mems', 'pids.max', 'io.weight', 'io.bfq.weight', 'io.max', 'hugetlb.2MB.max', 'hugetlb.2MB.rsvd.max', 'hugetlb.1GB.max',
  'cgroup.controllers', 'cgroup.subtree_control', 'cgroup.type', 'cgroup.freeze'];
const files = (dir) => Object.fromEntries(FILES.map((f) => [f, read(dir + '/' + f)]));
// What the container sees of its cgroups, written by its init first thing.
const VIEW = 'cat /proc/self/cgroup > /view; grep " /sys/fs/cgroup " /proc/self/mountinfo | cut -d" " -f4- >> /view; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max >> /view 2>&1; ';
function proc(pid) {
  const st = read('/proc/' + pid + '/stat');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], cpu: Number(f[11]) + Number(f[12]) };
}

// 1. Every field at once; update with flags and with -r; events --stats; pause/resume of a busy
// loop. (runtime state of a paused container is tested on the host, in cgroup-commands.test.ts; on v2
// it is cgroup.freeze, checked here.)
async function full(r, out) {
  const id = r + '-full', dir = CG + '/t/' + id;
  const B = bundle(r, 'full', (c) => {
    c.linux.resources = { ...c.linux.resources, ...FULL };
    c.process.args = ['sh', '-c', VIEW + 'while [ ! -e /busy ]; do sleep 0.1; done; while [ ! -e /stop ]; do :; done; exec sleep 100'];
  });
  const cr = await rt(r, ['run', '--detach', '--bundle', B, id]);
  out.create = { status: cr.status, stderr: cr.stderr };
  out.created = files(dir);
  const pid = Number(read(dir + '/cgroup.procs').split('\n')[0]);
  await until(() => existsSync(B + '/rootfs/view') && read(B + '/rootfs/view').split('\n').length >= 4, 5000);
  out.view = read(B + '/rootfs/view');
  const u1 = await rt(r, ['update', '--memory', '128m', '--memory-swap', '256m', '--memory-reservation', '16m', '--cpu-share', '256', '--cpu-quota', '20000',
    '--cpu-period', '50000', '--cpuset-cpus', '0-1', '--pids-limit', '40', '--blkio-weight', '300', id]);
  out.update = { status: u1.status, stderr: u1.stderr, files: files(dir) };
  const stats = await rt(r, ['events', '--stats', id]);
  try { out.stats = JSON.parse(stats.stdout); } catch { out.stats = stats.stdout + stats.stderr; }
  writeFileSync('/tmp/res-' + r + '.json', JSON.stringify({ memory: { limit: -1, swap: -1 }, cpu: { quota: -1, shares: 1024 }, pids: { limit: -1 } }));
  const u2 = await rt(r, ['update', '-r', '/tmp/res-' + r + '.json', id]);
  out.updateR = { status: u2.status, stderr: u2.stderr, files: files(dir) };

  // A busy loop is running (R) and gathers CPU time; paused, it sleeps (S) in the freezer's trap and gathers none.
  writeFileSync(B + '/rootfs/busy', '');
  await until(() => proc(pid).state === 'R', 3000);
  const p = await rt(r, ['pause', id]);
  const a = proc(pid);
  await sleep(400);
  const b = proc(pid);
  out.paused = { status: p.status, stderr: p.stderr,
    freeze: read(dir + '/cgroup.freeze'), events: read(dir + '/cgroup.events'), wchan: read('/proc/' + pid + '/wchan'), procState: [a.state, b.state], cpuTicks: b.cpu - a.cpu };
  const q = await rt(r, ['resume', id]);
  const c = proc(pid);
  const ran = await until(() => proc(pid).cpu > c.cpu, 5000);
  writeFileSync(B + '/rootfs/stop', ''); // the busy loop would slow the other lane down
  out.resumed = { status: q.status, stderr: q.stderr, freeze: read(dir + '/cgroup.freeze'), procState: c.state, ran };
  const k = await rt(r, ['delete', '--force', id]);
  out.deleted = { status: k.status, stderr: k.stderr, cgroupLeft: existsSync(dir), stateLeft: existsSync(ROOTS[r] + '/' + id) };
}

async function other(r, out) {
  const id = r + '-other';
  const B = bundle(r, 'other', (c) => {
    c.linux.resources = { ...c.linux.resources, ...OTHER };
    c.process.args = ['sleep', '100'];
  });
  const cr = await rt(r, ['create', '--bundle', B, id]);
  out.other = { status: cr.status, stderr: cr.stderr, files: files(CG + '/t/' + id) };
  await rt(r, ['delete', '--force', id]);
}

// 2. Over memory.max the OOM killer strikes, and events reports it.
async function oom(r, out) {
  const id = r + '-oom';
  const B = bundle(r, 'oom', (c) => {
    c.linux.resources = { ...c.linux.resources, memory: { limit: 32 * MiB, swap: 32 * MiB } };
    // The allocating pipeline volunteers as the OOM victim (oom_score_adj 1000): under a slow
    // guest a second OOM can strike while the first victim is still exiting, and it must not
    // take the shell that reports the status.
    c.process.args = ['sh', '-c', 'while [ ! -e /go ]; do sleep 0.1; done; (echo 1000 > /proc/self/oom_score_adj; head -c 300m /dev/zero | tail >/dev/null); echo status $? > /status; sleep 100'];
  });
  await rt(r, ['run', '--detach', '--bundle', B, id]);
  const ev = spawn(CMD[r][0], [...CMD[r].slice(1), 'events', '--interval', '1s', id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = '';
  ev.stdout.on('data', (d) => (lines += d));
  ev.stderr.on('data', (d) => (lines += d));
  // events prints the stats first: from then on it is watching.
  out.eventsStarted = await until(() => lines.includes('"stats"'), 30000);
  writeFileSync(B + '/rootfs/go', '');
  // First the kill (slow in a loaded TCG guest), then its event: events looks once a second.
  out.oomStatus = (await until(() => existsSync(B + '/rootfs/status'), 60000)) && read(B + '/rootfs/status');
  out.oomReported = await until(() => lines.includes('"oom"'), 20000);
  out.oomKills = /oom_kill (\d+)/.exec(read(CG + '/t/' + id + '/memory.events'))?.[1];
  ev.kill('SIGKILL');
  out.oomLines = lines.split('\n').filter((l) => l && !l.includes('"stats"'));
  await rt(r, ['delete', '--force', id]);
}

// 3. pids.max stops a fork bomb. The config has no device rules at all: the defaults still
// apply, so a device outside them (c 1:12) is denied, not open to everything.
async function pids(r, out) {
  const B = bundle(r, 'pids', (c) => {
    c.linux.resources = { pids: { limit: 5 } };
    for (const k of Object.keys(c.process.capabilities)) c.process.capabilities[k].push('CAP_MKNOD');
    c.process.args = ['sh', '-c', 'mknod /tmp/m12 c 1 12; (echo x > /tmp/m12) 2>&1; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo all forked'];
  });
  const p = await rt(r, ['run', '--bundle', B, r + '-pids']);
  out.forkBomb = { status: p.status, stdout: p.stdout, forkErrors: p.stderr.split('\n').filter((l) => /fork|unavailable/i.test(l)).length };
}

// 4. The eBPF device filter: c 1:12 for writing only, plus the default devices; mknod is allowed.
// The mem driver has no minor 12 or 13: an open the filter lets through fails with ENXIO, one it
// denies with EPERM.
async function devices(r, out) {
  const D = bundle(r, 'dev', (c) => {
    c.linux.resources = { ...c.linux.resources, devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 12, access: 'w' }] };
    for (const k of Object.keys(c.process.capabilities)) c.process.capabilities[k].push('CAP_MKNOD');
    c.process.args = ['sh', '-c', 'mknod /tmp/m12 c 1 12 && mknod /tmp/m13 c 1 13 && for t in "echo x > /tmp/m12" "head -c1 /tmp/m12" "echo x > /tmp/m13" "echo x > /dev/null" "head -c1 /dev/zero"; do sh -c "$t" >/dev/null 2>/tmp/err && echo "$t: ok" || echo "$t: $(cat /tmp/err)"; done'];
  });
  const d = await rt(r, ['run', '--bundle', D, r + '-dev']);
  out.devices = { status: d.status, stdout: d.stdout, stderr: d.stderr };
}

// 5. Bad input: create fails, and leaves neither a cgroup nor a state directory.
const BAD = {
  negative: (c) => (c.linux.resources.memory = { limit: -5 }),
  cpuset: (c) => (c.linux.resources.cpu = { cpus: '7' }),
  unified: (c) => (c.linux.resources.unified = { 'memory.nosuch': '1' }),
  dotdot: (c) => (c.linux.cgroupsPath = '/t/../../escape'),
};
async function bad(r, out) {
  out.bad = {};
  for (const [name, edit] of Object.entries(BAD)) {
    const id = r + '-bad-' + name;
    const B = bundle(r, 'bad-' + name, (c) => { c.process.args = ['true']; edit(c); });
    const x = await rt(r, ['create', '--bundle', B, id]);
    out.bad[name] = { status: x.status, stderr: x.stderr.trim(), cgroupLeft: existsSync(CG + '/t/' + id) || existsSync(CG + '/escape'), stateLeft: existsSync(ROOTS[r] + '/' + id) };
    if (x.status === 0) await rt(r, ['delete', '--force', id]);
  }
}

async function guarded(name, r, fn) {
  note('begin ' + r + ' ' + name);
  try { await fn(r, R[r]); } catch (e) { R.failures[r + ' ' + name] = e.stack || String(e); }
}
for (const [name, fn] of Object.entries({ full, other, oom, pids, devices, bad })) await guarded(name, 'runc', fn);
await Promise.all([
  (async () => { await guarded('full', 'lxr', full); await guarded('oom', 'lxr', oom); })(),
  (async () => { for (const [name, fn] of Object.entries({ other, pids, devices, bad })) await guarded(name, 'lxr', fn); })(),
]);

// The kernel's word on whom the OOM killer chose, for the diagnostics.
try { R.env.oomKills = execFileSync('dmesg', { encoding: 'utf8' }).split('\n').filter((l) => /Killed process|oom-kill:/.test(l)); } catch {}
R.env.leftUnderT = existsSync(CG + '/t') ? readdirSync(CG + '/t', { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
try { execFileSync('rmdir', [CG + '/t']); } catch {}
finish();
`;

interface Side {
  create: { status: number; stderr: string };
  created: Record<string, string>;
  view: string;
  update: { status: number; stderr: string; files: Record<string, string> };
  updateR: { status: number; stderr: string; files: Record<string, string> };
  stats: unknown;
  paused: { status: number; stderr: string; freeze: string; events: string; wchan: string; procState: string[]; cpuTicks: number };
  resumed: { status: number; stderr: string; freeze: string; procState: string; ran: boolean };
  deleted: { status: number; stderr: string; cgroupLeft: boolean; stateLeft: boolean };
  other: { status: number; stderr: string; files: Record<string, string> };
  eventsStarted: boolean;
  oomReported: boolean;
  oomStatus: string | false;
  oomKills: string | undefined;
  oomLines: string[];
  forkBomb: { status: number; stdout: string; forkErrors: number };
  devices: { status: number; stdout: string; stderr: string };
  bad: Record<string, { status: number; stderr: string; cgroupLeft: boolean; stateLeft: boolean }>;
}
interface GuestResult {
  runc: Side;
  lxr: Side;
  failures: Record<string, string>;
  env: { blk: { major: number; minor: number } | null; nullBlk?: string; leftUnderT: string[]; oomKills?: string[] };
  log: string[];
  elapsedMs: number;
}

// Where lxr deliberately differs from runc 1.1.5; conformance/README.md "cgroups" gives the reasons.
// case -> file -> [runc's value, lxr's value]
const DEVIATIONS: Record<string, Record<string, [string, string]>> = {
  created: {
    'cpu.max.burst': ['0', '20000'], // runc 1.1 ignores cpu.burst (runtime-spec v1.1 field, runc 1.2 writes it)
    'hugetlb.2MB.rsvd.max': ['max', String(8 << 20)], // runc 1.2 also limits reservations
  },
  update: { 'cpu.max.burst': ['0', '20000'], 'hugetlb.2MB.rsvd.max': ['max', String(8 << 20)] },
  updateR: { 'cpu.max.burst': ['0', '20000'], 'hugetlb.2MB.rsvd.max': ['max', String(8 << 20)] },
  other: {
    'cpu.idle': ['0', '1'], // runc 1.1 ignores cpu.idle (runc 1.2 writes it)
    'cpu.weight': ['100', '0'], // what the kernel shows for an idle cgroup
    'pids.max': ['max', '0'], // runtime-spec v1.3.0: 0 is a limit; runc 1.1 leaves it unset
  },
};

function flatten(x: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (x && typeof x === 'object' && !Array.isArray(x)) {
    for (const [k, v] of Object.entries(x)) for (const [kk, vv] of flatten(v, `${prefix}.${k}`)) out.set(kk, vv);
  } else out.set(prefix, x);
  return out;
}

t.test('linux.resources through lxr-runtime on cgroup v2, runc as the oracle', { skip: avail.ok ? false : `VM not available: ${avail.reason}` }, async (t) => {
  // Not t.testdir(): its path is the same for every run of this file, and other engineers'
  // `npm test` may run it at the same moment. The guest sees the host's /var/tmp, not /tmp.
  mkdirSync(vmWorkDir(), { recursive: true });
  const dir = mkdtempSync(join(vmWorkDir(), 'cgroups-v2-runtime-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'guest.mjs'), GUEST);
  const started = Date.now();
  const vm = await runInVm({ command: ['node', join(dir, 'guest.mjs'), RUNTIME], cwd: dir, timeoutMs: 480_000 });
  const line = vm.stdout.split('\n').find((l) => l.startsWith('LXR-RESULT '));
  const diag = { stdout: vm.stdout.slice(-3000), stderr: vm.stderr.slice(-3000), console: vm.console.slice(-1500) };
  t.equal(vm.exitCode, 0, 'the guest script ran', diag);
  if (!line) return t.fail('the guest printed no result', diag);
  const r = JSON.parse(line.slice('LXR-RESULT '.length)) as GuestResult;
  // LXR_VM_KEEP (test/vm's debugging switch) also keeps the guest's raw result.
  if (process.env['LXR_VM_KEEP']) writeFileSync(join(vmWorkDir(), 'cgroups-v2-runtime.result.json'), JSON.stringify(r, null, 1));
  t.comment(`VM boot to result ${vm.elapsedMs} ms, guest script ${r.elapsedMs} ms, test ${Date.now() - started} ms`);
  const log = { log: r.log };
  t.same(r.failures, {}, 'no scenario threw in the guest', log);
  const { runc, lxr } = r;

  t.test('files written at create, by update (flags), by update -r, and for the other values', async (t) => {
    t.ok(r.env.blk, 'null_blk gave the io throttles a device', { ...r.env });
    for (const side of [runc, lxr]) t.same([side.create.status, side.other.status], [0, 0], 'both containers were made', { create: side.create, other: side.other });
    for (const [name, a, b] of [
      ['created', runc.created, lxr.created], ['update', runc.update.files, lxr.update.files],
      ['updateR', runc.updateR.files, lxr.updateR.files], ['other', runc.other.files, lxr.other.files],
    ] as const) {
      for (const f of Object.keys(a)) {
        const dev = DEVIATIONS[name]?.[f];
        if (dev) t.same([a[f], b[f]], dev, `${name} ${f}: runc ${dev[0]}, lxr ${dev[1]} (deliberate)`);
        else t.equal(b[f], a[f], `${name} ${f} = ${JSON.stringify(a[f])} as runc`);
      }
    }
    // Spot checks of the values themselves, so that a runc change cannot hide an lxr bug.
    t.equal(lxr.created['memory.max'], String(64 << 20));
    t.equal(lxr.created['memory.swap.max'], String(32 << 20), 'swap is memory+swap in the spec');
    t.equal(lxr.created['cpu.weight'], '20', '512 shares');
    t.equal(lxr.created['io.max'], `${r.env.blk?.major}:${r.env.blk?.minor} rbps=1048576 wbps=2097152 riops=100 wiops=200`);
    t.equal(lxr.created['memory.high'], String(60 << 20), 'unified');
    t.equal(lxr.update.files['cpu.max'], '20000 50000');
    t.equal(lxr.update.files['memory.swap.max'], String(128 << 20));
    t.equal(lxr.updateR.files['memory.max'], 'max');
    t.equal(lxr.updateR.files['pids.max'], 'max');
    t.equal(lxr.other.files['cpu.max'], '30000 100000', 'a quota alone keeps the default period');
    t.same([runc.update.status, lxr.update.status, runc.updateR.status, lxr.updateR.status], [0, 0, 0, 0], 'updates succeeded', { runc: runc.update.stderr, lxr: lxr.update.stderr });
  });

  t.test('what the container sees of its cgroup', async (t) => {
    const [rv, lv] = [runc.view.split('\n'), lxr.view.split('\n')];
    t.equal(lv[0], '0::/', 'its own cgroup namespace root');
    t.equal(lv[0], rv[0]);
    // mountinfo from the root field on: "/ /sys/fs/cgroup rw,... - cgroup2 SOURCE rw,nsdelegate".
    const mountFields = (l: string | undefined): string[] => {
      const [before, after] = (l ?? '').split(' - ');
      const a = (after ?? '').split(' ');
      return [before!.split(' ').slice(0, 3).join(' '), a[0]!, a[2]!];
    };
    t.same(mountFields(lv[1]), mountFields(rv[1]), 'the /sys/fs/cgroup mount: root, options, type and super options as runc\'s', { runc: rv[1], lxr: lv[1] });
    t.same(lv.slice(2), rv.slice(2), 'memory.max and pids.max read inside the container');
  });

  t.test('events --stats has runc\'s shape and values', async (t) => {
    const [a, b] = [flatten(runc.stats), flatten(lxr.stats)];
    // lxr also reports cpuset and memory peak on v2 (runc 1.1 only on v1); see conformance/README.md.
    const extra = new Set(['.data.cpuset.cpus', '.data.cpuset.mems', '.data.memory.usage.max']);
    // runc omits zero counters (omitempty), and whether the CFS quota throttled a container
    // depends on how busy the machine was: those members may be present on one side only.
    const loadDependent = (k: string): boolean => k.startsWith('.data.cpu.throttling.');
    t.same([...b.keys()].filter((k) => !a.has(k) && !extra.has(k) && !loadDependent(k)), [], 'no member runc lacks, besides the documented ones');
    t.same([...a.keys()].filter((k) => !b.has(k) && !loadDependent(k)), [], 'every member runc prints');
    for (const k of [...a.keys(), ...b.keys()].filter(loadDependent)) {
      const v = Number(a.get(k) ?? b.get(k));
      t.ok(Number.isInteger(v) && v > 0, `${k} is a positive count when printed`);
    }
    for (const k of ['.type', '.data.memory.usage.limit', '.data.memory.swap.limit', '.data.pids.limit']) {
      t.equal(b.get(k), a.get(k), `${k} = ${JSON.stringify(a.get(k))}`);
    }
    // Not compared: the init's polling loop forks a `sleep` now and then.
    t.ok(Number(b.get('.data.pids.current')) >= 1, 'pids.current counts the init');
  });

  t.test('pause freezes the processes, resume thaws them', async (t) => {
    for (const [name, s] of [['runc', runc], ['lxr', lxr]] as const) {
      t.equal(s.paused.status, 0, `${name} pause`, { ...s.paused });
      t.equal(s.paused.freeze, '1');
      t.match(s.paused.events, /frozen 1/);
      t.same(s.paused.procState, ['S', 'S'], `${name}: the busy loop sleeps in /proc/PID/stat`);
      t.equal(s.paused.cpuTicks, 0, `${name}: and gathers no CPU time`);
      t.equal(s.resumed.status, 0, `${name} resume`, { ...s.resumed });
      t.equal(s.resumed.freeze, '0');
      t.ok(s.resumed.ran, `${name}: after resume it runs again`);
      t.same(s.deleted, { status: 0, stderr: '', cgroupLeft: false, stateLeft: false }, `${name} delete --force removes the cgroup and the state`);
    }
    t.equal(lxr.paused.wchan, runc.paused.wchan, `frozen in ${runc.paused.wchan}, as under runc`);
  });

  t.test('memory.max: the OOM killer and events', async (t) => {
    for (const [name, s] of [['runc', runc], ['lxr', lxr]] as const) {
      t.ok(s.eventsStarted, `${name} events started`);
      t.equal(s.oomStatus, 'status 137', `${name}: the allocation was SIGKILLed`, { kernel: r.env.oomKills });
      t.ok(Number(s.oomKills) >= 1, `${name}: memory.events counts the kill`);
      t.ok(s.oomReported, `${name} events reported the oom`, { lines: s.oomLines });
    }
    t.same(lxr.oomLines.slice(0, 1), [JSON.stringify({ type: 'oom', id: 'lxr-oom' })], 'the same line as runc\'s', { runc: runc.oomLines });
    t.same(runc.oomLines.slice(0, 1), [JSON.stringify({ type: 'oom', id: 'runc-oom' })]);
  });

  t.test('pids.max stops a fork bomb; without device rules the defaults still hold', async (t) => {
    t.equal(lxr.forkBomb.stdout, 'sh: can\'t create /tmp/m12: Operation not permitted\n', 'the loop did not get to "all forked", and c 1:12 was denied');
    t.ok(lxr.forkBomb.forkErrors > 0, 'the shell said it could not fork');
    t.same(lxr.forkBomb, runc.forkBomb, 'as under runc');
  });

  t.test('denied devices cannot be opened (eBPF)', async (t) => {
    const expected = [
      'echo x > /tmp/m12: sh: can\'t create /tmp/m12: No such device or address',
      'head -c1 /tmp/m12: head: /tmp/m12: Operation not permitted',
      'echo x > /tmp/m13: sh: can\'t create /tmp/m13: Operation not permitted',
      'echo x > /dev/null: ok',
      'head -c1 /dev/zero: ok',
      '',
    ].join('\n');
    t.equal(lxr.devices.stdout, expected, 'c 1:12 passes the filter for writing (ENXIO from the driver), not for reading (EPERM); c 1:13 is denied; the defaults pass', { ...lxr.devices });
    t.same(lxr.devices, runc.devices, 'as under runc');
  });

  t.test('bad input: a clear one-line error, nothing left behind', async (t) => {
    const want: Record<string, RegExp> = {
      negative: /^lxr-runtime: linux\.resources\.memory\.limit: must be -1 \(unlimited\) or a number of bytes, got -5$/,
      cpuset: /^lxr-runtime: linux\.resources\.cpu\.cpus: writing "7" to \/sys\/fs\/cgroup\/t\/lxr-bad-cpuset\/cpuset\.cpus: .*\(this cgroup can use CPUs 0-1\)$/,
      unified: /^lxr-runtime: linux\.resources\.unified\["memory\.nosuch"\]: unknown cgroup v2 key/,
      dotdot: /^lxr-runtime: linux\.cgroupsPath: "\/t\/\.\.\/\.\.\/escape" escapes its cgroup hierarchy with "\.\."$/,
    };
    for (const [name, re] of Object.entries(want)) {
      const b = lxr.bad[name]!;
      t.not(b.status, 0, `${name}: create failed`);
      t.match(b.stderr, re, `${name}: the message names the field`);
      t.notOk(b.stderr.includes('\n'), `${name}: one line`);
      t.same([b.cgroupLeft, b.stateLeft], [false, false], `${name}: no cgroup and no state left`);
    }
    // runc fails the first three too (from the kernel's write), and clamps the "..".
    for (const name of ['negative', 'cpuset', 'unified']) t.not(runc.bad[name]!.status, 0, `runc fails ${name} too`);
    t.equal(runc.bad['dotdot']!.status, 0, 'runc accepts /t/../../escape (it makes /escape): lxr refuses, deliberately');
    t.same(r.env.leftUnderT, [], 'no container cgroup left under /sys/fs/cgroup/t in the guest');
  });
});
