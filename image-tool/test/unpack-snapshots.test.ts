// Per-layer snapshots: mounted as an overlay (lowerdir = snapshots, top first) they must show the
// same tree as the unpacked bundle rootfs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { unpackSnapshots, snapshotName } from '../unpack/index.js';
import { getXattr } from '../unpack/libc.js';
import { buildImage, describeTree, featureLayers, FEATURE_CONFIG, type TreeEntry } from './fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-snap-'));
const mounts: string[] = [];
t.teardown(() => {
  for (const m of mounts.reverse()) spawnSync('umount', [m]);
  rmSync(dir, { recursive: true, force: true });
});

const img = buildImage(join(dir, 'layout'), featureLayers(), FEATURE_CONFIG);

t.test('snapshots keep whiteouts as overlay whiteouts', async (t) => {
  const snaps = await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: join(dir, 'snaps') });
  t.same(snaps.map((s) => basename(s)), img.layers.map((l) => snapshotName(l.diffID)), 'named by diff ID, bottom first');
  t.same(readdirSync(join(dir, 'snaps')).filter((f) => f.startsWith('.tmp-')), [], 'no temp dirs left');
  const [, l2, l3] = snaps as [string, string, string];
  const gone = lstatSync(join(l2, 'gone'));
  t.ok(gone.isCharacterDevice() && gone.rdev === 0, '.wh.gone is a 0/0 character device');
  t.ok(lstatSync(join(l2, 'keep/x')).isCharacterDevice(), 'keep/.wh.x too');
  t.equal(getXattr(join(l2, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y', 'opq/ is opaque');
  t.equal(getXattr(join(l3, 'a'), 'trusted.overlay.opaque')?.toString(), 'y', 'a/ is opaque');
  t.notOk(existsSync(join(l2, '.wh.gone')), 'no .wh. files in a snapshot');
  t.equal(lstatSync(join(l2, 'bin/hard2')).ino, lstatSync(join(l2, 'bin/tool')).ino, 'a hard link into a lower layer copies the file up, as overlayfs does');
  t.equal(statSync(join(l3, 'data2')).mtimeMs, 1_500_000_013_000, 'a directory implied by a deeper entry takes the lower directory attributes');
});

t.test('an overlay of the snapshots equals the unpacked rootfs', async (t) => {
  const snaps = await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: join(dir, 'snaps') });
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, 'bundle') });
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...snaps].reverse().join(':')}`, mnt], { encoding: 'utf8' });
  t.equal(m.status, 0, `mount -t overlay: ${m.stderr}`);
  mounts.push(mnt);
  const norm = (tree: Record<string, TreeEntry>) => {
    for (const e of Object.values(tree)) delete e.linkGroup; // overlay inodes of lower files keep lower link counts
    delete tree['.']!.mtime; // the root of the merged view is the top snapshot directory
    for (const p of ['newdir', 'newdir/sub', 'deep', `deep/${'d'.repeat(60)}`, `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`]) delete tree[p]!.mtime;
    return tree;
  };
  const merged = norm(describeTree(mnt, { mtimes: 'all', skipXattr: (n) => n.startsWith('trusted.overlay.') }));
  const rootfs = norm(describeTree(join(dir, 'bundle', 'rootfs'), { mtimes: 'all' }));
  t.same(Object.keys(merged).sort(), Object.keys(rootfs).sort(), 'same paths');
  for (const p of Object.keys(rootfs)) t.same(merged[p], rootfs[p], p);
  t.equal(spawnSync('umount', [mnt]).status, 0, 'unmounted');
  mounts.pop();
});

t.test('a snapshot already there is reused; concurrent calls unpack each layer once', async (t) => {
  const snapsDir = join(dir, 'snaps2');
  const [a, b] = await Promise.all([
    unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: snapsDir }),
    unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: snapsDir }),
  ]);
  t.same(a, b);
  const inodes = a!.map((s) => statSync(s).ino);
  writeFileSync(join(a![0]!, 'marker-from-test'), 'x');
  const again = await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: snapsDir });
  t.same(again.map((s) => statSync(s).ino), inodes, 'the same directories');
  t.ok(existsSync(join(again[0]!, 'marker-from-test')), 'not unpacked again');
  t.same(readdirSync(snapsDir).filter((f) => !f.endsWith('.lock')).sort(), a!.map((s) => basename(s)).sort(), 'nothing else in the snapshots dir');
});

t.test('a crashed unpack (temp dir left behind) is cleaned up and redone', async (t) => {
  const snapsDir = join(dir, 'snaps3');
  const name = snapshotName(img.layers[0]!.diffID);
  mkdirSync(join(snapsDir, `.tmp-${name}-12345-dead`, 'half'), { recursive: true });
  const snaps = await unpackSnapshots({ layout: img.layout, manifest: img.manifest, snapshots: snapsDir });
  t.notOk(existsSync(join(snapsDir, `.tmp-${name}-12345-dead`)));
  t.ok(existsSync(join(snaps[0]!, 'etc/passwd')));
});
