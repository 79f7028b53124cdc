// Rootless unpack as a real unprivileged user (a throwaway account made by the test): no chown,
// no device nodes, privileged xattrs dropped, everything else as usual.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../oci-spec/validators.generated.js';
import { getXattr } from '../unpack/libc.js';
import { buildImage, featureLayers, FEATURE_CONFIG } from './fixtures-image.js';

const user = `lxrt${process.pid % 100000}`;
const dir = mkdtempSync(join(tmpdir(), 'lxr-rootless-'));
chmodSync(dir, 0o755);
t.teardown(() => {
  rmSync(dir, { recursive: true, force: true });
  spawnSync('userdel', [user]);
});

t.test('unpackBundle({ rootless: true }) as an unprivileged user', async (t) => {
  const add = spawnSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', user], { encoding: 'utf8' });
  t.equal(add.status, 0, `useradd ${user}: ${add.stderr}`);
  const id = (flag: string) => Number(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  t.ok(uid > 0);

  const img = buildImage(join(dir, 'layout'), featureLayers(), FEATURE_CONFIG);
  const work = join(dir, 'work');
  mkdirSync(work);
  chownSync(work, uid, gid);
  const bundle = join(work, 'bundle');
  const index = fileURLToPath(new URL('../bundle/unpack.ts', import.meta.url));
  const script = join(dir, 'run.mts');
  writeFileSync(
    script,
    `import { unpackBundle } from ${JSON.stringify(index)};\n` +
      `await unpackBundle({ layout: ${JSON.stringify(img.layout)}, manifest: ${JSON.stringify(img.manifest)}, bundle: ${JSON.stringify(bundle)}, rootless: true });\n`,
  );
  const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));
  // through env(1): tap's process tracking adds NODE_OPTIONS to every child it sees, and
  // its loader would then write into .tap/ as a user who may not
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', tsx, script], {
    uid,
    gid,
    encoding: 'utf8',
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, TMPDIR: work },
  });
  t.equal(r.status, 0, `unpack as ${user}: ${r.stderr}`);

  const root = join(bundle, 'rootfs');
  const owners = new Set<number>();
  const walk = (p: string) => {
    const st = lstatSync(p);
    owners.add(st.uid);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(root);
  t.same([...owners], [uid], 'everything is owned by the unpacking user');
  t.notOk(existsSync(join(root, 'dev/null')), 'no device nodes');
  t.notOk(existsSync(join(root, 'hard-to-dev')), 'no hard links to skipped device nodes');
  t.ok(lstatSync(join(root, 'run/fifo')).isFIFO(), 'fifos are made');
  t.equal(statSync(join(root, 'bin/tool')).mode & 0o7777, 0o4755, 'modes kept');
  t.equal(getXattr(join(root, 'bin/ping'), 'security.capability'), null, 'security.capability dropped');
  t.same(getXattr(join(root, 'bin/ping'), 'user.comment'), Buffer.from([0, 1, 2, 0xff, 0x80]), 'user.* xattrs kept');
  t.equal(statSync(join(root, 'ro')).mode & 0o777, 0o555, 'a read-only directory ends read-only');
  t.equal(readFileSync(join(root, 'ro/new'), 'utf8'), 'into a read-only dir', 'and a later layer could still write into it');
  t.equal(statSync(join(root, 'data')).mode & 0o777, 0o750);
  t.same(readdirSync(join(root, 'opq')), ['new'], 'whiteouts work');
  const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  t.ok(validateConfig(cfg), 'config.json validates');
  t.ok(cfg.linux.namespaces.some((n: { type: string }) => n.type === 'user'), 'user namespace');
  // root inside is the user; ids from 1 up map onto the user's /etc/subuid range, if any
  t.same(cfg.linux.uidMappings[0], { containerID: 0, hostID: uid, size: 1 }, 'maps the user to root');
  t.notOk(cfg.linux.namespaces.some((n: { type: string }) => n.type === 'network'), 'no network namespace (runc --rootless)');
});
