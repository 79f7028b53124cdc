// Pulling from a real registry (docker-registry on 127.0.0.1) into an OCI layout store.
import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startProxy, startRegistry, type RegistryHandle } from './helpers/registry.js';
import { buildImage, sha256 } from './helpers/images.js';
import { seedImage, seedIndex, skopeoCopyToRegistry, tempDir } from './helpers/seed.js';
import { expectImageError as rejects } from './helpers/assert.js';
import { pullImage, pushImage, resolveImage, listImages, type PullProgress } from '../index.js';

let reg: RegistryHandle;
t.before(async () => {
  reg = await startRegistry();
});
t.teardown(() => reg?.stop());

const noRetry = { attempts: 1 };

function indexJson(store: string): any {
  return JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
}

function blobBytes(store: string, digest: string): Buffer {
  return readFileSync(join(store, 'blobs', 'sha256', digest.slice(7)));
}

t.test('gzip, zstd and uncompressed layers are stored exactly as the registry has them', async (t) => {
  const img = await seedImage(reg.host, 'test/mixed:1', {
    layers: [
      { files: { 'etc/': '', 'etc/hostname': 'gz\n' }, compression: 'gzip' },
      { files: { 'usr/': '', 'usr/zst': 'zstd layer' }, compression: 'zstd' },
      { files: { plain: 'uncompressed' }, compression: 'none' },
    ],
  });
  const store = tempDir(t);
  const r = await pullImage({ reference: img.name, store, retry: noRetry });
  t.equal(r.reference, img.name);
  t.equal(r.manifestDigest, img.manifest.digest);
  t.equal(r.configDigest, img.config.digest);
  t.same(r.layers.map((l) => l.mediaType), img.layers.map((l) => l.mediaType));
  t.match(img.layers.map((l) => l.mediaType), [/tar\+gzip$/, /tar\+zstd$/, /tar$/]);
  for (const l of img.layers) t.equal(sha256(blobBytes(store, l.digest)), l.digest, `layer ${l.mediaType} stored compressed, as is`);
  t.same(JSON.parse(readFileSync(join(store, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const idx = indexJson(store);
  t.equal(idx.manifests.length, 1);
  t.equal(idx.manifests[0].digest, img.manifest.digest, 'index.json points at the image manifest');
  t.equal(idx.manifests[0].annotations['org.opencontainers.image.ref.name'], img.name);
  t.equal(await resolveImage(store, img.name), img.manifest.digest);
  t.equal(await resolveImage(store, `${reg.host}/test/other:1`), undefined);
});

t.test('Docker v2 schema 2 images pull like OCI ones', async (t) => {
  const img = await seedImage(reg.host, 'test/docker:1', { docker: true, layers: [{ files: { a: 'docker' } }] });
  const store = tempDir(t);
  const r = await pullImage({ reference: img.name, store, retry: noRetry });
  t.equal(r.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  t.equal(r.manifestDigest, img.manifest.digest);
  t.equal(blobBytes(store, img.manifest.digest).toString(), img.manifestBytes.toString(), 'manifest bytes kept verbatim');
});

t.test('multi-platform index: the host platform by default, --platform on request, a clear error otherwise', async (t) => {
  const ix = await seedIndex(reg.host, 'test/multi:1', {
    images: [
      { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { arch: 'amd64' } }] },
      { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [{ files: { arch: 'arm64' } }] },
      { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, layers: [{ files: { arch: 'armv7' } }] },
    ],
  });
  const store = tempDir(t);
  const host = process.arch === 'arm64' ? 1 : 0;
  const def = await pullImage({ reference: ix.name, store, retry: noRetry });
  t.equal(def.manifestDigest, ix.images[host]!.manifest.digest, 'host platform chosen');
  t.equal(def.indexDigest, ix.index.digest);
  const arm = await pullImage({ reference: ix.name, store, platform: 'linux/arm64', retry: noRetry });
  t.equal(arm.manifestDigest, ix.images[1]!.manifest.digest);
  const armv7 = await pullImage({ reference: ix.name, store, platform: 'linux/arm/v7', retry: noRetry });
  t.equal(armv7.manifestDigest, ix.images[2]!.manifest.digest);
  t.equal(indexJson(store).manifests.length, 1, 'one name, pointing at the last pulled platform');
  const before = readFileSync(join(store, 'index.json'), 'utf8');
  await rejects(t, pullImage({ reference: ix.name, store, platform: 'linux/s390x', retry: noRetry }), 'PLATFORM_NOT_FOUND', ix.name, 'linux/s390x', 'linux/arm64/v8');
  t.equal(readFileSync(join(store, 'index.json'), 'utf8'), before, 'index.json unchanged by the failed pull');
});

t.test('pull --all-platforms keeps the index; platforms resolve locally', async (t) => {
  const ix = await seedIndex(reg.host, 'test/multi-all:1', {
    images: [
      { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { arch: 'amd64-all' } }] },
      { platform: { os: 'linux', architecture: 'arm64' }, layers: [{ files: { arch: 'arm64-all' } }] },
    ],
  });
  const store = tempDir(t);
  await pullImage({ reference: ix.name, store, allPlatforms: true, retry: noRetry });
  t.equal(indexJson(store).manifests[0].digest, ix.index.digest);
  t.equal(await resolveImage(store, ix.name, 'linux/arm64'), ix.images[1]!.manifest.digest);
  t.equal(await resolveImage(store, ix.name, 'linux/amd64'), ix.images[0]!.manifest.digest);
  // And it can be pushed whole to another repository, then pulled per platform.
  await pushImage({ store, reference: ix.name, destination: `${reg.host}/test/multi-copy:2`, allPlatforms: true, retry: noRetry });
  const other = tempDir(t);
  const r = await pullImage({ reference: `${reg.host}/test/multi-copy:2`, store: other, platform: 'linux/arm64', retry: noRetry });
  t.equal(r.manifestDigest, ix.images[1]!.manifest.digest);
  t.equal(r.indexDigest, ix.index.digest, 'the index kept its digest through pull and push');
});

t.test('pull by digest names the image by digest', async (t) => {
  const img = await seedImage(reg.host, 'test/bydigest:1', { layers: [{ files: { d: 'digest' } }] });
  const store = tempDir(t);
  const ref = `${reg.host}/test/bydigest@${img.manifest.digest}`;
  const r = await pullImage({ reference: ref, store, retry: noRetry });
  t.equal(r.reference, ref);
  t.equal(indexJson(store).manifests[0].annotations['org.opencontainers.image.ref.name'], ref);
});

t.test('blobs are shared between images and not fetched twice', async (t) => {
  const base = { files: { 'base/': '', 'base/lib': 'shared base layer' } };
  const a = await seedImage(reg.host, 'test/share-a:1', { layers: [base, { files: { a: 'A' } }] });
  const b = await seedImage(reg.host, 'test/share-b:1', { layers: [base, { files: { b: 'B' } }] });
  t.equal(a.layers[0]!.digest, b.layers[0]!.digest);
  const store = tempDir(t);
  await pullImage({ reference: a.name, store, retry: noRetry });
  const events: PullProgress[] = [];
  await pullImage({ reference: b.name, store, retry: noRetry, onProgress: (e) => events.push(e) });
  const done = events.filter((e) => e.type === 'layer-done') as Array<Extract<PullProgress, { type: 'layer-done' }>>;
  t.same(done.find((e) => e.digest === a.layers[0]!.digest)?.cached, true, 'shared layer already present');
  t.same(done.find((e) => e.digest === b.layers[1]!.digest)?.cached, false, 'new layer downloaded');
  const blobs = readdirSync(join(store, 'blobs', 'sha256'));
  t.equal(blobs.length, 1 + 2 * 2 + 2, 'one shared layer, two own layers, two configs, two manifests');
  t.same((await listImages(store)).map((i) => i.reference), [a.name, b.name].sort());
});

t.test('interop with skopeo: pull what skopeo pushed, and skopeo reads what lxr-image pushed', { skip: !existsSync('/usr/bin/skopeo') && 'skopeo not installed' }, async (t) => {
  const layout = tempDir(t);
  const img = buildImage(layout, { name: 'seed', layers: [{ files: { s: 'from skopeo' }, compression: 'zstd' }, { files: { t: 'two' } }] });
  skopeoCopyToRegistry(layout, 'seed', `${reg.host}/test/skopeo:1`);
  const store = tempDir(t);
  const r = await pullImage({ reference: `${reg.host}/test/skopeo:1`, store, retry: noRetry });
  for (const l of r.layers) t.equal(sha256(blobBytes(store, l.digest)), l.digest);
  t.equal(r.layers.length, img.layers.length);
  // skopeo may convert media types; the digests of the layer blobs are what must agree.
  t.same(r.layers.map((l) => l.digest), img.layers.map((l) => l.digest));

  await pushImage({ store, reference: `${reg.host}/test/skopeo:1`, destination: `${reg.host}/test/from-lxr:7`, retry: noRetry });
  const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/from-lxr:7`], { encoding: 'buffer' });
  t.equal(raw.status, 0, raw.stderr?.toString());
  t.equal(sha256(raw.stdout), r.manifestDigest, 'skopeo sees the manifest lxr-image pushed, byte for byte');
});

t.test('layers download in parallel, three at a time by default', async (t) => {
  const img = await seedImage(reg.host, 'test/parallel:1', { layers: Array.from({ length: 6 }, (_, i) => ({ files: { [`f${i}`]: `layer ${i}` } })) });
  const layerDigests = new Set(img.layers.map((l) => l.digest));
  // Hold layer requests until three are waiting, then let them all go: a client that
  // fetched fewer at once would never finish; one that fetched more shows in `most`.
  let held: Array<() => void> = [];
  let open = 0;
  let most = 0;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    const digest = req.url!.split('/').pop()!;
    if (req.method !== 'GET' || !layerDigests.has(digest)) return ctx.forward();
    open++;
    most = Math.max(most, open);
    res.on('close', () => open--);
    held.push(() => ctx.forward());
    if (held.length === 3) {
      const go = held;
      held = [];
      go.forEach((f) => f());
    }
  });
  t.teardown(proxy.stop);
  const r = await pullImage({ reference: `${proxy.host}/test/parallel:1`, store: tempDir(t), retry: noRetry });
  t.equal(r.layers.length, 6);
  t.equal(most, 3, 'never more than three layer downloads at once');
});
