// Spec fields lxr-runtime used to refuse or ignore (issue 12): process.scheduler,
// process.ioPriority, linux.personality, linux.memoryPolicy, a process.cwd that does not
// exist, the recursive mount options (rro ...), and bind sources only host root can reach,
// for a container with a user namespace. Each is checked by what the container sees.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../oci-spec/types.js';
import { haveBusybox, keyValues, makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !haveBusybox ? 'needs busybox' : false;

function run(t: Test, edit: (s: Spec) => void, script: string, setup?: (rootfs: string) => void): { status: number | null; stdout: string; stderr: string } {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    edit(s);
    s.process!.args = ['sh', '-c', script];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  setup?.(b.rootfs);
  return runtime(root, ['run', '-b', b.dir, uniqueId('attrs')]);
}

t.test('process.scheduler and process.ioPriority are applied', { skip }, async (t) => {
  const r = run(
    t,
    (s) => {
      s.process!.scheduler = { policy: 'SCHED_BATCH', nice: 7 };
      s.process!.ioPriority = { class: 'IOPRIO_CLASS_IDLE', priority: 0 };
    },
    'read -r stat </proc/self/stat; set -- $stat; shift 18; echo nice=$1; shift 22; echo policy=$1; echo ionice=$(ionice)',
    (rootfs) => symlinkSync('busybox', join(rootfs, 'bin', 'ionice')),
  );
  t.equal(r.status, 0, r.stderr);
  const kv = keyValues(r.stdout);
  t.equal(kv.nice, '7', 'nice 7');
  t.equal(kv.policy, '3', 'SCHED_BATCH (3)');
  t.equal(kv.ionice, 'idle', 'I/O class idle');
});

t.test('linux.personality LINUX32 and linux.memoryPolicy', { skip }, async (t) => {
  const r = run(
    t,
    (s) => {
      s.linux!.personality = { domain: 'LINUX32' };
      (s.linux as Record<string, unknown>).memoryPolicy = { mode: 'MPOL_BIND', nodes: '0' };
    },
    'echo personality=$(cat /proc/self/personality); echo machine=$(uname -m); read -r a policy rest </proc/self/numa_maps; echo policy=$policy',
  );
  t.equal(r.status, 0, r.stderr);
  const kv = keyValues(r.stdout);
  t.equal(kv.personality, '00000008', 'PER_LINUX32');
  if (process.arch === 'x64') t.match(kv.machine, /^i[3-6]86$/, 'uname -m answers as a 32-bit machine');
  t.equal(kv.policy, 'bind:0', 'the memory policy is bind to node 0');
});

t.test('bad personality and memory policy values are refused, naming the field', { skip }, async (t) => {
  const flags = run(t, (s) => (s.linux!.personality = { domain: 'LINUX', flags: ['SHORT_INODE'] }), 'true');
  t.not(flags.status, 0);
  t.match(flags.stderr, /linux\.personality\.flags/);
  const nodes = run(t, (s) => ((s.linux as Record<string, unknown>).memoryPolicy = { mode: 'MPOL_BIND' }), 'true');
  t.not(nodes.status, 0);
  t.match(nodes.stderr, /linux\.memoryPolicy\.nodes: mode MPOL_BIND needs a node list/);
});

t.test('a process.cwd that does not exist is made, as runc does', { skip }, async (t) => {
  const r = run(t, (s) => (s.process!.cwd = '/work/deep/dir'), 'pwd');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '/work/deep/dir\n');
});

t.test('rro makes a bind mount read-only with every mount under it', { skip }, async (t) => {
  const src = mkdtempSync(join(tmpdir(), 'lxr-rro-'));
  mkdirSync(join(src, 'sub'));
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(src, 'sub')]);
  t.teardown(() => {
    execFileSync('umount', ['-l', join(src, 'sub')]);
    rmSync(src, { recursive: true, force: true });
  });
  const r = run(
    t,
    (s) => s.mounts!.push({ destination: '/data', type: 'bind', source: src, options: ['rbind', 'rro'] }),
    'touch /data/top 2>/dev/null && echo top=rw || echo top=ro; touch /data/sub/x 2>/dev/null && echo sub=rw || echo sub=ro',
  );
  t.equal(r.status, 0, r.stderr);
  t.same(keyValues(r.stdout), { top: 'ro', sub: 'ro' }, 'both the mount and its submount are read-only');
  const plain = run(t, (s) => s.mounts!.push({ destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro'] }), 'touch /data/sub/x 2>/dev/null && echo sub=rw || echo sub=ro');
  t.same(keyValues(plain.stdout), { sub: 'rw' }, 'plain ro leaves the submount writable (the difference rro makes)');
});

t.test('a bind source only host root can reach works for a container with a user namespace', { skip }, async (t) => {
  const secret = mkdtempSync(join(tmpdir(), 'lxr-rootonly-'));
  chmodSync(secret, 0o700);
  mkdirSync(join(secret, 'data'));
  writeFileSync(join(secret, 'data', 'file'), 'from the host\n');
  chmodSync(join(secret, 'data', 'file'), 0o644);
  t.teardown(() => rmSync(secret, { recursive: true, force: true }));
  const { root, cleanup } = makeRoot();
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const b = makeBundle((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = map;
    s.linux!.gidMappings = map;
    s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup');
    s.mounts!.push({ destination: '/data', type: 'bind', source: join(secret, 'data'), options: ['rbind', 'ro'] });
    s.process!.args = ['cat', '/data/file'];
  });
  chmodSync(b.dir, 0o755);
  mkdirSync(join(b.rootfs, 'data'));
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('rootonly')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'from the host\n');
});
