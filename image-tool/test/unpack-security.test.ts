// Hostile layers: nothing may be written outside the rootfs, whatever the entry names,
// symlinks and hard links say.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { unpackLayer } from '../unpack/index.js';
import { buildImage, listTree, makeTar } from './fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-hostile-'));
const outside = join(dir, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'victim'), 'precious');
const marker = `lxr-hostile-${process.pid}`;
t.teardown(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(join('/etc', marker), { force: true });
});

const hostile = () => [
  {
    entries: [
      { path: '../../escape-dotdot', content: 'x' },
      { path: '/abs-escape', content: 'x' },
      { path: 'evil', type: 'symlink' as const, linkname: outside },
      { path: 'evil/pwned', content: 'x' },
      { path: 'rel', type: 'symlink' as const, linkname: `${'../'.repeat(20)}${outside.slice(1)}` },
      { path: 'rel/pwned2', content: 'x' },
      { path: 'sys-etc', type: 'symlink' as const, linkname: '/etc' },
      { path: 'hardlink-inside', type: 'link' as const, linkname: '../../../abs-escape' },
    ],
  },
  {
    compression: 'none' as const,
    entries: [
      { path: `sys-etc/${marker}`, content: 'x' },
      { path: 'evil/.wh.victim' },
      { path: `rel/../../../${marker}-dotdot`, content: 'x' },
      { path: 'evil', content: 'replaces the symlink, does not write through it' },
    ],
  },
];

t.test('escaping names and symlinks stay inside the rootfs', async (t) => {
  const before = listTree(outside);
  const etcBefore = existsSync(join('/etc', marker));
  const img = buildImage(join(dir, 'layout'), hostile());
  const bundle = join(dir, 'bundle');
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle });
  const root = join(bundle, 'rootfs');
  t.same(listTree(outside), before, 'outside directory unchanged');
  t.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious', 'whiteout through a symlink did not delete outside');
  t.notOk(existsSync(join(outside, 'pwned')));
  t.notOk(existsSync(join(outside, 'pwned2')));
  t.equal(existsSync(join('/etc', marker)), etcBefore, `/etc/${marker} was not created on the host`);
  t.notOk(existsSync(join(dir, 'escape-dotdot')) || existsSync('/abs-escape') || existsSync(join(tmpdir(), 'escape-dotdot')));
  t.ok(existsSync(join(root, 'escape-dotdot')), '../ names are cleaned to the root');
  t.ok(existsSync(join(root, 'abs-escape')), 'absolute names are taken relative to the root');
  t.ok(existsSync(join(root, outside, 'pwned')), 'a file under an absolute symlink lands under the rootfs');
  t.ok(existsSync(join(root, outside, 'pwned2')), 'a file under a ../ symlink lands under the rootfs');
  t.ok(existsSync(join(root, 'etc', marker)), 'sys-etc -> /etc resolves to the rootfs /etc');
  t.ok(existsSync(join(root, `${marker}-dotdot`)));
  t.equal(readFileSync(join(root, 'evil'), 'utf8'), 'replaces the symlink, does not write through it');
});

t.test('a hard link to a path outside the rootfs is refused and nothing stays behind', async (t) => {
  const img = buildImage(join(dir, 'layout-hl'), [
    { entries: [{ path: 'hl', type: 'link', linkname: join(outside, 'victim') }] },
  ]);
  const bundle = join(dir, 'bundle-hl');
  await t.rejects(unpackBundle({ layout: img.layout, manifest: img.manifest, bundle }), {
    message: new RegExp(`^layer ${img.layers[0]!.digest}: entry hl: hard link target .*victim does not exist$`),
  });
  t.notOk(existsSync(bundle), 'the failed bundle was removed');
  t.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious');
});

t.test('a symlink loop is a clear error, not a hang', async (t) => {
  const img = buildImage(join(dir, 'layout-loop'), [
    {
      entries: [
        { path: 'a', type: 'symlink', linkname: 'b' },
        { path: 'b', type: 'symlink', linkname: '/a' },
        { path: 'a/file', content: 'x' },
      ],
    },
  ]);
  await t.rejects(unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, 'bundle-loop') }), {
    message: /entry a\/file: too many levels of symbolic links/,
  });
  t.notOk(existsSync(join(dir, 'bundle-loop')));
});

t.test('snapshot mode is confined the same way', async (t) => {
  const blob = join(dir, 'hostile.tar');
  writeFileSync(blob, makeTar(hostile()[0]!.entries));
  const dest = join(dir, 'snap');
  mkdirSync(dest);
  const before = listTree(outside);
  await unpackLayer({ blob, mediaType: 'application/vnd.oci.image.layer.v1.tar', dest, mode: 'snapshot' });
  t.same(listTree(outside), before, 'outside directory unchanged');
  t.ok(existsSync(join(dest, outside, 'pwned')));
  t.ok(existsSync(join(dest, 'escape-dotdot')));
});
