// Bad input gets a one-line error naming the thing at fault, a non-zero exit, and a
// failed create leaves nothing behind (runtime.md "create").
import t, { type Test } from 'tap';
import { existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';
import type { Spec } from '../../oci-spec/types.js';

function oneLine(t: Test, r: { status: number | null; stderr: string }, re: RegExp): void {
  t.not(r.status, 0, 'exits non-zero');
  t.match(r.stderr, re);
  t.equal(r.stderr.trim().split('\n').length, 1, 'the error is one line');
}

function leftovers(root: string): string[] {
  return existsSync(root) ? readdirSync(root) : [];
}

t.test('a missing bundle', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  oneLine(t, runtime(root, ['create', '-b', '/nonexistent/bundle', uniqueId('x')]), /bundle "\/nonexistent\/bundle" does not exist/);
  t.same(leftovers(root), []);
});

t.test('invalid JSON', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle();
  t.teardown(() => (b.cleanup(), cleanup()));
  writeFileSync(join(b.dir, 'config.json'), '{"ociVersion": "1.3.0",');
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('x')]), /config\.json: invalid JSON/);
});

t.test('schema violations are reported with their JSON path', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    (s.process!.user as unknown as Record<string, unknown>).uid = 'root';
    (s.mounts![2] as unknown as Record<string, unknown>).destination = 5;
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('x')]);
  oneLine(t, r, /process\.user\.uid: must be integer/);
  t.match(r.stderr, /mounts\[2\]\.destination: must be string/);
  t.same(leftovers(root), []);
});

t.test('a required field that is missing', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => delete (s as unknown as Record<string, unknown>).ociVersion);
  t.teardown(() => (b.cleanup(), cleanup()));
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('x')]), /ociVersion: is required/);
});

t.test('an unknown container id', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  for (const cmd of [['state'], ['start'], ['kill'], ['delete']]) {
    oneLine(t, runtime(root, [...cmd, 'nosuchcontainer']), /container "nosuchcontainer" does not exist/);
  }
});

t.test('an id that already exists, and an invalid id', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '100']));
  t.teardown(() => (b.cleanup(), cleanup()));
  const id = uniqueId('dup');
  t.equal(runtime(root, ['create', '-b', b.dir, id]).status, 0);
  oneLine(t, runtime(root, ['create', '-b', b.dir, id]), new RegExp(`container "${id}" already exists`));
  t.equal(JSON.parse(runtime(root, ['state', id]).stdout).status, 'created', 'the first one is untouched');
  t.equal(runtime(root, ['delete', '--force', id]).status, 0);
  oneLine(t, runtime(root, ['create', '-b', b.dir, '../escape']), /invalid container id/);
});

t.test('a failing mount names the step, the path and the errno, and leaves nothing behind', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => s.mounts!.push({ destination: '/data', type: 'nosuchfs', source: 'none' }));
  t.teardown(() => (b.cleanup(), cleanup()));
  const n = b.dir && JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')).mounts.length - 1;
  const before = new Set(readFileSync('/proc/self/mountinfo', 'utf8').split('\n'));
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('mnt')]), new RegExp(`mount "none" on "/data" \\(config.json mounts\\[${n}\\]\\): ENODEV`));
  t.same(leftovers(root), [], 'no state dir');
  // only this bundle's and root's mounts count: other test files make mounts of their own meanwhile
  const ours = (l: string): boolean => l.includes(b.dir) || l.includes(root);
  const after = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => !before.has(l) && ours(l));
  t.same(after, [], 'no mount left on the host');
});

t.test('a missing executable fails at create, naming it', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['no-such-program']));
  t.teardown(() => (b.cleanup(), cleanup()));
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('exe')]), /find executable "no-such-program" \(process\.args\[0\]\): ENOENT/);
  t.same(leftovers(root), []);
});

t.test('a cwd that cannot be made fails at create, naming process.cwd', async (t) => {
  const { root, cleanup } = makeRoot();
  // a missing one is made, as runc does (process-attrs.test.ts); under a file it cannot be
  const b = makeBundle((s) => (s.process!.cwd = '/etc/passwd/sub'));
  t.teardown(() => (b.cleanup(), cleanup()));
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('cwd')]), /"\/etc\/passwd\/sub" \(process\.cwd\): ENOTDIR/);
});

t.test('an unknown capability names its place in config.json', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => s.process!.capabilities!.bounding!.push('CAP_NOT_REAL'));
  t.teardown(() => (b.cleanup(), cleanup()));
  oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('cap')]), /process\.capabilities\.bounding\[3\]: unknown capability "CAP_NOT_REAL"/);
});

t.test('a hard rlimit above what this host can grant is refused up front', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2 ** 40 }]));
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('rl')]);
  t.not(r.status, 0);
  t.match(r.stderr, /process\.rlimits\[0\]/);
  t.same(leftovers(root), []);
});

t.test('security settings lxr cannot apply are refused, not ignored', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const cases: [(s: Spec) => void, RegExp][] = [
    [(s) => (s.linux!.personality = { domain: 'LINUX', flags: ['SHORT_INODE'] }), /linux\.personality\.flags: personality flags are not supported/],
    [(s) => (s.process!.apparmorProfile = 'docker-default'), /process\.apparmorProfile: AppArmor profiles are not supported/],
    [(s) => (s.process!.selinuxLabel = 'system_u:system_r:container_t:s0'), /process\.selinuxLabel/],
  ];
  for (const [edit, re] of cases) {
    const b = makeBundle(edit);
    t.teardown(b.cleanup);
    oneLine(t, runtime(root, ['create', '-b', b.dir, uniqueId('sec')]), re);
  }
  t.same(leftovers(root), []);
});
