// cgroups through lxr-runtime on this host's layout (cgroup v1 controllers, hybrid): the
// device cgroup denies what the rules deny, --systemd-cgroup without systemd, and bad
// input that must fail `create` cleanly. (The v2 counterparts run in the QEMU guest:
// cgroups-v2-runtime.test.ts.)
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, haveBusybox } from './helpers/bundle.js';
import type { Spec } from '../../oci-spec/types.js';

const v1 = existsSync('/sys/fs/cgroup/devices/devices.list');
const skip = process.getuid?.() !== 0 ? 'needs root' : !haveBusybox ? 'needs busybox' : !v1 ? 'needs the cgroup v1 devices controller' : false;

/** Every v1 hierarchy (and the cgroup2 one in hybrid mode) under /sys/fs/cgroup. */
function hierarchies(): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
    if (e.isDirectory()) out.push(join('/sys/fs/cgroup', e.name));
  }
  return out;
}
const leftovers = (rel: string): string[] => hierarchies().map((h) => join(h, rel)).filter((d) => existsSync(d));

// mknod is allowed for every device (the default rules); opening is what the filter decides.
// The mem driver has no minor 12 or 13: opening one that the filter lets through fails with
// ENXIO, one that it denies with EPERM, so nothing on the host is touched either way.
const DEVICE_SCRIPT = [
  'mknod /tmp/m12 c 1 12 && mknod /tmp/m13 c 1 13 || exit 1',
  'for t in "echo x > /tmp/m12" "head -c1 /tmp/m12" "echo x > /tmp/m13" "echo x > /dev/null"; do',
  '  sh -c "$t" >/dev/null 2>/tmp/err && echo "$t: ok" || echo "$t: $(cat /tmp/err)"',
  'done',
].join('\n');
const DEVICE_EXPECTED = [
  "echo x > /tmp/m12: sh: can't create /tmp/m12: No such device or address",
  'head -c1 /tmp/m12: head: /tmp/m12: Operation not permitted',
  "echo x > /tmp/m13: sh: can't create /tmp/m13: Operation not permitted",
  'echo x > /dev/null: ok',
  '',
].join('\n');

t.test('a device the rules deny cannot be opened (devices cgroup)', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  const id = uniqueId('dev');
  const b = makeBundle((s: Spec) => {
    s.linux!.cgroupsPath = `/lxr-test/${id}`;
    s.linux!.resources = { ...s.linux!.resources, devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 12, access: 'w' }] };
    const caps = s.process!.capabilities!;
    for (const k of ['bounding', 'effective', 'permitted'] as const) caps[k] = [...(caps[k] ?? []), 'CAP_MKNOD'];
    s.process!.args = ['sh', '-c', DEVICE_SCRIPT];
  });
  t.teardown(() => (runtime(root, ['delete', '-f', id]), b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, id]);
  t.equal(r.status, 0, 'the container ran', { stderr: r.stderr });
  t.equal(r.stdout, DEVICE_EXPECTED, 'c 1:12 may be written, not read; c 1:13 is denied; the default devices stay allowed');
  t.same(leftovers(`lxr-test/${id}`), [], 'run removed the cgroups when the container exited');
});

t.test('without linux.resources.devices, devices outside the defaults are still denied (as runc)', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  const id = uniqueId('nodev');
  const b = makeBundle((s: Spec) => {
    s.linux!.cgroupsPath = `/lxr-test/${id}`;
    delete s.linux!.resources;
    const caps = s.process!.capabilities!;
    for (const k of ['bounding', 'effective', 'permitted'] as const) caps[k] = [...(caps[k] ?? []), 'CAP_MKNOD'];
    s.process!.args = ['sh', '-c', 'mknod /tmp/m12 c 1 12 || exit 1; (echo x > /tmp/m12) 2>&1; echo x > /dev/null && echo null ok'];
  });
  t.teardown(() => (runtime(root, ['delete', '-f', id]), b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, id]);
  t.equal(r.stdout, "sh: can't create /tmp/m12: Operation not permitted\nnull ok\n", 'c 1:12 denied (EPERM, not the driver\'s ENXIO), /dev/null allowed', { stderr: r.stderr });
});

t.test('--systemd-cgroup where systemd is not PID 1: a clear error, nothing made', { skip: skip || (existsSync('/run/systemd/system') && 'systemd runs here') }, async (t) => {
  const { root, cleanup } = makeRoot();
  const id = uniqueId('sd');
  const b = makeBundle((s) => (s.linux!.cgroupsPath = `system.slice:lxr:${id}`));
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['--systemd-cgroup', 'create', '-b', b.dir, id]);
  t.not(r.status, 0);
  // create.ts refuses the flag itself; the cgroup library's own check (resolveCgroupPaths with
  // systemd: true) says "the systemd cgroup driver needs systemd running as PID 1 ...".
  t.match(r.stderr, /^lxr-runtime: [^\n]*systemd[^\n]*(cgroupfs|without --systemd-cgroup)[^\n]*\n$/, 'one line saying why and what to do instead');
  t.notOk(existsSync(join(root, id)), 'no state left');
  t.same([...leftovers(`system.slice/lxr-${id}.scope`), ...leftovers(`lxr/${id}`)], [], 'no cgroup made');
});

t.test('bad cgroup input: one clear line from create, nothing left behind', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['negative', (s) => (s.linux!.resources = { memory: { limit: -5 } }), /^lxr-runtime: linux\.resources\.memory\.limit: must be -1 \(unlimited\) or a number of bytes, got -5\n$/],
    ['cpuset', (s) => (s.linux!.resources = { cpu: { cpus: '63' } }), /^lxr-runtime: linux\.resources\.cpu\.cpus: writing "63" to \/sys\/fs\/cgroup\/cpuset\/lxr-test\/[^ ]+\/cpuset\.cpus: .*\(this cgroup can use CPUs [0-9,-]+\)\n$/],
    ['unified', (s) => (s.linux!.resources = { unified: { 'memory.high': '1' } }), /^lxr-runtime: linux\.resources\.unified: needs cgroup v2/],
    ['dotdot', () => undefined, /^lxr-runtime: linux\.cgroupsPath: "\/lxr-test\/\.\.\/\.\.\/escape" escapes its cgroup hierarchy with "\.\."\n$/],
    ['pids', (s) => (s.linux!.resources = { pids: { limit: 1.5 } }), /^lxr-runtime: (.*config\.json: )?linux\.resources\.pids\.limit: /],
  ];
  for (const [name, edit, re] of cases) {
    const id = uniqueId(`bad-${name}`);
    const b = makeBundle((s) => {
      s.linux!.cgroupsPath = name === 'dotdot' ? '/lxr-test/../../escape' : `/lxr-test/${id}`;
      edit(s);
    });
    t.teardown(b.cleanup);
    const r = runtime(root, ['create', '-b', b.dir, id]);
    t.not(r.status, 0, `${name}: create fails`);
    t.match(r.stderr, re, `${name}: the message names the field`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
    t.notOk(existsSync(join(root, id)), `${name}: no state left`);
    t.same(leftovers(`lxr-test/${id}`), [], `${name}: no cgroup left in any hierarchy`);
    if (name === 'dotdot') t.same(leftovers('escape'), [], 'nothing made at the hierarchy roots');
  }
});
