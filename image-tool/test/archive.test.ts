// Images in and out of the store in the formats other tools use, each checked with those
// tools as the readers (and writers): `copy --format oci` / `save --format oci-dir` read by
// umoci and skopeo, oci-archive and docker-archive by skopeo and `podman load`; podman's
// own archives loaded back; `import` of a rootfs tarball.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCli } from './helpers/cli.js';
import { describeTree } from './fixtures-image.js';
import { rootfsLayer, BUSYBOX } from '../../test/engines/helpers/image.js';
import { tarOf } from '../../test/helpers/tar.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';

const dir = mkdtempSync(join(tmpdir(), 'lxr-archive-'));
const NAME = 'localhost/arch:1';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
let pod: Podman | undefined;
t.teardown(async () => {
  await pod?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A store holding NAME as a pulled Docker image looks: a v2s2 manifest, a Docker config, a
 * gzip layer (busybox) and a plain tar labelled gzip (as pushed `docker save` archives are).
 */
function dockerStore(store: string): { layers: Buffer[] } {
  mkdirSync(join(store, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(store, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = (b: Buffer) => {
    writeFileSync(join(store, 'blobs', 'sha256', sha(b).slice(7)), b);
    return sha(b);
  };
  const tars = [rootfsLayer(), tarOf([{ path: 'hello', type: 'file', data: 'hello from the second layer\n' }])];
  const blobs = [gzipSync(tars[0]!), tars[1]!];
  const layers = blobs.map((b) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: blob(b), size: b.length }));
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Cmd: ['cat', '/hello'] },
    rootfs: { type: 'layers', diff_ids: tars.map(sha) },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: blob(config), size: config.length }, layers,
  }));
  const md = blob(manifest);
  writeFileSync(join(store, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': NAME } }],
  }));
  return { layers: tars };
}

const cli = (store: string, args: string[]) => runCli(['--store', store, ...args]);

/** The rootfs lxr-image unpacks for `name` from `store`, described file by file. */
async function unpacked(store: string, name: string, at: string) {
  const r = await cli(store, ['unpack', name, at]);
  if (r.code !== 0) throw new Error(`unpack ${name}: ${r.stderr}`);
  return describeTree(join(at, 'rootfs'), { mtimes: 'files' });
}

