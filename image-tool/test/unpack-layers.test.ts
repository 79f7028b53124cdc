// What a user sees in a rootfs unpacked from layers: layer.md semantics, checked one by one.
import t from 'tap';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { unpackLayer } from '../unpack/index.js';
import { getXattr } from '../unpack/libc.js';
import { buildImage, compress, featureLayers, FEATURE_CONFIG, makeTar } from './fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-layers-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a three-layer image (gzip, zstd, tar) applies as layer.md says', async (t) => {
  const img = buildImage(join(dir, 'layout'), featureLayers(), FEATURE_CONFIG);
  const bundle = join(dir, 'bundle');
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle });
  const r = (p: string) => join(bundle, 'rootfs', p);
  t.equal(statSync(bundle).mode & 0o777, 0o700, 'bundle directory is private');
  t.notOk(existsSync(r('gone')), 'whiteout .wh.gone removed a directory with its contents');
  t.same(readdirSync(r('opq')), ['new'], 'opaque whiteout hid all lower children of opq/');
  t.equal(statSync(r('opq')).mode & 0o7777, 0o755, 'opq/ took the new layer attributes');
  t.same(readdirSync(r('keep')).sort(), ['y'], 'keep/.wh.x removed only x');
  t.same(readdirSync(r('a/b/c')), ['foo'], 'a/.wh..wh..opq after a/b/c/foo still hides only the lower a/b/c/bar');
  t.equal(lstatSync(r('link-rel'), { throwIfNoEntry: false }), undefined, 'symlink whited out');
  t.equal(readFileSync(r('data/file'), 'utf8'), 'modified data\n', 'modified file replaced');
  t.equal(readFileSync(r('data/hard'), 'utf8'), 'original data\n', 'the old hard link keeps the old inode');
  t.equal(statSync(r('data/hard')).ino, lstatSync(r('data/hard')).ino);
  t.equal(statSync(r('bin/hard2')).ino, statSync(r('bin/tool')).ino, 'hard link to a file of an earlier layer');
  t.equal(statSync(r('bin/tool')).mode & 0o7777, 0o4755, 'setuid kept');
  t.equal(statSync(r('bin/sgid')).mode & 0o7777, 0o2755, 'setgid kept');
  t.equal(statSync(r('bin/sgid')).gid, 50);
  t.equal(statSync(r('tmp')).mode & 0o7777, 0o1777, 'sticky kept');
  t.equal(statSync(r('sticky')).mode & 0o7777, 0o3775);
  t.same(getXattr(r('bin/ping'), 'security.capability'), Buffer.from('0100000200200000000000000000000000000000', 'hex'), 'file capability (binary PAX xattr)');
  t.same(getXattr(r('bin/ping'), 'user.comment'), Buffer.from([0, 1, 2, 0xff, 0x80]), 'binary user xattr');
  const dev = lstatSync(r('dev/null'));
  t.ok(dev.isCharacterDevice() && dev.rdev === 0x103 && (dev.mode & 0o777) === 0o666, 'char device 1:3');
  t.ok(lstatSync(r('dev/loop7')).isBlockDevice(), 'block device');
  t.equal(lstatSync(r('hard-to-dev')).ino, lstatSync(r('dev/null')).ino, 'hard link to a device node');
  t.ok(lstatSync(r('run/fifo')).isFIFO(), 'fifo');
  t.equal(lstatSync(r('run/fifo')).mode & 0o777, 0o620);
  t.equal(readlinkSync(r('link-abs')), '/etc/passwd', 'symlink target verbatim');
  t.equal(lstatSync(r('link-dangling')).isFile(), true, 'a file replaced a symlink (not written through it)');
  t.equal(lstatSync(r('rep')).isFile(), true, 'a file replaced a directory');
  t.equal(statSync(r('data')).uid, 1000, 'ownership');
  t.equal(statSync(r('data/empty')).uid, 1001);
  t.equal(statSync(r('data/empty')).mtimeMs, 0, 'mtime 0 kept');
  t.equal(statSync(r('bin')).mtimeMs, 1_500_000_003_000, 'a lower directory keeps its mtime when a layer adds to it');
  t.equal(statSync(r('etc')).mtimeMs, 1_500_000_104_000, 'directory mtime set after its contents');
  t.equal(statSync(r('etc')).mode & 0o777, 0o711, 'directory attributes replaced by a later layer');
  t.equal(readFileSync(r('ro/new'), 'utf8'), 'into a read-only dir');
  t.equal(statSync(r('ro')).mode & 0o777, 0o555);
  t.equal(readFileSync(r('newdir/sub/file'), 'utf8'), 'implicit parents');
  t.equal(statSync(r('newdir')).mode & 0o7777, 0o755, 'implicit parents are 0755');
  const walk = (p: string): string[] => readdirSync(p).flatMap((n) => [n, ...(lstatSync(join(p, n)).isDirectory() ? walk(join(p, n)) : [])]);
  t.same(walk(r('')).filter((n) => n.startsWith('.wh.')), [], 'no whiteout files remain');
});

t.test('Docker media type and an uncompressed layer through unpackLayer', async (t) => {
  const tar = makeTar([{ path: 'hello', content: 'docker' }, { path: 'x/', type: 'dir', mode: 0o711 }]);
  const blob = join(dir, 'docker.tgz');
  writeFileSync(blob, compress(tar, 'gzip'));
  const dest = join(dir, 'docker-rootfs');
  mkdirSync(dest);
  await unpackLayer({ blob, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', dest, mode: 'rootfs' });
  t.equal(readFileSync(join(dest, 'hello'), 'utf8'), 'docker');
  t.equal(statSync(join(dest, 'x')).mode & 0o777, 0o711);
});

t.test('a 64 MiB file arrives intact (many chunks through the reader)', async (t) => {
  const big = Buffer.alloc(64 << 20, 7);
  const tar = makeTar([{ path: 'big', content: big }]);
  const blob = join(dir, 'big.tar');
  writeFileSync(blob, tar);
  const dest = join(dir, 'big-rootfs');
  mkdirSync(dest);
  await unpackLayer({ blob, mediaType: 'application/vnd.oci.image.layer.v1.tar', dest, mode: 'rootfs' });
  t.equal(statSync(join(dest, 'big')).size, big.length);
  t.ok(readFileSync(join(dest, 'big')).equals(big), 'content intact');
});
