// The cgroup library on this host's cgroup v1 / hybrid hierarchies, with real processes:
// values land in the right files, the kernel enforces them, bad input fails cleanly.
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cgroupFrozen, cgroupOomEvents, cgroupPids, cgroupStats, createCgroup, destroyCgroup, detectLayout, freezeCgroup, killCgroup,
  resolveCgroupPaths, updateCgroup, type CgroupPaths,
} from '../cgroups/manager/index.js';
import { readMounts } from '../cgroups/layout.js';
import { removeCgroupDir } from '../cgroups/tree.js';
import type { Resources } from '../../oci-spec/types.js';
import { until } from '../../test/helpers/until.js';

const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;
const fsType = (p: string): number | undefined => (existsSync(p) ? Number(statfsSync(p).type) : undefined);
const isV1Host = fsType('/sys/fs/cgroup/memory') === CGROUP_SUPER_MAGIC && fsType('/sys/fs/cgroup') !== CGROUP2_SUPER_MAGIC;
const skip = process.getuid?.() !== 0 ? 'needs root' : !isV1Host ? 'needs cgroup v1 controllers at /sys/fs/cgroup/<name>' : false;

const PREFIX = `/lxr-test-${process.pid}`;
let seq = 0;
const mounts = isV1Host ? readMounts() : undefined;
const mounted = (c: string): boolean => !!mounts?.v1.has(c);

