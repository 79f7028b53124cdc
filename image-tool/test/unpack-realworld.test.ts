// What real registries hold: layers whose media type names the wrong compression (a
// `docker save` / `podman save` archive pushed with its digests kept has plain tars labelled
// gzip), and PAX mtimes with nanoseconds. Compared with umoci, which unpacks both.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { unpackSnapshots } from '../unpack/index.js';
import { buildImage, compress, describeTree, LAYER_MEDIA, makeTar, type FixtureEntry } from './fixtures-image.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-realworld-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const haveUmoci = spawnSync('umoci', ['--version']).status === 0;
let n = 0;

/** Collect what is written to stderr while fn runs (the unpack library warns there). */
async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  const orig = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = orig;
  }
  return text;
}

const base: FixtureEntry[] = [{ path: 'etc/', type: 'dir' }, { path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }];
const top: FixtureEntry[] = [{ path: 'app/', type: 'dir' }, { path: 'app/hello', content: 'hello\n'.repeat(100), mode: 0o755 }];

for (const [label, data] of [['gzip', 'none'], ['gzip', 'zstd'], ['zstd', 'gzip'], ['zstd', 'none'], ['none', 'gzip']] as const) {
  t.test(`a layer labelled ${label} holding ${data === 'none' ? 'a plain tar' : `${data} data`} unpacks, with one warning`, async (t) => {
    const tar = makeTar(top);
    const img = buildImage(join(dir, `layout${++n}`), [{ entries: base }, { tar, blob: compress(tar, data), mediaType: LAYER_MEDIA[label] }], {}, 'v1');
    const warnings = await stderrOf(async () => {
      await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, `bundle${n}`) });
      await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: join(dir, `snaps${n}`) });
    });
    t.equal(readFileSync(join(dir, `bundle${n}`, 'rootfs', 'app', 'hello'), 'utf8'), 'hello\n'.repeat(100), 'the content (and the diff ID was verified)');
    const lines = warnings.trim().split('\n').filter((l) => l.includes(img.layers[1]!.digest));
    t.equal(lines.length, 1, `warned once for two unpacks: ${warnings}`);
    t.match(lines[0], new RegExp(`says ${label === 'none' ? 'an uncompressed tar' : `${label}-compressed`}, but the data is ${data === 'none' ? 'an uncompressed tar' : `${data}-compressed`}`));
    t.notMatch(warnings, img.layers[0]!.digest, 'no warning for the layer whose label is right');
    if (haveUmoci) {
      // umoci 0.4.7 trusts the label (newer ones and podman detect, as lxr does): give it the
      // same tars labelled right, and compare the trees
      const right = buildImage(join(dir, `right${n}`), [{ entries: base }, { tar, compression: 'gzip' }], {}, 'v1');
      const u = spawnSync('umoci', ['unpack', '--image', `${right.layout}:v1`, join(dir, `umoci${n}`)], { encoding: 'utf8' });
      t.equal(u.status, 0, u.stderr);
      const want = describeTree(join(dir, `umoci${n}`, 'rootfs'), { mtimes: 'files' });
      const got = describeTree(join(dir, `bundle${n}`, 'rootfs'), { mtimes: 'files' });
      t.same(got, want, 'the same tree as umoci\'s of the same layers labelled right');
    }
  });
}

t.test('the lxr-image CLI unpacks a gzip-labelled plain tar and warns once', async (t) => {
  const tar = makeTar(top);
  const img = buildImage(join(dir, 'clilayout'), [{ entries: base }, { tar, blob: tar, mediaType: LAYER_MEDIA.gzip }], {}, 'localhost/realworld:v1');
  const r = await runCli(['--store', img.layout, 'unpack', 'localhost/realworld:v1', join(dir, 'clibundle')]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr.split('\n').filter((l) => /warning: .*but the data is an uncompressed tar/.test(l)).length, 1, r.stderr);
});

t.test('bzip2 data, which no layer media type names, is refused clearly', async (t) => {
  const tar = makeTar(top);
  const r = spawnSync('bzip2', ['-c'], { input: tar });
  if (r.status !== 0) {
    t.pass('bzip2 is not installed: skipped');
    return;
  }
  const bz = r.stdout;
  const img = buildImage(join(dir, 'bzlayout'), [{ tar, blob: bz, mediaType: LAYER_MEDIA.gzip }], {}, 'v1');
  const err = await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, 'bzbundle') }).then(() => null, (e: Error) => e);
  t.match(err?.message, new RegExp(`^layer ${img.layers[0]!.digest}: bzip2-compressed data is not a supported layer format$`));
});

t.test('PAX mtimes keep their nanoseconds, as umoci keeps them', async (t) => {
  const T = '1796233108.897108188';
  const want = 1796233108897108188n;
  const entries: FixtureEntry[] = [
    { path: 'd/', type: 'dir', paxMtime: T },
    { path: 'd/f', content: 'x', paxMtime: '1796233108.000000001' },
    { path: 'd/l', type: 'symlink', linkname: 'f', paxMtime: T },
    { path: 'g', content: 'y', paxMtime: '1796233108.5' },
    { path: 'old', content: 'z', paxMtime: '-1.25' },
  ];
  const img = buildImage(join(dir, 'nslayout'), [{ entries: base }, { entries }], {}, 'v1');
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, 'nsbundle') });
  await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: join(dir, 'nssnaps') });
  const ns = (p: string) => lstatSync(p, { bigint: true }).mtimeNs;
  const root = join(dir, 'nsbundle', 'rootfs');
  const got = { d: ns(join(root, 'd')), f: ns(join(root, 'd/f')), l: ns(join(root, 'd/l')), g: ns(join(root, 'g')), old: ns(join(root, 'old')) };
  t.same(got, { d: want, f: 1796233108000000001n, l: want, g: 1796233108500000000n, old: -1250000000n });
  const snap = join(dir, 'nssnaps', img.layers[1]!.diffID.replace(':', '-'));
  t.equal(ns(join(snap, 'd')), want, 'the snapshot too');
  t.equal(ns(join(snap, 'd/l')), want, 'a symlink in the snapshot too');
  if (haveUmoci) {
    const u = spawnSync('umoci', ['unpack', '--image', `${img.layout}:v1`, join(dir, 'nsumoci')], { encoding: 'utf8' });
    t.equal(u.status, 0, u.stderr);
    const ur = join(dir, 'nsumoci', 'rootfs');
    t.same({ d: ns(join(ur, 'd')), f: ns(join(ur, 'd/f')), l: ns(join(ur, 'd/l')), g: ns(join(ur, 'g')), old: ns(join(ur, 'old')) }, got, 'umoci has the same times');
  }
});
