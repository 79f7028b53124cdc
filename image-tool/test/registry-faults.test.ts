// Registry faults and bad input: retries on 429/5xx, cut connections resumed with Range,
// corrupt blobs, malformed or unsupported manifests, missing images, unreachable
// registries, a full disk. Each gives a clear one-line error and leaves the store consistent.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, startProxy, startRegistry, type RegistryHandle } from './helpers/registry.js';
import { sha256 } from './helpers/images.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { expectImageError } from './helpers/assert.js';
import { pullImage } from '../index.js';

let reg: RegistryHandle;
t.before(async () => {
  reg = await startRegistry();
});
t.teardown(() => reg?.stop());

const fast = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };
const noRetry = { attempts: 1 };
const BLOB = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/;
const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;

function storeState(store: string): { index: string; blobs: string[]; ingest: string[] } {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).sort() : []);
  return {
    index: readFileSync(join(store, 'index.json'), 'utf8'),
    blobs: list(join(store, 'blobs', 'sha256')),
    ingest: list(join(store, '.lxr', 'ingest')),
  };
}

t.test('429 and 5xx answers are retried with backoff', async (t) => {
  const img = await seedImage(reg.host, 'faults/retry:1', { layers: [{ files: { a: 'retry me' } }] });
  const failed = new Set<string>();
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    const key = `${req.method} ${req.url}`;
    if (!failed.has(key) && (MANIFEST.test(req.url!) || BLOB.test(req.url!))) {
      failed.add(key);
      if (BLOB.test(req.url!)) res.writeHead(429, { 'retry-after': '0' }).end();
      else res.writeHead(503).end();
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const name = `${proxy.host}/faults/retry:1`;
  await expectImageError(t, pullImage({ reference: name, store: tempDir(t), retry: noRetry }), 'HTTP', 'HTTP 503', `http://${proxy.host}/v2/faults/retry/manifests/1`);
  failed.clear();
  const r = await pullImage({ reference: name, store: tempDir(t), retry: fast });
  t.equal(r.manifestDigest, img.manifest.digest);
  const blobGets = proxy.requests.filter((q) => BLOB.test(q.url) && q.method === 'GET');
  t.ok(blobGets.length >= 4, 'each blob asked for twice (429, then 200)');
});

t.test('a connection cut mid-blob is resumed with a Range request', async (t) => {
  const big = randomBytes(3 << 20);
  const img = await seedImage(reg.host, 'faults/resume:1', { layers: [{ files: { big }, compression: 'none' }] });
  const layer = img.layers[0]!;
  let cut = true;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (cut && req.url!.endsWith(layer.digest) && req.method === 'GET') {
      cut = false;
      ctx.forward({ cutAfter: 1 << 20 });
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const r = await pullImage({ reference: `${proxy.host}/faults/resume:1`, store, retry: fast });
  t.equal(r.layers[0]!.digest, layer.digest);
  const gets = proxy.requests.filter((q) => q.url.endsWith(layer.digest));
  t.equal(gets.length, 2);
  t.equal(gets[0]!.headers.range, undefined);
  const start = Number(/^bytes=(\d+)-$/.exec(String(gets[1]!.headers.range))?.[1]);
  t.ok(start > 0 && start <= 1 << 20, `second request resumes at ${start}`);
  t.equal(sha256(readFileSync(join(store, 'blobs', 'sha256', layer.digest.slice(7)))), layer.digest);
  t.same(storeState(store).ingest, [], 'no partial download left');
});

t.test('an interrupted pull leaves a partial download that the next pull resumes', async (t) => {
  const big = randomBytes(2 << 20);
  const img = await seedImage(reg.host, 'faults/resume2:1', { layers: [{ files: { big }, compression: 'none' }] });
  const layer = img.layers[0]!;
  let cut = true;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (cut && req.url!.endsWith(layer.digest) && req.method === 'GET') {
      cut = false;
      ctx.forward({ cutAfter: 600_000 });
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const name = `${proxy.host}/faults/resume2:1`;
  await expectImageError(t, pullImage({ reference: name, store, retry: noRetry }), 'HTTP', layer.digest);
  const partial = join(store, '.lxr', 'ingest', `sha256-${layer.digest.slice(7)}`);
  const have = statSync(partial).size;
  t.ok(have > 0 && have <= 600_000, `partial download kept (${have} bytes)`);
  t.same(JSON.parse(storeState(store).index).manifests, [], 'no image named after the failed pull');
  await pullImage({ reference: name, store, retry: noRetry });
  const gets = proxy.requests.filter((q) => q.url.endsWith(layer.digest));
  t.equal(gets.at(-1)!.headers.range, `bytes=${have}-`, 'the second pull asked only for the rest');
  t.equal(sha256(readFileSync(join(store, 'blobs', 'sha256', layer.digest.slice(7)))), layer.digest);
});

t.test('a registry that ignores Range makes the download restart from zero, still correct', async (t) => {
  const big = randomBytes(1 << 20);
  const img = await seedImage(reg.host, 'faults/norange:1', { layers: [{ files: { big }, compression: 'none' }] });
  const layer = img.layers[0]!;
  let cut = true;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    delete req.headers.range;
    if (cut && req.url!.endsWith(layer.digest)) {
      cut = false;
      ctx.forward({ cutAfter: 300_000 });
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  await pullImage({ reference: `${proxy.host}/faults/norange:1`, store, retry: fast });
  t.equal(sha256(readFileSync(join(store, 'blobs', 'sha256', layer.digest.slice(7)))), layer.digest);
});

t.test('a blob that does not match its digest is rejected and deleted', async (t) => {
  const img = await seedImage(reg.host, 'faults/corrupt:1', { layers: [{ files: { c: 'the real content' } }] });
  const layer = img.layers[0]!;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (req.url!.endsWith(layer.digest) && req.method === 'GET') {
      res.writeHead(200, { 'content-length': String(layer.size) }).end(Buffer.alloc(layer.size, 0x41));
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  await pullImage({ reference: `${reg.host}/faults/corrupt:1`, store: tempDir(t), retry: noRetry }); // sanity: the image itself is fine
  await expectImageError(t, pullImage({ reference: `${proxy.host}/faults/corrupt:1`, store, retry: noRetry }), 'DIGEST_MISMATCH', layer.digest);
  const s = storeState(store);
  t.notOk(s.blobs.includes(layer.digest.slice(7)), 'corrupt blob not stored');
  t.same(s.ingest, [], 'corrupt download deleted');
  t.same(JSON.parse(s.index).manifests, []);
});

t.test('malformed, schema 1 and unsupported manifests are refused by name', async (t) => {
  const answers: Record<string, { type: string; body: string }> = {
    bad: { type: 'application/vnd.oci.image.manifest.v1+json', body: '{"schemaVersion": 2, "config": ' },
    s1: { type: 'application/vnd.docker.distribution.manifest.v1+prettyjws', body: JSON.stringify({ schemaVersion: 1, name: 'x/s1', tag: '1', fsLayers: [] }) },
    weird: { type: 'application/vnd.example.thing+json', body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json' }) },
    artifact: {
      type: 'application/vnd.oci.image.manifest.v1+json',
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.example.sbom.config+json', digest: sha256('x'), size: 1 },
        layers: [],
      }),
    },
    badlayer: {
      type: 'application/vnd.oci.image.manifest.v1+json',
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('x'), size: 1 },
        layers: [{ mediaType: 'application/vnd.example.layer.v1.tar+lz4', digest: sha256('y'), size: 1 }],
      }),
    },
    traversal: {
      type: 'application/vnd.oci.image.manifest.v1+json',
      body: JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:../../etc/passwd', size: 1 }, layers: [] }),
    },
  };
  const proxy = await startProxy(reg.host, (req, res) => {
    const m = MANIFEST.exec(req.url!);
    const a = m && answers[m[2]!];
    if (!a) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': a.type }).end(a.body);
  });
  t.teardown(proxy.stop);
  const store = tempDir(t);
  const n = (tag: string) => `${proxy.host}/faults/m:${tag}`;
  await expectImageError(t, pullImage({ reference: n('bad'), store, retry: noRetry }), 'MALFORMED', n('bad'), 'JSON');
  await expectImageError(t, pullImage({ reference: n('s1'), store, retry: noRetry }), 'UNSUPPORTED', n('s1'), 'schema 1');
  await expectImageError(t, pullImage({ reference: n('weird'), store, retry: noRetry }), 'UNSUPPORTED', 'application/vnd.example.thing+json');
  await expectImageError(t, pullImage({ reference: n('artifact'), store, retry: noRetry }), 'UNSUPPORTED', 'application/vnd.example.sbom.config+json');
  await expectImageError(t, pullImage({ reference: n('badlayer'), store, retry: noRetry }), 'UNSUPPORTED', 'tar+lz4');
  await expectImageError(t, pullImage({ reference: n('traversal'), store, retry: noRetry }), 'MALFORMED', 'sha256:../../etc/passwd');
  const s = storeState(store);
  t.same(JSON.parse(s.index).manifests, []);
  t.same(s.blobs, []);
});

t.test('missing repository or tag: 404 with the full reference', async (t) => {
  await seedImage(reg.host, 'faults/exists:1', { layers: [{ files: { e: 'e' } }] });
  const store = tempDir(t);
  await expectImageError(t, pullImage({ reference: `${reg.host}/faults/exists:nope`, store, retry: noRetry }), 'NOT_FOUND', `${reg.host}/faults/exists:nope`, 'HTTP 404');
  await expectImageError(t, pullImage({ reference: `${reg.host}/faults/no-such-repo`, store, retry: noRetry }), 'NOT_FOUND', `${reg.host}/faults/no-such-repo:latest`);
  const d = sha256('nothing');
  await expectImageError(t, pullImage({ reference: `${reg.host}/faults/exists@${d}`, store, retry: noRetry }), 'NOT_FOUND', d);
  t.same(JSON.parse(storeState(store).index).manifests, []);
});

t.test('an unreachable registry is named in the error', async (t) => {
  const port = await freePort();
  await expectImageError(t, pullImage({ reference: `127.0.0.1:${port}/x/y:1`, store: tempDir(t), retry: { attempts: 2, baseDelayMs: 5 } }), 'UNREACHABLE', `127.0.0.1:${port}`, 'ECONNREFUSED');
});

t.test('plain HTTP is refused for registries not marked insecure', async (t) => {
  await expectImageError(t, pullImage({
        reference: `registry.invalid/x/y:1`,
        store: tempDir(t),
        config: { insecureRegistries: [], registryMirrors: [], registries: { 'registry.invalid': { mirrors: ['http://mirror.invalid'] } } },
        retry: noRetry,
      }), 'CONFIG', 'mirror.invalid', '--insecure-registry');
});

t.test('a full disk fails the pull cleanly', { skip: process.getuid?.() !== 0 && 'needs root to mount a tmpfs' }, async (t) => {
  const big = randomBytes(3 << 20);
  await seedImage(reg.host, 'faults/big:1', { layers: [{ files: { big }, compression: 'none' }] });
  const dir = join(tempDir(t), 'small');
  mkdirSync(dir);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lxr-test-full', dir], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.fail(`cannot mount a tmpfs: ${m.stderr}`);
    return;
  }
  t.teardown(() => void spawnSync('umount', ['-l', dir]));
  await expectImageError(t, pullImage({ reference: `${reg.host}/faults/big:1`, store: dir, retry: noRetry }), 'NO_SPACE', 'no space left', dir);
  const s = storeState(dir);
  t.same(JSON.parse(s.index).manifests, [], 'no image named');
  t.same(s.ingest, [], 'the partial download was removed to give the space back');
});
