// The image store as an OCI image layout: readable by skopeo and umoci, safe under
// concurrent pulls from several processes, consistent after a killed pull, and gc,
// tag and rm keeping exactly the blobs that named images need.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startProxy, startRegistry, type RegistryHandle } from './helpers/registry.js';
import { sha256 } from './helpers/images.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { expectImageError } from './helpers/assert.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { gcStore, listImages, pullImage, removeImage, resolveImage, tagImage } from '../index.js';

let reg: RegistryHandle;
t.before(async () => {
  reg = await startRegistry();
});
t.teardown(() => reg?.stop());

const noRetry = { attempts: 1 };

/** Every blob's content matches its name, and index.json parses. */
function checkConsistent(t: Test, store: string): any {
  const dir = join(store, 'blobs', 'sha256');
  for (const f of readdirSync(dir)) t.equal(sha256(readFileSync(join(dir, f))), `sha256:${f}`, `blob ${f.slice(0, 12)} matches its name`);
  return JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
}

t.test('skopeo and umoci read the store as an OCI layout', { skip: !(existsSync('/usr/bin/skopeo') && existsSync('/usr/bin/umoci')) && 'needs skopeo and umoci (apt-get install -y skopeo umoci)' }, async (t) => {
  const img = await seedImage(reg.host, 'store/oci:1', { layers: [{ files: { a: 'a' } }, { files: { b: 'b' }, compression: 'zstd' }] });
  const store = tempDir(t);
  await pullImage({ reference: img.name, store, retry: noRetry });
  const s = spawnSync('skopeo', ['inspect', `oci:${store}:${img.name}`], { encoding: 'utf8' });
  t.equal(s.status, 0, s.stderr);
  t.equal(JSON.parse(s.stdout).Digest, img.manifest.digest);
  const u = spawnSync('umoci', ['ls', '--layout', store], { encoding: 'utf8' });
  t.equal(u.status, 0, u.stderr);
  t.equal(u.stdout.trim(), img.name);
});

t.test('concurrent pulls from several processes into one store', async (t) => {
  const tags = ['1', '2', '3', '4'];
  const shared = { files: { 'shared/': '', 'shared/big': randomBytes(512 << 10) }, compression: 'none' as const };
  const imgs = await Promise.all(tags.map((tag) => seedImage(reg.host, `store/conc:${tag}`, { layers: [shared, { files: { tag } }] })));
  const store = tempDir(t);
  // The same image twice and four different ones, all at once, in six processes.
  const runs = await Promise.all([...imgs.map((i) => i.name), imgs[0]!.name, imgs[1]!.name].map((n) => runCli(['pull', '--quiet', '--store', store, n])));
  for (const r of runs) t.equal(r.code, 0, r.stderr);
  const idx = checkConsistent(t, store);
  t.same(idx.manifests.map((d: any) => d.annotations['org.opencontainers.image.ref.name']).sort(), imgs.map((i) => i.name).sort(), 'every name recorded once, none lost');
  for (const i of imgs) t.equal(await resolveImage(store, i.name), i.manifest.digest);
  t.same(readdirSync(join(store, '.lxr', 'ingest')), [], 'no partial downloads left');
  // And in one process: the shared layer is fetched once.
  const store2 = tempDir(t);
  const rs = await Promise.all(imgs.map((i) => pullImage({ reference: i.name, store: store2, retry: noRetry })));
  t.same(rs.map((r) => r.manifestDigest), imgs.map((i) => i.manifest.digest));
  t.equal(checkConsistent(t, store2).manifests.length, 4);
});

