// `update --resources -` with the full resources JSON containerd sends on every CRI
// UpdateContainerResources (device rules included: the config's "deny all") must not take
// the default devices away from a running container (issue 13), on cgroup v2: the device
// filter is an eBPF program, and the replacement is attached before the old one goes.
// One QEMU guest boot (test/vm) runs GUEST under runc (the oracle) and lxr-runtime; the
// assertions are here, on the host. The v1 side is in test/engines/containerd.test.ts.
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
if (avail.ok) t.setTimeout(400_000);

// Plain JS for the guest's node. The probe runs in the container through `exec`: each
// line is "<command>: ok" or "<command>: <the shell's error>". The mem driver has no
// minor 12: an open the filter lets through fails with ENXIO, one it denies with EPERM.
const GUEST = String.raw`
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs';

const LXR = process.argv[2];
const R = { runc: {}, lxr: {}, failures: {}, log: [] };
const ROOTS = { runc: '/run/t-runc', lxr: '/run/t-lxr' };
const CMD = { runc: ['runc', '--root', ROOTS.runc], lxr: [process.execPath, LXR, '--root', ROOTS.lxr] };
const T0 = Date.now();
const note = (m) => { const l = ((Date.now() - T0) / 1000).toFixed(1) + 's ' + m; R.log.push(l); process.stderr.write(l + '\n'); };
setTimeout(() => { R.failures.watchdog = 'more than 300 s'; finish(); }, 300000).unref();
function finish() { process.stdout.write('\nLXR-RESULT ' + JSON.stringify(R) + '\n'); process.exit(0); }

let n = 0;
async function rt(name, args, input) {
  const o = '/tmp/o' + ++n, e = '/tmp/e' + n;
  let ifd = 'ignore';
  if (input !== undefined) { writeFileSync('/tmp/i' + n, input); ifd = openSync('/tmp/i' + n, 'r'); }
  const ofd = openSync(o, 'w'), efd = openSync(e, 'w');
  const child = spawn(CMD[name][0], [...CMD[name].slice(1), ...args], { stdio: [ifd, ofd, efd] });
  closeSync(ofd); closeSync(efd); if (typeof ifd === 'number') closeSync(ifd);
  const killer = setTimeout(() => child.kill('SIGKILL'), 60000);
  const status = await new Promise((res) => child.on('exit', (code, sig) => res(code ?? sig)));
  clearTimeout(killer);
  note(name + ' ' + args.join(' ') + ' -> ' + status);
  return { status, stdout: readFileSync(o, 'utf8'), stderr: readFileSync(e, 'utf8') };
}

mkdirSync('/tmp/spec', { recursive: true });
execFileSync('runc', ['spec'], { cwd: '/tmp/spec' });
const BASE = JSON.parse(readFileSync('/tmp/spec/config.json', 'utf8'));
const PROBE = 'for t in "echo x > /dev/null" "head -c1 /dev/zero" ": < /dev/ptmx" "echo x > /tmp/m12"; do sh -c "$t" >/dev/null 2>/tmp/err && echo "$t: ok" || echo "$t: $(cat /tmp/err)"; done';
// What containerd 1.6 sends: the spec's linux.resources, whole.
const CONTAINERD = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 64 << 20 }, cpu: { shares: 512, period: 100000, quota: 50000 }, pids: { limit: 50 } };
const WITH_M12 = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 12, access: 'w' }] };

async function scenario(r, out) {
  const B = '/tmp/b/' + r;
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp']) mkdirSync(B + '/rootfs/' + d, { recursive: true });
  copyFileSync('/bin/busybox', B + '/rootfs/bin/busybox');
  for (const a of ['sh', 'cat', 'echo', 'sleep', 'head', 'mknod']) symlinkSync('busybox', B + '/rootfs/bin/' + a);
  const c = structuredClone(BASE);
  c.process.terminal = false;
  c.root.readonly = false;
  c.linux.cgroupsPath = '/t/' + r;
  for (const k of Object.keys(c.process.capabilities)) c.process.capabilities[k].push('CAP_MKNOD');
  c.process.args = ['sh', '-c', 'mknod /tmp/m12 c 1 12; exec sleep 1000'];
  out.configDevices = c.linux.resources.devices;
  writeFileSync(B + '/config.json', JSON.stringify(c));
  const id = r + '-upd';
  out.run = (await rt(r, ['run', '--detach', '--bundle', B, id])).status;
  const probe = async () => { const p = await rt(r, ['exec', id, 'sh', '-c', PROBE]); return p.stdout + p.stderr; };
  out.before = await probe();
  const u1 = await rt(r, ['update', '--resources', '-', id], JSON.stringify(CONTAINERD));
  out.update = { status: u1.status, stderr: u1.stderr, memoryMax: readFileSync('/sys/fs/cgroup/t/' + r + '/memory.max', 'utf8').trim() };
  out.after = await probe();
  const u2 = await rt(r, ['update', '--resources', '-', id], JSON.stringify(WITH_M12));
  out.update2 = { status: u2.status, stderr: u2.stderr };
  out.afterM12 = await probe();
  const d = await rt(r, ['delete', '--force', id]);
  out.deleted = { status: d.status, cgroupLeft: existsSync('/sys/fs/cgroup/t/' + r) };
}

writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+cpu +memory +pids');
for (const r of ['runc', 'lxr']) {
  try { await scenario(r, R[r]); } catch (e) { R.failures[r] = e.stack || String(e); }
}
R.leftUnderT = existsSync('/sys/fs/cgroup/t') ? readdirSync('/sys/fs/cgroup/t', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : [];
finish();
`;

