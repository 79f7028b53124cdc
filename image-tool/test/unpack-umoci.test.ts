// lxr's unpack must equal umoci's, file for file, on an image that uses every layer feature.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackBundle } from '../bundle/unpack.js';
import { validateConfig } from '../../oci-spec/validators.generated.js';
import { buildImage, describeTree, featureLayers, FEATURE_CONFIG } from './fixtures-image.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-umoci-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Directories no layer entry describes get the time of their creation in both tools.
const IMPLICIT = ['newdir', 'newdir/sub', 'deep', `deep/${'d'.repeat(60)}`, `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`];
// The rootfs directory itself: both tools leave it with the time they finished, which
// differs between the two runs (by a second now and then).
const ROOT = '.';
// umoci lets the opaque whiteout's deletions move a/b/c's mtime after setting it from the
// entry; layer.md says the entry's attributes replace the directory's, so lxr keeps the entry's.
const DELIBERATE = ['a/b/c'];

t.test('umoci is installed', async (t) => {
  const r = spawnSync('umoci', ['--version'], { encoding: 'utf8' });
  t.equal(r.status, 0, 'umoci runs (apt-get install umoci)');
});

t.test('unpackBundle equals umoci unpack, file for file', async (t) => {
  const img = buildImage(join(dir, 'layout'), featureLayers(), FEATURE_CONFIG, 'v1');
  // umoci 0.4 reads no zstd: give it the same tars gzip-compressed (same diff IDs).
  buildImage(join(dir, 'ulayout'), featureLayers(), FEATURE_CONFIG, 'v1', 'gzip');
  const u = spawnSync('umoci', ['unpack', '--image', `${join(dir, 'ulayout')}:v1`, join(dir, 'umoci')], { encoding: 'utf8' });
  t.equal(u.status, 0, `umoci unpack: ${u.stderr}`);
  await unpackBundle({ layout: img.layout, manifest: img.manifest, bundle: join(dir, 'lxr') });

  const want = describeTree(join(dir, 'umoci', 'rootfs'), { mtimes: 'all' });
  const got = describeTree(join(dir, 'lxr', 'rootfs'), { mtimes: 'all' });
  for (const p of [ROOT, ...IMPLICIT, ...DELIBERATE]) {
    t.ok(want[p] && got[p], `${p} exists in both`);
    delete want[p]!.mtime;
    delete got[p]!.mtime;
  }
  t.same(Object.keys(got).sort(), Object.keys(want).sort(), 'same paths');
  for (const p of Object.keys(want)) t.same(got[p], want[p], p);
  t.ok(Object.keys(want).length > 40, 'the image is not trivially small');
  t.equal(got['a/b/c']!.type, 'dir');

  // config.json: the conversion.md fields agree with umoci's.
  const mine = JSON.parse(readFileSync(join(dir, 'lxr', 'config.json'), 'utf8'));
  const theirs = JSON.parse(readFileSync(join(dir, 'umoci', 'config.json'), 'utf8'));
  t.ok(validateConfig(mine), `config.json validates: ${JSON.stringify(validateConfig.errors)}`);
  t.same(mine.process.args, theirs.process.args, 'args');
  t.same(mine.process.user, theirs.process.user, 'user with additional gids');
  t.equal(mine.process.cwd, theirs.process.cwd, 'cwd');
  t.same(
    mine.process.env,
    theirs.process.env.filter((e: string) => !e.startsWith('TERM=')),
    'env (umoci adds TERM for its terminal: true)',
  );
  const ann = { ...theirs.annotations };
  // conversion.md: Config.Labels take precedence over implicit annotations; umoci 0.4.7 lets
  // `author` win. lxr follows the spec.
  ann['org.opencontainers.image.author'] = 'label wins';
  for (const [k, v] of Object.entries(ann)) t.equal(mine.annotations[k], v, `annotation ${k}`);
});
