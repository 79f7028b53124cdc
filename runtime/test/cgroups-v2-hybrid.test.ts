// The cgroup v2 code paths that work on a hybrid host's controller-less cgroup2 hierarchy
// (/sys/fs/cgroup/unified): the eBPF device filter (enforced by the kernel for tasks in a
// v2 cgroup, whatever v1 says), cgroup.freeze, cgroup.kill, pid listing, removal, and
// createCgroup's v2 path with what this hierarchy offers.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cgroupPids, cgroupStats, createCgroup, deviceFilterProgram, deviceProgramIds, attachDeviceProgram, destroyCgroup, freezeCgroup,
  killCgroup, updateCgroup, type CgroupPaths,
} from '../cgroups/manager/index.js';
import { readMounts } from '../cgroups/layout.js';
import { removeCgroupDir } from '../cgroups/tree.js';
import type { DeviceCgroup } from '../../oci-spec/types.js';
import { until } from '../../test/helpers/until.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;
const mounts = existsSync('/proc/self/mountinfo') ? readMounts() : undefined;
const unified = mounts?.unified?.mountPoint;
const isHybrid = !!unified && unified !== '/sys/fs/cgroup' && mounts!.v1.size > 0 && Number(statfsSync(unified).type) === CGROUP2_SUPER_MAGIC;
const skip = process.getuid?.() !== 0 ? 'needs root' : !isHybrid ? 'needs a hybrid host (cgroup2 beside v1 controllers)' : false;

const BASE = unified ? join(unified, `lxr-test-${process.pid}`) : '';
let seq = 0;

t.teardown(() => {
  if (BASE) removeCgroupDir(BASE);
});

/** A CgroupPaths for a v2 cgroup inside the unified hierarchy (what a pure v2 host would give). */
function v2Paths(): CgroupPaths {
  const name = `v${++seq}`;
  return { layout: 'v2', path: `/lxr-test-${process.pid}/${name}`, dirs: { unified: join(BASE, name) } };
}