interface Side {
  configDevices: unknown;
  run: number;
  before: string;
  update: { status: number; stderr: string; memoryMax: string };
  after: string;
  update2: { status: number; stderr: string };
  afterM12: string;
  deleted: { status: number; cgroupLeft: boolean };
}

t.test('update --resources - with containerd\'s full JSON keeps the default devices (cgroup v2)', { skip: avail.ok ? false : `VM not available: ${avail.reason}` }, async (t) => {
  mkdirSync(vmWorkDir(), { recursive: true });
  const dir = mkdtempSync(join(vmWorkDir(), 'update-devices-v2-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'guest.mjs'), GUEST);
  const vm = await runInVm({ command: ['node', join(dir, 'guest.mjs'), RUNTIME], cwd: dir, timeoutMs: 330_000 });
  const line = vm.stdout.split('\n').find((l) => l.startsWith('LXR-RESULT '));
  const diag = { stdout: vm.stdout.slice(-3000), stderr: vm.stderr.slice(-3000), console: vm.console.slice(-1500) };
  t.equal(vm.exitCode, 0, 'the guest script ran', diag);
  if (!line) return t.fail('the guest printed no result', diag);
  const r = JSON.parse(line.slice('LXR-RESULT '.length)) as { runc: Side; lxr: Side; failures: Record<string, string>; log: string[]; leftUnderT: string[] };
  t.same(r.failures, {}, 'no scenario threw in the guest', { log: r.log });
  const { runc, lxr } = r;
  t.same(lxr.configDevices, [{ allow: false, access: 'rwm' }], 'the config\'s rules are "deny all", as containerd\'s');
  const usable = [
    'echo x > /dev/null: ok',
    'head -c1 /dev/zero: ok',
    ': < /dev/ptmx: ok',
  ];
  const denied = 'echo x > /tmp/m12: sh: can\'t create /tmp/m12: Operation not permitted';
  const passed = 'echo x > /tmp/m12: sh: can\'t create /tmp/m12: No such device or address';
  for (const [name, s] of [['runc', runc], ['lxr', lxr]] as const) {
    t.equal(s.run, 0, `${name} run`);
    t.equal(s.before, [...usable, denied, ''].join('\n'), `${name}: the defaults are usable, c 1:12 is denied`);
    t.same([s.update.status, s.update.stderr], [0, ''], `${name}: update --resources - succeeded`);
    t.equal(s.update.memoryMax, String(64 << 20), `${name}: and applied the memory limit`);
    t.equal(s.after, s.before, `${name}: after the update, the same devices are usable and denied`);
    t.same(s.deleted, { status: 0, cgroupLeft: false }, `${name}: delete --force removes the cgroup`);
  }
  // runc 1.1 ignores device rules in update; lxr applies them (on top of the defaults), and
  // the new filter replaces the old one: were the old program still attached, c 1:12 would
  // still be denied.
  t.equal(lxr.update2.status, 0, 'lxr: update with a rule for c 1:12', { ...lxr.update2 });
  t.equal(lxr.afterM12, [...usable, passed, ''].join('\n'), 'lxr: c 1:12 now passes the filter for writing, and the defaults still do');
  t.same(r.leftUnderT, [], 'no cgroup left in the guest');
});