t.test('a pull killed mid-download leaves the store consistent and the next pull resumes', async (t) => {
  const big = randomBytes(4 << 20);
  const img = await seedImage(reg.host, 'store/killed:1', { layers: [{ files: { big }, compression: 'none' }] });
  const layer = img.layers[0]!;
  let stall = true;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (stall && req.url!.endsWith(layer.digest) && req.method === 'GET') {
      // Send the headers and 1 MiB, then hang: the client waits until it is killed.
      stall = false;
      res.writeHead(200, { 'content-length': String(layer.size) });
      const blob = readFileSync(join(reg.dataDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data'));
      res.write(blob.subarray(0, 1 << 20));
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const name = `${proxy.host}/store/killed:1`;
  const p = spawnCli(['pull', '--quiet', '--store', store, name]);
  const partial = join(store, '.lxr', 'ingest', `sha256-${layer.digest.slice(7)}`);
  const exited = new Promise((r) => p.once('exit', r));
  // Wait until the download has landed on disk, then kill -9 (like a crash).
  for (let i = 0; i < 400 && !(existsSync(partial) && statSync(partial).size >= 1 << 20); i++) await new Promise((r) => setTimeout(r, 25));
  t.ok(existsSync(partial), 'download in progress');
  p.kill('SIGKILL');
  await exited;
  const idx = checkConsistent(t, store);
  t.same(idx.manifests, [], 'no image named');
  t.notOk(existsSync(join(store, 'blobs', 'sha256', layer.digest.slice(7))), 'no unfinished blob under its name');
  const r = await runCli(['pull', '--quiet', '--store', store, name]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), img.manifest.digest);
  const gets = proxy.requests.filter((q) => q.url.endsWith(layer.digest));
  t.equal(gets.at(-1)!.headers.range, `bytes=${1 << 20}-`, 'resumed where the killed pull stopped');
  checkConsistent(t, store);
});

t.test('tag, rm and gc keep exactly the blobs named images need', async (t) => {
  const base = { files: { 'base/': '', 'base/f': 'base' } };
  const a = await seedImage(reg.host, 'store/gc-a:1', { layers: [base, { files: { a: 'only a' } }] });
  const b = await seedImage(reg.host, 'store/gc-b:1', { layers: [base, { files: { b: 'only b' } }] });
  const store = tempDir(t);
  await pullImage({ reference: a.name, store, retry: noRetry });
  await pullImage({ reference: b.name, store, retry: noRetry });
  t.equal(await tagImage(store, a.name, 'myapp:v1'), 'docker.io/library/myapp:v1');
  t.equal(await resolveImage(store, 'myapp:v1'), a.manifest.digest);
  t.equal(await resolveImage(store, a.manifest.digest.slice(7, 19)), a.manifest.digest, 'digest prefix resolves');
  // Scratch left by a crash: a temp file and a partial download.
  mkdirSync(join(store, '.lxr', 'ingest'), { recursive: true });
  writeFileSync(join(store, '.lxr', 'ingest', `sha256-${'0'.repeat(64)}`), 'partial');
  writeFileSync(join(store, '.lxr', 'tmp', 'junk.tmp'), 'x');
  writeFileSync(join(store, 'blobs', 'sha256', 'f'.repeat(64)), 'orphan');

  const r1 = await removeImage(store, a.name);
  t.equal(r1.reference, a.name);
  let g = await gcStore(store);
  t.same(g.removed, [`sha256:${'f'.repeat(64)}`], 'a is still named myapp:v1: only the orphan goes');
  t.equal(g.scratch, 2);
  await removeImage(store, 'myapp:v1');
  g = await gcStore(store);
  t.same(g.removed.sort(), [a.manifest.digest, a.config.digest, a.layers[1]!.digest].sort(), "a's own blobs go, the shared base stays");
  t.ok(g.freedBytes > 0);
  const left = readdirSync(join(store, 'blobs', 'sha256')).map((f) => `sha256:${f}`).sort();
  t.same(left, [b.manifest.digest, b.config.digest, ...b.layers.map((l) => l.digest)].sort());
  t.same((await listImages(store)).map((i) => i.reference), [b.name]);
  await expectImageError(t, removeImage(store, a.name), 'NOT_FOUND', a.name, store);
  await expectImageError(t, tagImage(store, 'nothing:here', 'x:y'), 'NOT_FOUND', 'nothing:here');
});

t.test('a pull into a store that is not an OCI layout is refused', async (t) => {
  const store = tempDir(t);
  writeFileSync(join(store, 'oci-layout'), '{"imageLayoutVersion":"9.9"}');
  await expectImageError(t, pullImage({ reference: `${reg.host}/store/x:1`, store, retry: noRetry }), 'STORE', join(store, 'oci-layout'), '9.9');
});

t.test('gc waits for a pull in progress instead of removing its blobs', async (t) => {
  const img = await seedImage(reg.host, 'store/gc-race:1', { layers: [{ files: { r: randomBytes(100_000) } }] });
  const layer = img.layers[0]!;
  let release!: () => void;
  let onRequest!: () => void;
  const requested = new Promise<void>((r) => (onRequest = r));
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (req.method === 'GET' && req.url!.endsWith(layer.digest)) {
      release = () => ctx.forward();
      onRequest();
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const pulling = pullImage({ reference: `${proxy.host}/store/gc-race:1`, store, retry: noRetry });
  await requested; // the config is stored, nothing names it yet
  t.ok(existsSync(join(store, 'blobs', 'sha256', img.config.digest.slice(7))), 'config already in the store');
  let gcDone = false;
  const collecting = gcStore(store).then((g) => {
    gcDone = true;
    return g;
  });
  // Give an unlocked gc every chance to run now; a correct one is blocked by the pull.
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(gcDone, 'gc has not run while the pull holds the store');
  release();
  const [r, g] = await Promise.all([pulling, collecting]);
  t.equal(r.manifestDigest, img.manifest.digest);
  t.same(g.removed, [], 'gc removed nothing the new image needs');
  for (const d of [img.manifest.digest, img.config.digest, layer.digest]) t.ok(existsSync(join(store, 'blobs', 'sha256', d.slice(7))), `${d.slice(7, 19)} kept`);
});

t.test('Ctrl-C stops a pull with exit 130 and keeps the partial download', async (t) => {
  const img = await seedImage(reg.host, 'store/sigint:1', { layers: [{ files: { big: randomBytes(3 << 20) }, compression: 'none' }] });
  const layer = img.layers[0]!;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (req.method === 'GET' && req.url!.endsWith(layer.digest) && !req.headers.range) {
      res.writeHead(200, { 'content-length': String(layer.size) });
      res.write(randomBytes(1 << 20)); // then nothing more: the pull waits
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const p = spawnCli(['pull', '--store', store, `${proxy.host}/store/sigint:1`]);
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const partial = join(store, '.lxr', 'ingest', `sha256-${layer.digest.slice(7)}`);
  for (let i = 0; i < 400 && !(existsSync(partial) && statSync(partial).size >= 1 << 20); i++) await new Promise((r) => setTimeout(r, 25));
  p.kill('SIGINT');
  t.equal(await exited, 130);
  t.match(stderr, /^lxr-image: interrupted by SIGINT; partial downloads are kept for the next pull$/m);
  t.equal(statSync(partial).size, 1 << 20, 'the bytes received are kept');
  t.same(checkConsistent(t, store).manifests, []);
});

t.test('ingestBlob copies each chunk out as it arrives: a body that reuses its buffer stores the blob intact', async (t) => {
  // The store must not hold on to the chunks a download hands it (holding them kept their
  // memory alive across minor GCs: bench/pull's peak RSS). A source that refills one buffer
  // for every chunk, as a socket read into a reused buffer does, shows whether it does.
  const { ImageStore } = await import('../layout/store.js');
  const root = join(tempDir(t), 'store');
  const store = await ImageStore.open(root, { create: true });
  const data = randomBytes(3 << 20);
  const digest = sha256(data);
  const reused = Buffer.alloc(64 << 10);
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let off = 0; off < data.length; off += reused.length) {
      const n = data.copy(reused, 0, off, off + reused.length);
      yield reused.subarray(0, n);
    }
  }
  const fetched = await store.ingestBlob({ digest, size: data.length }, async () => ({ body: body(), offset: 0 }));
  t.equal(fetched, true, 'downloaded');
  t.ok(readFileSync(join(root, 'blobs', 'sha256', digest.slice(7))).equals(data), 'the stored blob is the data sent, byte for byte');
});
