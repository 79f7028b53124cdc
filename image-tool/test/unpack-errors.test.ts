// Every broken input gives one clear line naming the layer (or manifest/config) at fault, and a
// failed unpack leaves no half-written bundle.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { unpackSnapshots } from '../unpack/index.js';
import { buildImage, compress, makeTar, writeBlob, type FixtureLayer } from './fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-errors-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const good: FixtureLayer = { entries: [{ path: 'etc/', type: 'dir' }, { path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }] };
const payload = makeTar(Array.from({ length: 200 }, (_, i) => ({ path: `f${i}`, content: `file number ${i} `.repeat(50) })));
let n = 0;

async function expectFailure(
  t: Test,
  layers: FixtureLayer[],
  message: (img: ReturnType<typeof buildImage>) => RegExp,
  mutate?: (img: ReturnType<typeof buildImage>) => void,
  config: Record<string, unknown> = {},
  snapshotsToo = true,
) {
  const img = buildImage(join(dir, `layout${++n}`), layers, config);
  mutate?.(img);
  const bundle = join(dir, `bundle${n}`);
  const err = await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle }).then(
    () => null,
    (e: Error) => e,
  );
  t.ok(err, 'unpack failed');
  t.match(err?.message, message(img));
  t.notMatch(err?.message ?? '', /\n/, 'one line');
  t.notOk(existsSync(bundle), 'no bundle left behind');
  if (!snapshotsToo) return;
  const snaps = join(dir, `snaps${n}`);
  const serr = await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: snaps }).then(
    () => null,
    (e: Error) => e,
  );
  t.match(serr?.message, message(img), 'unpackSnapshots fails the same way');
  if (existsSync(snaps)) {
    const left = readdirSync(snaps).filter((f) => !f.endsWith('.lock'));
    t.ok(left.every((f) => !f.startsWith('.tmp-')), 'no temp snapshot left');
  }
}

t.test('truncated gzip', (t) =>
  expectFailure(t, [good, { tar: payload, blob: compress(payload, 'gzip').subarray(0, 900) }], (img) =>
    new RegExp(`^layer ${img.layers[1]!.digest}: corrupt or truncated gzip data \\(unexpected end of file\\)$`),
  ),
);

t.test('corrupt gzip', (t) => {
  const z = Buffer.from(compress(payload, 'gzip'));
  for (let i = 100; i < 140; i++) z[i] = z[i]! ^ 0x5a;
  return expectFailure(t, [good, { tar: payload, blob: z }], (img) => new RegExp(`^layer ${img.layers[1]!.digest}: corrupt or truncated gzip data`));
});

t.test('corrupt zstd', (t) =>
  expectFailure(t, [good, { tar: payload, compression: 'zstd', blob: compress(payload, 'zstd').subarray(0, 300) }], (img) =>
    new RegExp(`^layer ${img.layers[1]!.digest}: corrupt zstd data`),
  ),
);

t.test('missing blob', (t) =>
  expectFailure(
    t,
    [good, { tar: payload }],
    (img) => new RegExp(`^layer ${img.layers[1]!.digest}: blob .*/blobs/sha256/${img.layers[1]!.digest.slice(7)} is missing$`),
    (img) => unlinkSync(join(img.layout, 'blobs', 'sha256', img.layers[1]!.digest.slice(7))),
  ),
);

t.test('digest mismatch', (t) =>
  expectFailure(
    t,
    [good, { tar: payload }],
    (img) => new RegExp(`^layer ${img.layers[1]!.digest}: digest mismatch: blob .* has sha256:[0-9a-f]{64}$`),
    (img) => writeFileSync(join(img.layout, 'blobs', 'sha256', img.layers[1]!.digest.slice(7)), compress(makeTar([{ path: 'other' }]), 'gzip')),
  ),
);

t.test('diff ID mismatch', (t) =>
  expectFailure(t, [good, { tar: payload, blob: compress(makeTar([{ path: 'not-the-same' }]), 'gzip') }], (img) =>
    new RegExp(`^layer ${img.layers[1]!.digest}: diff ID mismatch: expected ${img.layers[1]!.diffID}`),
  ),
);

t.test('unsupported media type', (t) =>
  expectFailure(t, [good, { tar: payload, mediaType: 'application/vnd.oci.image.layer.v1.tar+bzip2' }], (img) =>
    new RegExp(`^layer ${img.layers[1]!.digest}: unsupported media type "application/vnd.oci.image.layer.v1.tar\\+bzip2"$`),
  ),
);

t.test('garbage instead of a tar', (t) =>
  expectFailure(t, [good, { tar: Buffer.alloc(2048, 0x41), compression: 'none' }], (img) =>
    new RegExp(`^layer ${img.layers[1]!.digest}: invalid tar header checksum$`),
  ),
);

t.test('unknown Config.User', (t) =>
  expectFailure(t, [good], (img) => new RegExp(`^image config ${img.config}: user "nobody-here" \\(Config.User "nobody-here"\\) is not in the image's /etc/passwd$`), undefined, {
    config: { User: 'nobody-here' },
  }, false),
);

t.test('malformed JSON manifest and config, missing manifest', async (t) => {
  const layout = join(dir, 'layout-json');
  buildImage(layout, [good]);
  const bad = writeBlob(layout, Buffer.from('{"schemaVersion": 2, '));
  await t.rejects(unpackBundle({ layout, manifest: bad, bundle: join(dir, 'b-json') }), { message: new RegExp(`^manifest ${bad}: malformed JSON \\(`) });
  const cfg = writeBlob(layout, Buffer.from('{nope'));
  const m = writeBlob(
    layout,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: 5 }, layers: [] })),
  );
  await t.rejects(unpackBundle({ layout, manifest: m, bundle: join(dir, 'b-json') }), { message: new RegExp(`^image config ${cfg}: malformed JSON`) });
  const missing = `sha256:${'0'.repeat(64)}`;
  await t.rejects(unpackBundle({ layout, manifest: missing, bundle: join(dir, 'b-json') }), { message: new RegExp(`^manifest ${missing}: blob .* is missing$`) });
  await t.rejects(unpackBundle({ layout, manifest: 'sha256:xyz', bundle: join(dir, 'b-json') }), { message: /invalid digest "sha256:xyz"/ });
  t.notOk(existsSync(join(dir, 'b-json')));
});

t.test('a bundle directory that is not empty is refused and left alone', async (t) => {
  const img = buildImage(join(dir, 'layout-ne'), [good]);
  const bundle = join(dir, 'bundle-ne');
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'mine'), 'keep');
  await t.rejects(unpackBundle({ layout: img.layout, manifest: img.manifest, bundle }), { message: `bundle ${bundle}: already exists and is not empty` });
  t.same(readdirSync(bundle), ['mine']);
  // An existing empty directory is fine, and stays after a failure.
  const empty = join(dir, 'bundle-empty');
  mkdirSync(empty);
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: empty });
  t.same(readdirSync(empty).sort(), ['config.json', 'rootfs']);
});