/** Each test's cgroups live under PREFIX; this removes PREFIX in every hierarchy at the end. */
t.teardown(() => {
  if (!mounts) return;
  for (const m of [...mounts.v1.values(), ...(mounts.unified ? [mounts.unified] : [])]) {
    try {
      removeCgroupDir(join(m.mountPoint, PREFIX));
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
});

function newPaths(): CgroupPaths {
  const id = `c${++seq}`;
  return resolveCgroupPaths({ id, cgroupsPath: `${PREFIX}/${id}` });
}

interface Held {
  child: ChildProcess;
  pid: number;
  /** Let the held command run. */
  release(): void;
  /** stdout/stderr so far */
  output(): { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * A shell that waits for one line on stdin before it runs `script`, so it can be moved
 * into a cgroup first: whatever `script` does happens inside the cgroup.
 */
function held(script: string): Held {
  const child = spawn('/bin/sh', ['-c', `read x; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  // On exit, not close: background children may keep the pipes open much longer.
  // Output still in flight gets a moment to arrive.
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      void Promise.race([closed, new Promise((r) => setTimeout(r, 200))]).then(() => resolve({ code, signal, stdout, stderr }));
    }));
  return { child, pid: child.pid!, release: () => child.stdin!.end('go\n'), output: () => ({ stdout, stderr }), exited };
}

function cgroupOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, ctrls, path] = line.split(':');
    out.set(ctrls === '' ? 'unified' : ctrls!, path!);
  }
  return out;
}

const read = (dir: string | undefined, file: string): string => readFileSync(join(dir!, file), 'utf8').trim();

/** Kill what is left (if anything) and remove the cgroup; used in teardowns. */
async function finish(paths: CgroupPaths, h?: Held): Promise<void> {
  if (h && h.child.exitCode === null && h.child.signalCode === null) {
    h.child.kill('SIGKILL');
    await h.exited;
  }
  try {
    killCgroup(paths, 9);
  } catch {
    // already gone
  }
  for (let i = 0; i < 100 && cgroupPids(paths).length; i++) await new Promise((r) => setTimeout(r, 10));
  destroyCgroup(paths);
}

/**
 * blkio weights need an I/O scheduler with weights (BFQ): where the kernel has none (no
 * blkio.weight or blkio.bfq.weight at the hierarchy's root), runc fails on them too.
 */
function blkioWeights(): boolean {
  const root = mounts?.v1.get('blkio')?.mountPoint;
  return !!root && (existsSync(join(root, 'blkio.weight')) || existsSync(join(root, 'blkio.bfq.weight')));
}

t.test('cgroup v1 library', { skip }, async (t) => {
  t.test('detectLayout reports what the filesystem types say', async (t) => {
    const unified = fsType('/sys/fs/cgroup/unified') === CGROUP2_SUPER_MAGIC;
    t.equal(detectLayout(), unified ? 'hybrid' : 'v1');
  });

  t.test('resolveCgroupPaths: absolute, relative to own cgroup, default, errors', async (t) => {
    const abs = resolveCgroupPaths({ id: 'x', cgroupsPath: '/a//b/./c' });
    t.equal(abs.path, '/a/b/c');
    t.equal(abs.dirs.memory, join(mounts!.v1.get('memory')!.mountPoint, 'a/b/c'));
    if (mounts!.unified) t.equal(abs.dirs.unified, join(mounts!.unified.mountPoint, 'a/b/c'));
    t.equal(abs.dirs['name=systemd'] !== undefined, mounted('name=systemd'), 'joins name=systemd when mounted, as runc');

    t.equal(resolveCgroupPaths({ id: 'myid' }).path, '/lxr/myid', 'default when cgroupsPath is absent');

    const rel = resolveCgroupPaths({ id: 'x', cgroupsPath: 'sub/x' });
    t.equal(rel.path, 'sub/x');
    const own = cgroupOf(process.pid);
    const ownMem = [...own].find(([k]) => k.split(',').includes('memory'))![1];
    t.equal(rel.dirs.memory, join(mounts!.v1.get('memory')!.mountPoint, ownMem, 'sub/x'), 'relative to the runtime\'s own memory cgroup');

    t.throws(() => resolveCgroupPaths({ id: 'x', cgroupsPath: '../../etc' }), /linux\.cgroupsPath: "\.\.\/\.\.\/etc" escapes/);
    t.throws(() => resolveCgroupPaths({ id: 'x', cgroupsPath: '/a/../../b' }), /escapes its cgroup hierarchy/);
    t.throws(() => resolveCgroupPaths({ id: 'x', cgroupsPath: '/' }), /names the hierarchy root/);
    t.throws(() => resolveCgroupPaths({ id: 'a/b' }), /container id "a\/b" cannot name a cgroup/);
    if (!existsSync('/run/systemd/system')) {
      t.throws(() => resolveCgroupPaths({ id: 'x', cgroupsPath: 'system.slice:lxr:x', systemd: true }), /systemd cgroup driver needs systemd running as PID 1/);
    }
  });

  t.test('create writes every resource and moves the process into every hierarchy', async (t) => {
    const paths = newPaths();
    const h = held('exec sleep 100');
    t.teardown(() => finish(paths, h));
    const warnings: string[] = [];
    const r: Resources = {
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, kernel: 16 << 20, swappiness: 10 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
      pids: { limit: 42 },
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'r' }],
    };
    if (blkioWeights()) r.blockIO = { weight: 300 };
    createCgroup(paths, r, h.pid, { warn: (m) => warnings.push(m) });
    const d = paths.dirs;
    t.equal(read(d.memory, 'memory.limit_in_bytes'), String(64 << 20));
    t.equal(read(d.memory, 'memory.soft_limit_in_bytes'), String(32 << 20));
    if (existsSync(join(d.memory!, 'memory.memsw.limit_in_bytes'))) t.equal(read(d.memory, 'memory.memsw.limit_in_bytes'), String(128 << 20));
    t.equal(read(d.memory, 'memory.swappiness'), '10');
    t.same(warnings, ['Kernel memory settings are ignored and will be removed'], 'kernel memory: warned and ignored, as runc 1.1');
    t.equal(read(d.cpu, 'cpu.shares'), '512');
    t.equal(read(d.cpu, 'cpu.cfs_quota_us'), '50000');
    t.equal(read(d.cpu, 'cpu.cfs_period_us'), '100000');
    t.equal(read(d.cpuset, 'cpuset.cpus'), '0');
    t.equal(read(d.cpuset, 'cpuset.mems'), '0');
    t.equal(read(d.pids, 'pids.max'), '42');
    t.same(read(d.devices, 'devices.list').split('\n').sort(), ['c 1:3 rwm', 'c 1:5 r']);
    if (r.blockIO) {
      const wf = existsSync(join(d.blkio!, 'blkio.weight')) ? 'blkio.weight' : 'blkio.bfq.weight';
      t.match(read(d.blkio, wf), /(^|\s)300$/m);
    }
    const cg = cgroupOf(h.pid);
    for (const [ctrls, path] of cg) {
      if (ctrls === 'unified' && !mounts!.unified) continue;
      if (ctrls.split(',').some((c) => ['net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc'].includes(c) && !mounted(c))) continue;
      t.equal(path, paths.path, `/proc/PID/cgroup ${ctrls || 'unified'} is the container's cgroup`);
    }
    t.same(cgroupPids(paths), [h.pid]);
  });

  t.test('a memory limit OOM-kills a process that allocates more, and the OOM kill is counted', async (t) => {
    const paths = newPaths();
    // tail keeps the last lines in memory: here one 300 MB line.
    const h = held('head -c 300000000 /dev/zero | tail >/dev/null');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, { memory: { limit: 32 << 20, swap: 32 << 20 } }, h.pid);
    t.equal(cgroupOomEvents(paths), 0);
    h.release();
    const r = await h.exited;
    t.not(r.code, 0, `the pipeline failed (code ${r.code}, signal ${r.signal}, ${r.stderr.trim()})`);
    t.ok(cgroupOomEvents(paths) >= 1, 'memory.oom_control oom_kill counted it');
  });

  t.test('pids.max stops a fork loop', async (t) => {
    const paths = newPaths();
    const h = held('for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done; wait');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, { pids: { limit: 4 } }, h.pid);
    h.release();
    // The shell reports the failed fork on stderr and goes on waiting for the sleeps it has.
    await until(() => /fork/i.test(h.output().stderr), 5000, 10);
    t.match(h.output().stderr, /fork/i, `the shell could not fork: ${h.output().stderr.trim()}`);
    // dash gives up at the first failed fork: it exits 2 and leaves the 3 sleeps it made.
    const r = await h.exited;
    t.equal(r.code, 2, 'the shell gave up');
    t.equal(cgroupPids(paths).length, 3, 'the limit (4) minus the shell that exited');
    t.match(read(paths.dirs.pids, 'pids.events'), /max [1-9]/, 'the kernel refused forks');
    t.same(cgroupStats(paths).pids, { current: 3, limit: 4 });
    killCgroup(paths, 9);
    await until(() => cgroupPids(paths).length === 0, 5000, 10);
    t.same(cgroupPids(paths), [], 'killCgroup killed the sleeps');
  });

  t.test('device rules: denied devices cannot be opened, allowed ones can', async (t) => {
    const paths = newPaths();
    const h = held('head -c1 /dev/zero >/dev/null && echo zero-ok || echo zero-denied; echo x >/dev/null && echo null-ok; true');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }] }, h.pid);
    h.release();
    const r = await h.exited;
    t.equal(r.stdout, 'zero-denied\nnull-ok\n');
    t.match(r.stderr, /\/dev\/zero.*Operation not permitted/);
  });

  t.test('freeze stops the processes and thaw lets them go on', { skip: !mounted('freezer') && 'freezer not mounted' }, async (t) => {
    const paths = newPaths();
    const h = held('echo done');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, undefined, h.pid);
    t.equal(cgroupFrozen(paths), false);
    await freezeCgroup(paths, true);
    t.equal(read(paths.dirs.freezer, 'freezer.state'), 'FROZEN');
    t.equal(cgroupFrozen(paths), true);
    h.release();
    const early = await Promise.race([h.exited, new Promise((r) => setTimeout(() => r('still frozen'), 300))]);
    t.equal(early, 'still frozen', 'a frozen process does not run');
    t.equal(readFileSync(`/proc/${h.pid}/stat`, 'utf8').split(') ')[1]![0], 'D', 'frozen tasks show state D');
    await freezeCgroup(paths, false);
    t.equal(read(paths.dirs.freezer, 'freezer.state'), 'THAWED');
    t.equal((await h.exited).stdout, 'done\n');
  });

  t.test('update changes limits in place', async (t) => {
    const paths = newPaths();
    const h = held('exec sleep 100');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, { memory: { limit: 64 << 20 }, pids: { limit: 10 }, cpu: { shares: 256 } }, h.pid);
    updateCgroup(paths, { memory: { limit: 128 << 20, swap: 256 << 20 }, pids: { limit: -1 }, cpu: { quota: 20000, period: 50000 } });
    t.equal(read(paths.dirs.memory, 'memory.limit_in_bytes'), String(128 << 20));
    t.equal(read(paths.dirs.pids, 'pids.max'), 'max', '-1 means no limit');
    t.equal(read(paths.dirs.cpu, 'cpu.shares'), '256', 'fields left out are untouched');
    t.equal(read(paths.dirs.cpu, 'cpu.cfs_quota_us'), '20000');
    updateCgroup(paths, { memory: { limit: 32 << 20, swap: 32 << 20 }, pids: { limit: 0 } });
    t.equal(read(paths.dirs.memory, 'memory.limit_in_bytes'), String(32 << 20), 'lowering memory below the old memsw works (order of writes)');
    t.equal(read(paths.dirs.pids, 'pids.max'), '0', '0 is a limit of 0 (runtime-spec v1.3.0), not "no limit"');
    t.throws(() => updateCgroup(paths, { cpu: { shares: 1 } }), /linux\.resources\.cpu\.shares: 1 is out of range/);

    // Devices: allow-list to allow-list is applied as a difference; to allow-all and back resets.
    const list = (): string[] => read(paths.dirs.devices, 'devices.list').split('\n').sort();
    updateCgroup(paths, { devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'r' }] });
    t.same(list(), ['c 1:3 rwm', 'c 1:5 r']);
    updateCgroup(paths, { devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, { allow: true, type: 'b', major: -1, minor: -1, access: 'm' }] });
    t.same(list(), ['b *:* m', 'c 1:3 rw', 'c 1:7 rwm'], 'access taken away, exceptions removed and added');
    updateCgroup(paths, { devices: [{ allow: true }] });
    t.same(list(), ['a *:* rwm'], 'allow everything');
    updateCgroup(paths, { devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: 9, access: 'r' }] });
    t.same(list(), ['c 1:9 r'], 'and back to an allow-list');
  });

  t.test('stats have the shape of runc events --stats data', async (t) => {
    const paths = newPaths();
    const h = held('i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 100');
    t.teardown(() => finish(paths, h));
    createCgroup(paths, { memory: { limit: 64 << 20 }, pids: { limit: 20 } }, h.pid);
    h.release();
    for (let i = 0; i < 500 && !readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await new Promise((r) => setTimeout(r, 10));
    const s = cgroupStats(paths);
    t.same(Object.keys(s).sort(), ['blkio', 'cpu', 'cpuset', 'hugetlb', 'intel_rdt', 'memory', 'network_interfaces', 'pids']);
    if (mounted('cpuacct')) t.ok((s.cpu.usage.total ?? 0) > 0, 'cpu time was accounted');
    t.equal(s.memory.usage.limit, 64 << 20);
    t.ok((s.memory.usage.usage ?? 0) > 0);
    t.ok(s.memory.raw && 'rss' in s.memory.raw, 'raw has memory.stat');
    t.same(s.pids, { current: 1, limit: 20 });
    t.same(s.cpuset.cpus, readFileSync(join(paths.dirs.cpuset!, 'cpuset.cpus'), 'utf8').trim() === '0-1' ? [0, 1] : s.cpuset.cpus);
    t.equal(JSON.parse(JSON.stringify(s)).network_interfaces, null);
  });

  t.test('cgroupPids and killCgroup see processes in sub-cgroups; destroy removes them', async (t) => {
    const paths = newPaths();
    const a = held('exec sleep 100');
    const b = held('exec sleep 100');
    t.teardown(() => finish(paths, a).then(() => finish(paths, b)));
    createCgroup(paths, undefined, a.pid);
    // The container made a cgroup of its own and put b there.
    const sub = resolveCgroupPaths({ id: 'sub', cgroupsPath: `${paths.path}/inner` });
    createCgroup(sub, undefined, b.pid);
    t.same(cgroupPids(paths).sort(), [a.pid, b.pid].sort());
    killCgroup(paths, 15);
    t.equal((await a.exited).signal, 'SIGTERM');
    t.equal((await b.exited).signal, 'SIGTERM');
    for (let i = 0; i < 100 && cgroupPids(paths).length; i++) await new Promise((r) => setTimeout(r, 10));
    destroyCgroup(paths);
    for (const dir of Object.values(paths.dirs)) t.notOk(existsSync(dir), `${dir} removed`);
    t.doesNotThrow(() => destroyCgroup(paths), 'destroying twice is fine');
  });

  const runc = spawnSync('runc', ['--version']).status === 0 && existsSync('/bin/busybox');
  t.test('the same resources give the same files and stats shape as runc (the oracle)', { skip: !runc && 'runc or busybox missing' }, async (t) => {
    const r: Resources = {
      memory: { limit: 96 << 20, reservation: 48 << 20, swap: 192 << 20, swappiness: 20 },
      cpu: { shares: 300, quota: 30000, period: 60000, cpus: '0', mems: '0' },
      pids: { limit: 33 },
      ...(blkioWeights() ? { blockIO: { weight: 700 } } : {}),
    };
    const files: [string, string][] = [
      ['memory', 'memory.limit_in_bytes'], ['memory', 'memory.soft_limit_in_bytes'], ['memory', 'memory.memsw.limit_in_bytes'],
      ['memory', 'memory.swappiness'], ['memory', 'memory.oom_control'], ['cpu', 'cpu.shares'], ['cpu', 'cpu.cfs_quota_us'],
      ['cpu', 'cpu.cfs_period_us'], ['cpuset', 'cpuset.cpus'], ['cpuset', 'cpuset.mems'], ['pids', 'pids.max'],
      ['blkio', 'blkio.weight'], ['blkio', 'blkio.bfq.weight'],
    ];
    const runcPaths = resolveCgroupPaths({ id: 'runc', cgroupsPath: `${PREFIX}/runc` });
    const bundle = mkdtempSync(join(tmpdir(), 'lxr-cg-oracle-'));
    const state = join(bundle, 'state');
    const id = `lxr-cg-oracle-${process.pid}`;
    mkdirSync(join(bundle, 'rootfs', 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(bundle, 'rootfs', 'bin', 'busybox'));
    execFileSync('runc', ['spec'], { cwd: bundle });
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['/bin/busybox', 'sleep', '100'];
    spec.linux.resources = { ...spec.linux.resources, ...r };
    spec.linux.cgroupsPath = runcPaths.path;
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    const paths = newPaths();
    const h = held('exec sleep 100');
    t.teardown(async () => {
      spawnSync('runc', ['--root', state, 'delete', '-f', id], { stdio: 'ignore' });
      rmSync(bundle, { recursive: true, force: true });
      await finish(paths, h);
    });
    // stdio ignored: runc's init would hold pipes open until it is started.
    execFileSync('runc', ['--root', state, 'create', id], { cwd: bundle, stdio: 'ignore' });
    createCgroup(paths, r, h.pid);
    // Let it exec, so that it charges some memory to the cgroup (as runc's init has).
    h.release();
    await until(() => readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').startsWith('sleep'), 5000, 10);
    for (const [ctrl, file] of files) {
      const ours = paths.dirs[ctrl] && existsSync(join(paths.dirs[ctrl]!, file)) ? read(paths.dirs[ctrl], file) : '(absent)';
      const theirs = runcPaths.dirs[ctrl] && existsSync(join(runcPaths.dirs[ctrl]!, file)) ? read(runcPaths.dirs[ctrl], file) : '(absent)';
      t.equal(ours, theirs, `${file} as runc writes it`);
    }
    // Members runc omits when zero (Go omitempty) come and go with the values: compared without them.
    const keys = (o: object, omitempty: string[] = []): string[] => Object.keys(o).filter((k) => !omitempty.includes(k)).sort();
    const theirs = JSON.parse(execFileSync('runc', ['--root', state, 'events', '--stats', id], { encoding: 'utf8' })).data;
    const ours = JSON.parse(JSON.stringify(cgroupStats(paths)));
    t.same(keys(ours), keys(theirs), 'top-level keys');
    t.same(keys(ours.memory, ['cache']), keys(theirs.memory, ['cache']), 'memory keys');
    t.same(keys(ours.memory.usage, ['usage', 'max']), keys(theirs.memory.usage, ['usage', 'max']), 'memory.usage keys');
    t.same(keys(ours.memory.swap, ['usage', 'max']), keys(theirs.memory.swap, ['usage', 'max']), 'memory.swap keys');
    t.same(keys(ours.cpuset), keys(theirs.cpuset), 'cpuset keys');
    t.same(ours.cpuset, theirs.cpuset, 'cpuset values');
    t.same(keys(ours.cpu.usage, ['total', 'percpu', 'percpu_kernel', 'percpu_user']), keys(theirs.cpu.usage, ['total', 'percpu', 'percpu_kernel', 'percpu_user']), 'cpu.usage keys');
    t.equal(ours.memory.usage.limit, theirs.memory.usage.limit);
    t.equal(ours.memory.swap.limit, theirs.memory.swap.limit);
    t.same(ours.pids.limit, theirs.pids.limit);
    t.same(keys(ours.memory.raw), keys(theirs.memory.raw), 'raw memory.stat keys');
  });

  t.test('bad input: a clear error naming the field, and nothing left behind', async (t) => {
    const cases: [string, Resources, RegExp][] = [
      ['negative limit', { memory: { limit: -5 } }, /^linux\.resources\.memory\.limit: must be -1 \(unlimited\) or a number of bytes, got -5$/],
      ['swap below limit', { memory: { limit: 64 << 20, swap: 32 << 20 } }, /^linux\.resources\.memory\.swap: .* below memory\.limit/],
      ['cpuset that does not exist', { cpu: { cpus: '99' } }, /^linux\.resources\.cpu\.cpus: writing "99" to .*cpuset\.cpus: .*\((EINVAL|ERANGE)\) \(this cgroup can use CPUs [0-9,-]+\)$/],
      ['cpu list syntax', { cpu: { cpus: 'zero' } }, /^linux\.resources\.cpu\.cpus: "zero" is not a CPU list/],
      ['unified key on v1', { unified: { 'memory.high': '1000' } }, /^linux\.resources\.unified: needs cgroup v2/],
      ['bad device access', { devices: [{ allow: true, type: 'c', access: 'rx' }] }, /^linux\.resources\.devices\[0\]\.access: "rx"/],
      ['swappiness out of range', { memory: { swappiness: 200 } }, /^linux\.resources\.memory\.swappiness/],
    ];
    if (!mounted('hugetlb')) cases.push(['hugetlb not mounted', { hugepageLimits: [{ pageSize: '2MB', limit: 1 << 21 }] }, /^linux\.resources\.hugepageLimits: the hugetlb cgroup controller is not mounted/]);
    if (!mounted('net_cls')) cases.push(['net_cls not mounted', { network: { classID: 0x100001 } }, /^linux\.resources\.network\.classID: the net_cls cgroup controller is not mounted/]);
    if (!mounted('rdma')) cases.push(['rdma not mounted', { rdma: { mlx4_0: { hcaHandles: 2 } } }, /^linux\.resources\.rdma\["mlx4_0"\]: the rdma cgroup controller is not mounted/]);
    for (const [name, r, re] of cases) {
      const paths = newPaths();
      const h = held('exec sleep 100');
      const before = cgroupOf(h.pid);
      try {
        t.throws(() => createCgroup(paths, r, h.pid), re, name);
        for (const dir of Object.values(paths.dirs)) t.notOk(existsSync(dir), `${name}: ${dir} was not left behind`);
        t.same(cgroupOf(h.pid), before, `${name}: the process was not moved`);
      } finally {
        h.child.kill('SIGKILL');
        await h.exited;
      }
    }
    t.throws(() => resolveCgroupPaths({ id: 'x', cgroupsPath: `${PREFIX}/../..` }), /escapes/);
  });
});

/** Poll (at most 5 s) until cond() holds; the assertion after it says what was expected. */