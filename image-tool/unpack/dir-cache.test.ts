// The unpacker caches directories it has resolved within a layer. Entries later in the same
// layer that replace a directory by a symlink, or delete it, must never be written through
// the stale cache: into the old place, or (the hostile case) outside the rootfs.
import t from 'tap';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackLayer } from './index.js';
import { makeTar, type FixtureEntry } from '../test/fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-dircache-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const outside = join(dir, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'victim'), 'precious');

let n = 0;
async function apply(dest: string, entries: FixtureEntry[], mode: 'rootfs' | 'snapshot' = 'rootfs', rootless = false): Promise<void> {
  const blob = join(dir, `layer-${n++}.tar`);
  writeFileSync(blob, makeTar(entries));
  await unpackLayer({ blob, mediaType: 'application/vnd.oci.image.layer.v1.tar', dest, mode, rootless });
}

// A directory's time (and, rootless, its mode) is set by path when its layer ends; if a
// symlink has taken the directory's name by then, that must not follow the symlink.
for (const rootless of [false, true]) {
  t.test(`times and modes of a replaced directory do not follow its replacement${rootless ? ' (rootless)' : ''}`, async (t) => {
    const root = join(dir, `times-${rootless}`);
    mkdirSync(root);
    const target = join(dir, `target-${rootless}`);
    mkdirSync(target, 0o755);
    chmodSync(target, 0o755);
    utimesSync(target, 1000, 1000);
    await apply(
      root,
      [
        { path: 'd/', type: 'dir', mode: 0o555, mtime: 1_600_000_000 },
        { path: 'd/inner/', type: 'dir', mode: 0o500, mtime: 1_600_000_001 },
        { path: 'd', type: 'symlink', linkname: target },
        { path: 'e/', type: 'dir', mtime: 1_600_000_002 },
        { path: 'e/inner/', type: 'dir', mtime: 1_600_000_003 },
        { path: 'e', type: 'symlink', linkname: '../../..' },
      ],
      'rootfs',
      rootless,
    );
    t.ok(lstatSync(join(root, 'd')).isSymbolicLink());
    t.equal(statSync(target).mtimeMs, 1_000_000, "the symlink target's mtime is untouched");
    t.equal(statSync(target).mode & 0o777, 0o755, "the symlink target's mode is untouched");
    t.equal(statSync(root).mtimeMs > 1_600_000_003_000, true, 'no entry time reached the rootfs through e');
  });
}

for (const mode of ['rootfs', 'snapshot'] as const) {
  t.test(`${mode}: a directory replaced by a symlink in the same layer`, async (t) => {
    const root = join(dir, `replace-${mode}`);
    mkdirSync(root);
    await apply(
      root,
      [
        { path: 'b/', type: 'dir' },
        { path: 'a/', type: 'dir' },
        { path: 'a/sub/', type: 'dir' },
        { path: 'a/sub/x', content: 'old' },
        { path: 'a', type: 'symlink', linkname: '/b' },
        { path: 'a/sub/y', content: 'new' },
        { path: 'c/', type: 'dir' },
        { path: 'c/d/', type: 'dir' },
        { path: 'c/d/f', content: 'f' },
        { path: 'c', type: 'symlink', linkname: outside },
        { path: 'c/d/g', content: 'must stay inside' },
      ],
      mode,
    );
    t.ok(lstatSync(join(root, 'a')).isSymbolicLink(), 'a is now the symlink');
    t.equal(readFileSync(join(root, 'b', 'sub', 'y'), 'utf8'), 'new', 'a/sub/y went through the new symlink, into b/sub');
    t.notOk(existsSync(join(root, 'b', 'sub', 'x')), 'the old directory and its file are gone');
    t.equal(readFileSync(join(root, outside.slice(1), 'd', 'g'), 'utf8'), 'must stay inside', 'an absolute symlink resolves inside the rootfs');
    t.same(readdirSync(outside), ['victim'], 'nothing was written outside the rootfs');
    t.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious');
  });
}

t.test('rootfs: a whiteout deletes a cached directory, a symlink takes its name', async (t) => {
  const root = join(dir, 'whiteout');
  mkdirSync(root);
  await apply(root, [
    { path: 'w/', type: 'dir' },
    { path: 'w/s/', type: 'dir' },
    { path: 'w/s/lower', content: 'lower' },
    { path: 'z/', type: 'dir' },
  ]);
  await apply(root, [
    { path: 'w/s/f1', content: 'resolves w/s' },
    { path: '.wh.w' },
    { path: 'w', type: 'symlink', linkname: 'z' },
    { path: 'w/s/f2', content: 'through the symlink' },
  ]);
  t.ok(lstatSync(join(root, 'w')).isSymbolicLink(), 'w is the symlink');
  t.equal(readFileSync(join(root, 'z', 's', 'f2'), 'utf8'), 'through the symlink', 'w/s was resolved again after the whiteout');
  t.notOk(existsSync(join(root, 'z', 's', 'lower')), 'nothing of the lower w/s appears under z');
});

t.test('a file replacing a directory, then a directory again, in one layer', async (t) => {
  const root = join(dir, 'flipflop');
  mkdirSync(root);
  await apply(root, [
    { path: 'p/', type: 'dir' },
    { path: 'p/q/', type: 'dir' },
    { path: 'p/q/one', content: '1' },
    { path: 'p', content: 'now a file' },
    { path: 'p/', type: 'dir', mode: 0o700 },
    { path: 'p/q/two', content: '2' },
  ]);
  t.ok(lstatSync(join(root, 'p')).isDirectory(), 'p is a directory again');
  t.equal(lstatSync(join(root, 'p')).mode & 0o777, 0o700, 'with the last entry\'s mode');
  t.same(readdirSync(join(root, 'p', 'q')), ['two'], 'p/q was made anew: only the file after the flip');
});