if (!BUSYBOX) {
  t.plan(0, 'busybox is needed (apt-get install busybox-static)');
} else {
  const store = join(dir, 'store');
  dockerStore(store);
  let want: ReturnType<typeof describeTree>;
  t.before(async () => {
    want = await unpacked(store, NAME, join(dir, 'want'));
    if (which('podman') && which('runc') && !process.env.LXR_TEST_NO_PODMAN) pod = await startPodman();
  });

  t.test('copy --format oci writes an OCI layout that umoci and skopeo read', async (t) => {
    const out = join(dir, 'oci');
    const r = await cli(store, ['copy', '--format', 'oci', NAME, out]);
    t.equal(r.code, 0, r.stderr);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    const m = JSON.parse(readFileSync(join(out, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    t.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json', 'an OCI manifest');
    t.equal(m.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    t.same(m.layers.map((l: { mediaType: string }) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar'], 'layer types follow their bytes');
    const u = spawnSync('umoci', ['unpack', '--image', `${out}:${NAME}`, join(dir, 'umoci')], { encoding: 'utf8' });
    t.equal(u.status, 0, `umoci unpack: ${u.stderr}`);
    t.same(describeTree(join(dir, 'umoci', 'rootfs'), { mtimes: 'files' }), want, 'umoci\'s rootfs is lxr\'s');
    const s = spawnSync('skopeo', ['inspect', `oci:${out}:${NAME}`], { encoding: 'utf8' });
    t.equal(s.status, 0, `skopeo inspect: ${s.stderr}`);
    t.equal(JSON.parse(s.stdout).Layers.length, 2);
    t.equal(JSON.parse(s.stdout).Digest, index.manifests[0].digest);
  });

  t.test('save oci-archive: skopeo and podman load read it; lxr-image load reads it back', async (t) => {
    const file = join(dir, 'img.oci.tar');
    const r = await cli(store, ['save', '--format', 'oci-archive', '-o', file, NAME]);
    t.equal(r.code, 0, r.stderr);
    const s = spawnSync('skopeo', ['inspect', `oci-archive:${file}:${NAME}`], { encoding: 'utf8' });
    t.equal(s.status, 0, `skopeo inspect: ${s.stderr}`);
    const back = join(dir, 'back-oci');
    const l = await cli(back, ['load', '-i', file]);
    t.equal(l.code, 0, l.stderr);
    t.match(l.stdout, `Loaded ${NAME}`);
    t.same(await unpacked(back, NAME, join(dir, 'back-oci-bundle')), want, 'the same rootfs');
    if (pod) {
      const p = pod.podman('runc', ['load', '-i', file]);
      t.equal(p.status, 0, `podman load: ${p.stderr}`);
      const run = pod.podman('runc', ['run', '--rm', '--network', 'none', NAME]);
      t.equal(run.stdout, 'hello from the second layer\n', `podman runs it: ${run.stderr}`);
      pod.podman('runc', ['rmi', '-f', NAME]);
    }
  });

  t.test('save docker-archive: podman load reads it; lxr-image load reads it back', async (t) => {
    const file = join(dir, 'img.docker.tar');
    const r = await cli(store, ['save', '--format', 'docker-archive', '-o', file, NAME]);
    t.equal(r.code, 0, r.stderr);
    const s = spawnSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' });
    t.equal(s.status, 0, `skopeo inspect: ${s.stderr}`);
    const back = join(dir, 'back-docker');
    const l = await cli(back, ['load', '-i', file]);
    t.equal(l.code, 0, l.stderr);
    t.same(await unpacked(back, NAME, join(dir, 'back-docker-bundle')), want, 'the same rootfs');
    // the loaded image has an OCI manifest already: copy writes it unchanged (its digest stays)
    const c = await cli(back, ['copy', NAME, join(dir, 'back-docker-oci')]);
    t.equal(c.code, 0, c.stderr);
    const digestIn = (d: string) => JSON.parse(readFileSync(join(d, 'index.json'), 'utf8')).manifests[0].digest;
    t.equal(digestIn(join(dir, 'back-docker-oci')), digestIn(back), 'the same manifest digest');
    if (pod) {
      const p = pod.podman('runc', ['load', '-i', file]);
      t.equal(p.status, 0, `podman load: ${p.stderr}`);
      const run = pod.podman('runc', ['run', '--rm', '--network', 'none', NAME]);
      t.equal(run.stdout, 'hello from the second layer\n', `podman runs it: ${run.stderr}`);
    }
  });

  t.test('podman save (oci-archive and docker-archive) loads into the store', { skip: !which('podman') && 'podman is not installed' }, async (t) => {
    if (!pod) return;
    for (const format of ['oci-archive', 'docker-archive']) {
      const file = join(dir, `podman.${format}.tar`);
      const p = pod.podman('runc', ['save', '--format', format, '-o', file, NAME]);
      t.equal(p.status, 0, `podman save: ${p.stderr}`);
      const back = join(dir, `from-podman-${format}`);
      const l = await cli(back, ['load', '-i', file]);
      t.equal(l.code, 0, `${format}: ${l.stderr}`);
      t.same(await unpacked(back, NAME, join(dir, `from-podman-${format}-bundle`)), want, `${format}: the same rootfs`);
    }
  });

  t.test('import makes a one-layer image of a rootfs tarball', async (t) => {
    const tar = tarOf([{ path: 'etc/', type: 'dir' }, { path: 'etc/motd', type: 'file', data: 'imported\n' }]);
    for (const [kind, data] of [['plain', tar], ['gzip', gzipSync(tar)]] as const) {
      const file = join(dir, `rootfs-${kind}.tar`);
      writeFileSync(file, data);
      const st = join(dir, `import-${kind}`);
      const r = await cli(st, ['import', file, 'localhost/imported:1', '--cmd', 'cat', '--cmd', '/etc/motd']);
      t.equal(r.code, 0, r.stderr);
      const tree = await unpacked(st, 'localhost/imported:1', join(dir, `import-${kind}-bundle`));
      t.same(Object.keys(tree).sort(), ['.', 'etc', 'etc/motd']);
      const inspect = JSON.parse((await cli(st, ['inspect', 'localhost/imported:1'])).stdout);
      t.same(inspect.config?.config?.Cmd ?? inspect.Config?.Cmd ?? inspect.config?.Cmd, ['cat', '/etc/motd'], 'the Cmd');
      t.same(JSON.stringify(inspect).includes(sha(tar)), true, 'the diff ID is the uncompressed tar\'s');
    }
    const bad = join(dir, 'not-a-tar');
    writeFileSync(bad, 'just text, no tar here'.repeat(40));
    const r = await cli(join(dir, 'import-bad'), ['import', bad, 'localhost/bad:1']);
    t.not(r.code, 0);
    t.match(r.stderr, bad);
  });
}
