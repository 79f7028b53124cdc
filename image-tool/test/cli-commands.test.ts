// The lxr-image command line, run as a process: output, exit codes and one-line errors.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, startTokenRegistry, type RegistryHandle } from './helpers/registry.js';
import { buildIndex, sha256 } from './helpers/images.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { runCli } from './helpers/cli.js';

let reg: RegistryHandle;
t.before(async () => {
  reg = await startRegistry();
});
t.teardown(() => reg?.stop());

const fastEnv = { LXR_IMAGE_RETRY_ATTEMPTS: '2', LXR_IMAGE_RETRY_BASE_MS: '5' };

function oneLineError(t: Test, r: { code: number | null; stderr: string }, ...parts: string[]): void {
  t.equal(r.code, 1, 'exit status 1');
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${r.stderr}`);
  t.match(lines[0], /^lxr-image: /);
  for (const p of parts) t.ok(lines[0]!.includes(p), `names ${p}`);
}

t.test('pull, images, inspect, resolve, tag, rm, gc', async (t) => {
  const img = await seedImage(reg.host, 'cli/app:1', { layers: [{ files: { 'bin/': '', 'bin/hello': '#!/bin/sh\necho hi\n' } }, { files: { z: 'zstd' }, compression: 'zstd' }] });
  const store = tempDir(t);
  const s = ['--store', store];
  let r = await runCli(['pull', ...s, img.name]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `Pulled ${img.name}\nDigest: ${img.manifest.digest}\n`);
  t.match(r.stderr, /Layer [0-9a-f]{12} downloaded/, 'progress lines when stderr is not a TTY');
  r = await runCli(['pull', '-q', ...s, img.name]);
  t.equal(r.stdout, `${img.manifest.digest}\n`, '--quiet prints only the digest');
  t.equal(r.stderr, '');

  r = await runCli(['images', ...s]);
  t.equal(r.code, 0);
  t.match(r.stdout, /^REFERENCE\s+DIGEST\s+PLATFORM\s+SIZE\n/);
  t.ok(r.stdout.includes(img.name) && r.stdout.includes('linux/amd64'));
  r = await runCli(['list', '--json', ...s]);
  const list = JSON.parse(r.stdout);
  t.equal(list[0].digest, img.manifest.digest);

  r = await runCli(['inspect', '--raw', ...s, img.name]);
  t.equal(sha256(Buffer.from(r.stdout)), img.manifest.digest, 'inspect --raw prints the manifest bytes');
  r = await runCli(['inspect', '--raw', '--config', ...s, img.name]);
  t.equal(sha256(Buffer.from(r.stdout)), img.config.digest);
  r = await runCli(['inspect', ...s, img.name]);
  const doc = JSON.parse(r.stdout);
  t.equal(doc.config.os, 'linux');
  t.equal(doc.manifest.layers.length, 2);

  r = await runCli(['tag', ...s, img.name, 'myapp']);
  t.equal(r.stdout.trim(), 'Tagged docker.io/library/myapp:latest');
  r = await runCli(['resolve', ...s, 'myapp']);
  t.equal(r.stdout.trim(), img.manifest.digest);
  r = await runCli(['rm', ...s, img.name, 'myapp', '--gc']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Removed 4 blobs/);
  r = await runCli(['images', '-q', ...s]);
  t.equal(r.stdout, '');
  oneLineError(t, await runCli(['rm', ...s, 'myapp']), 'docker.io/library/myapp:latest', store);
  oneLineError(t, await runCli(['inspect', ...s, 'ghost:1']), 'ghost:1');
});

t.test('the store comes from LXR_IMAGE_STORE when --store is not given', async (t) => {
  const img = await seedImage(reg.host, 'cli/env:1', { layers: [{ files: { e: 'env' } }] });
  const store = tempDir(t);
  const r = await runCli(['pull', '-q', img.name], { env: { LXR_IMAGE_STORE: store } });
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(join(store, 'blobs', 'sha256', img.manifest.digest.slice(7))));
});

t.test('errors: missing image, bad reference, unreachable registry, usage', async (t) => {
  const store = tempDir(t);
  oneLineError(t, await runCli(['pull', '--store', store, `${reg.host}/cli/none:9`], { env: fastEnv }), `${reg.host}/cli/none:9`, 'HTTP 404');
  oneLineError(t, await runCli(['pull', '--store', store, 'Bad:Ref'], { env: fastEnv }), '"Bad:Ref"');
  oneLineError(t, await runCli(['pull', '--store', store, '127.0.0.1:9/x:1'], { env: fastEnv }), '127.0.0.1:9');
  oneLineError(t, await runCli(['pull', '--store', store, '--platform', 'nonsense', `${reg.host}/cli/none:9`], { env: fastEnv }), 'nonsense');
  const u = await runCli(['frobnicate']);
  t.equal(u.code, 2, 'usage errors exit 2');
  t.match(u.stderr, /frobnicate/);
});

t.test('push --all-platforms, then pull --platform', async (t) => {
  const layout = tempDir(t);
  const name = `${reg.host}/cli/multi:1`;
  const ix = buildIndex(layout, {
    name,
    images: [
      { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { p: 'amd64' } }] },
      { platform: { os: 'linux', architecture: 'riscv64' }, layers: [{ files: { p: 'riscv64' } }] },
    ],
  });
  let r = await runCli(['push', '--all-platforms', '--store', layout, name]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `Pushed ${name}\nDigest: ${ix.index.digest}\n`);
  const store = tempDir(t);
  r = await runCli(['pull', '-q', '--platform', 'linux/riscv64', '--store', store, name]);
  t.equal(r.stdout.trim(), ix.images[1]!.manifest.digest);
  oneLineError(t, await runCli(['pull', '--platform', 'windows/amd64', '--store', store, name]), 'windows/amd64', 'linux/riscv64');
});

t.test('registries config: location override and mirrors; plain HTTP needs --insecure-registry', async (t) => {
  const img = await seedImage(reg.host, 'cli/mirrored:1', { layers: [{ files: { m: 'mirror' } }] });
  const dir = tempDir(t);
  const cfg = join(dir, 'registries.json');
  // "registry.invalid" does not resolve: only the configured endpoint can answer.
  writeFileSync(cfg, JSON.stringify({ registries: { 'registry.invalid': { mirrors: [reg.host] }, 'other.invalid': { location: reg.host } } }));
  const store = tempDir(t);
  let r = await runCli(['pull', '-q', '--registries-config', cfg, '--store', store, 'registry.invalid/cli/mirrored:1'], { env: fastEnv });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), img.manifest.digest);
  r = await runCli(['pull', '-q', '--registries-config', cfg, '--store', store, 'other.invalid/cli/mirrored:1'], { env: fastEnv });
  t.equal(r.stdout.trim(), img.manifest.digest);
  r = await runCli(['images', '-q', '--store', store]);
  t.same(r.stdout.trim().split('\n'), ['other.invalid/cli/mirrored:1', 'registry.invalid/cli/mirrored:1'], 'images keep the name the user asked for');
  writeFileSync(cfg, JSON.stringify({ registries: { 'other.invalid': { location: 'http://registry-host.invalid:5000' } } }));
  oneLineError(t, await runCli(['pull', '--registries-config', cfg, '--store', store, 'other.invalid/a:1'], { env: fastEnv }), 'registry-host.invalid:5000', '--insecure-registry');
  // the flag takes one value per occurrence: what follows is the command and its arguments
  r = await runCli(['--insecure-registry', 'registry-host.invalid:5000', 'images', '-q', '--store', store]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim().split('\n').length, 2, '--insecure-registry HOST leaves the command alone');
  r = await runCli(['inspect', '--store', store, '--insecure-registry', 'registry-host.invalid:5000', '--insecure-registry', 'b.invalid:1', 'other.invalid/cli/mirrored:1']);
  t.equal(r.code, 0, `and the image name after it (${r.stderr})`);
  writeFileSync(cfg, '{ not json');
  oneLineError(t, await runCli(['pull', '--registries-config', cfg, '--store', store, 'other.invalid/a:1']), cfg);
});

t.test('login with --password-stdin, pull with saved credentials, logout', async (t) => {
  const treg = await startTokenRegistry({ users: { erin: 'erin-pw-5' }, publicRepos: [] });
  t.teardown(treg.stop);
  const authfile = join(tempDir(t), 'auth.json');
  const bad = await runCli(['login', treg.host, '-u', 'erin', '--password-stdin', '--authfile', authfile], { input: 'not-her-password-8\n' });
  oneLineError(t, bad, treg.host, 'erin');
  t.notOk(bad.stderr.includes('not-her-password-8'), 'password not printed');
  let r = await runCli(['login', treg.host, '-u', 'erin', '--password-stdin', '--authfile', authfile], { input: 'erin-pw-5\n' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Login Succeeded/);
  t.equal(JSON.parse(readFileSync(authfile, 'utf8')).auths[treg.host].auth, Buffer.from('erin:erin-pw-5').toString('base64'));
  const layout = tempDir(t);
  const name = `${treg.host}/erin/app:1`;
  const { buildImage } = await import('./helpers/images.js');
  buildImage(layout, { name, layers: [{ files: { e: 'erin' } }] });
  r = await runCli(['push', '-q', '--authfile', authfile, '--store', layout, name]);
  t.equal(r.code, 0, r.stderr);
  r = await runCli(['pull', '-q', '--authfile', authfile, '--store', tempDir(t), name]);
  t.equal(r.code, 0, r.stderr);
  r = await runCli(['logout', treg.host, '--authfile', authfile]);
  t.equal(r.code, 0, r.stderr);
  oneLineError(t, await runCli(['pull', '-q', '--authfile', authfile, '--store', tempDir(t), name], { env: fastEnv }), name);
  oneLineError(t, await runCli(['logout', treg.host, '--authfile', authfile]), treg.host);
});

t.test('unpack calls the bundle unpacker on the resolved manifest', { skip: process.getuid?.() !== 0 && 'unpack needs root' }, async (t) => {
  const img = await seedImage(reg.host, 'cli/unpack:1', { layers: [{ files: { 'etc/': '', 'etc/motd': 'hello from lxr\n' } }] });
  const store = tempDir(t);
  let r = await runCli(['pull', '-q', '--store', store, img.name]);
  t.equal(r.code, 0, r.stderr);
  const bundle = join(tempDir(t), 'bundle');
  r = await runCli(['unpack', '--store', store, img.name, bundle]);
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8'), 'hello from lxr\n');
  t.ok(existsSync(join(bundle, 'config.json')));
  oneLineError(t, await runCli(['unpack', '--store', store, 'missing:1', join(tempDir(t), 'b2')]), 'missing:1');
});