function held(script: string): { pid: number; release(): void; out(): string; exited: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>; kill(): void } {
  const child = spawn('/bin/sh', ['-c', `read x; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { pid: child.pid!, release: () => child.stdin!.end('go\n'), out: () => stdout, exited, kill: () => child.kill('SIGKILL') };
}

// Opens /dev/zero for reading, /dev/null for writing, /dev/null for reading; prints what worked.
// (No "2>/dev/null": that would be a write to /dev/null too.)
const PROBE = '[ "$(head -c1 /dev/zero | wc -c)" = 1 ] && echo zero-read; (echo x >/dev/null) && echo null-write; cat /dev/null && echo null-read; true';

t.test('cgroup v2 code on the hybrid unified hierarchy', { skip }, async (t) => {
  mkdirSync(BASE);

  t.test('the eBPF device filter enforces the rules', async (t) => {
    const cases: [string, DeviceCgroup[], string][] = [
      ['deny by default, /dev/null allowed', [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }], 'null-write\nnull-read\n'],
      ['explicit deny all, then /dev/null read only', [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }], 'null-read\n'],
      ['allow all but /dev/zero', [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' }], 'null-write\nnull-read\n'],
      ['allow all but writes to char 1:*', [{ allow: true }, { allow: false, type: 'c', major: 1, access: 'w' }], 'zero-read\nnull-read\n'],
      ['allow all', [{ allow: true }], 'zero-read\nnull-write\nnull-read\n'],
    ];
    for (const [name, rules, want] of cases) {
      const p = v2Paths();
      mkdirSync(p.dirs.unified!);
      const h = held(PROBE);
      try {
        attachDeviceProgram(p.dirs.unified!, deviceFilterProgram(rules));
        writeFileSync(join(p.dirs.unified!, 'cgroup.procs'), String(h.pid));
        h.release();
        t.equal((await h.exited).stdout, want, name);
      } finally {
        h.kill();
        await h.exited;
        removeCgroupDir(p.dirs.unified!);
      }
    }
  });

  t.test('updating the devices replaces the program (one attached, new rules apply)', async (t) => {
    const p = v2Paths();
    mkdirSync(p.dirs.unified!);
    t.teardown(() => removeCgroupDir(p.dirs.unified!));
    attachDeviceProgram(p.dirs.unified!, deviceFilterProgram([{ allow: true }]));
    const first = deviceProgramIds(p.dirs.unified!);
    t.equal(first.length, 1);
    updateCgroup(p, { devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }] });
    const second = deviceProgramIds(p.dirs.unified!);
    t.equal(second.length, 1, 'still one program');
    t.not(second[0], first[0], 'a new one');
    const h = held(PROBE);
    writeFileSync(join(p.dirs.unified!, 'cgroup.procs'), String(h.pid));
    h.release();
    t.equal((await h.exited).stdout, 'null-write\nnull-read\n');
  });

  t.test('createCgroup (v2): devices, unknown unified key, unavailable controller, freeze, kill, destroy', async (t) => {
    const root = unified!;
    const before = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
    t.teardown(() => {
      // createCgroup enables every available controller on the way down, as runc does: put the root back.
      const now = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const c of now.filter((c) => !before.includes(c))) {
        try {
          writeFileSync(join(root, 'cgroup.subtree_control'), `-${c}`);
        } catch {
          // still in use by a cgroup someone else made meanwhile
        }
      }
    });

    const bad = v2Paths();
    const h0 = held('exec sleep 100');
    t.throws(() => createCgroup(bad, { unified: { 'nosuch.file': '1' } }, h0.pid), /^linux\.resources\.unified\["nosuch\.file"\]: unknown cgroup v2 key \(no such file in .*\/v\d+\)$/);
    t.notOk(existsSync(bad.dirs.unified!), 'nothing left behind');
    const available = readFileSync(join(root, 'cgroup.controllers'), 'utf8');
    if (!available.includes('memory')) {
      t.throws(() => createCgroup(bad, { memory: { limit: 1 << 26 } }, h0.pid), /^linux\.resources\.memory: the memory controller is not available in .*cgroup\.controllers/);
      t.notOk(existsSync(bad.dirs.unified!), 'nothing left behind');
      t.throws(() => createCgroup(bad, { unified: { 'memory.high': '1000000' } }, h0.pid), /^linux\.resources\.unified\["memory\.high"\]: the memory controller is not available/);
    }
    if (!available.includes('pids')) {
      t.throws(() => createCgroup(bad, { pids: { limit: 3 } }, h0.pid), /^linux\.resources\.pids\.limit: the pids controller is not available/);
    }
    h0.kill();
    await h0.exited;

    const p = v2Paths();
    // It prints once released, then stays alive, so that the kill below has a process to kill
    // (with the probe alone it could finish in the few ms between the thaw and the kill).
    const h = held('echo ran; exec sleep 100');
    const hugetlb = available.includes('hugetlb') && existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB') && existsSync('/sys/kernel/mm/hugepages/hugepages-1048576kB');
    createCgroup(p, {
      devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }],
      ...(hugetlb ? { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 21 }], unified: { 'hugetlb.1GB.max': String(1 << 30) } } : {}),
    }, h.pid);
    if (hugetlb) {
      t.equal(readFileSync(join(p.dirs.unified!, 'hugetlb.2MB.max'), 'utf8').trim(), String(4 << 21), 'hugepageLimits -> hugetlb.2MB.max');
      if (existsSync(join(p.dirs.unified!, 'hugetlb.2MB.rsvd.max'))) t.equal(readFileSync(join(p.dirs.unified!, 'hugetlb.2MB.rsvd.max'), 'utf8').trim(), String(4 << 21), 'and .rsvd.max');
      t.equal(readFileSync(join(p.dirs.unified!, 'hugetlb.1GB.max'), 'utf8').trim(), String(1 << 30), 'unified key written verbatim');
    }
    t.same(cgroupPids(p), [h.pid]);
    t.equal(readFileSync(`/proc/${h.pid}/cgroup`, 'utf8').match(/^0::(.*)$/m)?.[1], p.path);

    await freezeCgroup(p, true);
    t.match(readFileSync(join(p.dirs.unified!, 'cgroup.events'), 'utf8'), /^frozen 1$/m);
    h.release();
    await new Promise((r) => setTimeout(r, 300));
    t.equal(h.out(), '', 'a frozen process does not run');
    await freezeCgroup(p, false);
    t.match(readFileSync(join(p.dirs.unified!, 'cgroup.events'), 'utf8'), /^frozen 0$/m);
    await until(() => h.out() !== '', 5000, 10);
    t.equal(h.out(), 'ran\n', 'thawed, it runs');

    const s = cgroupStats(p);
    t.equal(s.network_interfaces, null);
    t.type(s.cpu.usage.user, 'number');

    killCgroup(p, 9);
    const r = await h.exited;
    t.equal(r.signal, 'SIGKILL', 'cgroup.kill killed it');
    await until(() => cgroupPids(p).length === 0, 5000, 10);
    destroyCgroup(p);
    t.notOk(existsSync(p.dirs.unified!));
  });

  t.test('killCgroup with another signal freezes, signals every process, thaws', async (t) => {
    const p = v2Paths();
    mkdirSync(p.dirs.unified!);
    t.teardown(() => removeCgroupDir(p.dirs.unified!));
    const a = held('exec sleep 100');
    const b = held('exec sleep 100');
    mkdirSync(join(p.dirs.unified!, 'inner'));
    writeFileSync(join(p.dirs.unified!, 'cgroup.procs'), String(a.pid));
    writeFileSync(join(p.dirs.unified!, 'inner', 'cgroup.procs'), String(b.pid));
    t.same(cgroupPids(p).sort(), [a.pid, b.pid].sort(), 'pids of sub-cgroups too');
    killCgroup(p, 15);
    t.equal((await a.exited).signal, 'SIGTERM');
    t.equal((await b.exited).signal, 'SIGTERM');
    t.equal(readFileSync(join(p.dirs.unified!, 'cgroup.freeze'), 'utf8').trim(), '0', 'thaw requested again');
    // cgroup.events is the kernel's view, which follows the request (it once lagged on a loaded machine)
    const thawed = () => /^frozen 0$/m.test(readFileSync(join(p.dirs.unified!, 'cgroup.events'), 'utf8'));
    await until(thawed, 5000, 10);
    t.ok(thawed(), 'thawed again', { events: readFileSync(join(p.dirs.unified!, 'cgroup.events'), 'utf8') });
    await until(() => cgroupPids(p).length === 0, 5000, 10);
    destroyCgroup(p);
    t.notOk(existsSync(p.dirs.unified!), 'destroy removed the sub-cgroup and the cgroup');
  });
});
