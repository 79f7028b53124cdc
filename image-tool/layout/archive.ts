// Moving images in and out of the store, in the formats other tools read and write:
//   save   oci-archive (a tar of an OCI layout: podman save --format oci-archive, skopeo),
//          oci-dir (an OCI layout directory: umoci, skopeo's oci:), docker-archive (docker
//          save / podman save). The OCI formats get OCI manifests, converted from Docker
//          ones as skopeo converts them (the config and layer blobs stay the same bytes).
//   load   any of the three (podman save, docker save, skopeo copy oci-archive:...).
//   import a rootfs tarball (plain, gzip or zstd) as a one-layer image (docker/podman import).
// The store keeps pulled manifests as they came (their digests are what registries know).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, writeSync, type WriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join, posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ImageError } from '../core/errors.js';
import { hostPlatform, isIndexType, MediaType, parseManifest, type Descriptor, type ImageManifest } from '../core/manifest.js';
import { normalizeReference, parseReference } from '../core/reference.js';
import { detectCompression, openLayerStream, type Compression } from '../unpack/layer-stream.js';
import { TarReader } from '../unpack/tar-reader.js';
import { findImage, openStore, readManifestBlob, resolveImage, type StoreArg } from './images.js';
import { REF_NAME, type ImageStore } from './store.js';

export type SaveFormat = 'oci-archive' | 'oci-dir' | 'docker-archive';
export const SAVE_FORMATS: SaveFormat[] = ['oci-archive', 'oci-dir', 'docker-archive'];

const OCI_LAYER: Record<Compression, string> = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd };

// ---------------------------------------------------------------------------- tar writing

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar writer for archives of our own making (short names, regular files and directories). */
class TarWriter {
  private readonly out: WriteStream;
  private failed: Error | undefined;
  constructor(path: string) {
    this.out = createWriteStream(path, { mode: 0o644 });
    this.out.on('error', (e) => (this.failed = e));
  }

  private async write(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.out.write(b)) await once(this.out, 'drain');
  }

  private header(name: string, size: number, type: '0' | '5'): Buffer {
    if (Buffer.byteLength(name) > 100) throw new Error(`archive member name too long: ${name}`);
    const h = Buffer.alloc(512);
    h.write(name, 0, 'utf8');
    h.write(octal(type === '5' ? 0o755 : 0o644, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(size, 12), 124);
    h.write(octal(0, 12), 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write('ustar\0', 257, 'latin1');
    h.write('00', 263, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148);
    return h;
  }

  async dir(name: string): Promise<void> {
    await this.write(this.header(name.endsWith('/') ? name : `${name}/`, 0, '5'));
  }

  async data(name: string, data: Buffer): Promise<void> {
    await this.write(this.header(name, data.length, '0'));
    await this.write(data);
    await this.pad(data.length);
  }

  async file(name: string, path: string): Promise<void> {
    const size = (await stat(path)).size;
    await this.write(this.header(name, size, '0'));
    let n = 0;
    for await (const c of createReadStream(path, { highWaterMark: 1 << 18 })) {
      n += (c as Buffer).length;
      await this.write(c as Buffer);
    }
    if (n !== size) throw new Error(`${path} changed while it was archived`);
    await this.pad(size);
  }

  private async pad(size: number): Promise<void> {
    const r = size % 512;
    if (r) await this.write(Buffer.alloc(512 - r));
  }

  async finish(): Promise<void> {
    await this.write(Buffer.alloc(1024));
    this.out.end();
    await once(this.out, 'close');
    if (this.failed) throw this.failed;
  }

  async abort(): Promise<void> {
    this.out.destroy();
  }
}

/** Where save writes: a directory (oci-dir) or a tar. */
interface Sink {
  dir(name: string): Promise<void>;
  data(name: string, data: Buffer): Promise<void>;
  file(name: string, path: string): Promise<void>;
}

function dirSink(root: string): Sink {
  return {
    dir: (name) => mkdir(join(root, name), { recursive: true }).then(() => {}),
    data: async (name, data) => {
      await mkdir(dirname(join(root, name)), { recursive: true });
      await writeFile(join(root, name), data);
    },
    file: async (name, path) => {
      await mkdir(dirname(join(root, name)), { recursive: true });
      await copyFile(path, join(root, name));
    },
  };
}

// ---------------------------------------------------------------------------- save

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface SavedImage {
  reference: string;
  manifest: ImageManifest;
  manifestDigest: string;
}

/** The image manifest of a reference (one platform: the host's, or `platform`). */
async function imageManifest(store: ImageStore, reference: string, platform?: string): Promise<{ name: string; manifest: ImageManifest; digest: string }> {
  const hit = await findImage(store, reference);
  if (!hit) throw new ImageError('NOT_FOUND', `image ${reference} is not in store ${store.root}`);
  const digest = await resolveImage(store, reference, platform);
  if (!digest) throw new ImageError('NOT_FOUND', `image ${reference} is not in store ${store.root}`);
  const p = await readManifestBlob(store, { mediaType: MediaType.OciManifest, digest, size: 0 });
  if (p.kind !== 'manifest') throw new ImageError('MALFORMED', `${hit.name}: ${digest} is not an image manifest`);
  return { name: hit.name, manifest: p.manifest, digest };
}

/**
 * The OCI form of a manifest, as skopeo converts a Docker one: OCI media types, the same
 * config and layer blobs. A layer's type follows its bytes (a gzip label on a plain tar is
 * corrected), so that readers that trust the label (umoci) read it.
 */
function ociManifest(store: ImageStore, m: ImageManifest): ImageManifest {
  const layers = m.layers.map((l) => {
    const c = detectCompression(store.blobPath(l.digest), l.digest) ?? 'gzip';
    const nondist = /nondistributable|foreign/.test(l.mediaType);
    const mediaType = nondist && c === 'gzip' ? MediaType.OciLayerNondistGzip : OCI_LAYER[c];
    const d: Descriptor = { mediaType, digest: l.digest, size: l.size };
    if (l.annotations) d.annotations = l.annotations;
    if (l.urls) d.urls = l.urls;
    return d;
  });
  const out: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: m.config.digest, size: m.config.size },
    layers,
  };
  if (m.annotations) out.annotations = m.annotations;
  return out;
}

export interface SaveOptions {
  store?: StoreArg;
  references: string[];
  /** a file (archives) or a directory (oci-dir) */
  output: string;
  format: SaveFormat;
  platform?: string;
}

export async function saveImages(o: SaveOptions): Promise<{ images: { reference: string; digest: string }[] }> {
  if (!SAVE_FORMATS.includes(o.format)) throw new ImageError('UNSUPPORTED', `format "${o.format}": use ${SAVE_FORMATS.join(', ')}`);
  if (o.references.length === 0) throw new ImageError('BAD_REFERENCE', 'save: name at least one image');
  const store = await openStore(o.store, false);
  return store.withWriterLock(async () => {
    const images: SavedImage[] = [];
    for (const ref of o.references) {
      const { name, manifest, digest } = await imageManifest(store, ref, o.platform);
      images.push({ reference: name, manifest, manifestDigest: digest });
    }
    await mkdir(join(store.root, '.lxr', 'tmp'), { recursive: true });
    const tmpDir = await mkdtemp(join(store.root, '.lxr', 'tmp', 'save-'));
    let tar: TarWriter | undefined;
    try {
      let sink: Sink;
      if (o.format === 'oci-dir') {
        await mkdir(o.output, { recursive: true });
        sink = dirSink(o.output);
      } else {
        tar = new TarWriter(o.output);
        sink = tar;
      }
      const result = o.format === 'docker-archive' ? await writeDocker(store, images, sink, tmpDir) : await writeOci(store, images, sink);
      await tar?.finish();
      return { images: result };
    } catch (e) {
      await tar?.abort();
      if (o.format !== 'oci-dir') await rm(o.output, { force: true });
      throw e;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
}

async function writeOci(store: ImageStore, images: SavedImage[], sink: Sink): Promise<{ reference: string; digest: string }[]> {
  await sink.data('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await sink.dir('blobs');
  await sink.dir('blobs/sha256');
  const written = new Set<string>();
  const blob = async (digest: string, data?: Buffer) => {
    if (written.has(digest)) return;
    written.add(digest);
    const name = `blobs/sha256/${digest.slice('sha256:'.length)}`;
    if (data) await sink.data(name, data);
    else await sink.file(name, store.blobPath(digest));
  };
  const index: Descriptor[] = [];
  const out: { reference: string; digest: string }[] = [];
  for (const img of images) {
    const m = ociManifest(store, img.manifest);
    // an OCI manifest whose labels are right is written as it is (its digest stays, as skopeo's copy keeps it)
    const same = img.manifest.mediaType === MediaType.OciManifest && img.manifest.config.mediaType === MediaType.OciConfig &&
      img.manifest.layers.every((l, i) => l.mediaType === m.layers[i]!.mediaType);
    const bytes = same ? await store.readBlob(img.manifestDigest) : Buffer.from(JSON.stringify(m));
    const digest = sha256(bytes);
    await blob(m.config.digest);
    for (const l of m.layers) await blob(l.digest);
    await blob(digest, bytes);
    index.push({ mediaType: MediaType.OciManifest, digest, size: bytes.length, annotations: { [REF_NAME]: img.reference } });
    out.push({ reference: img.reference, digest });
  }
  await sink.data('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: index })));
  return out;
}

/** docker save's layout: manifest.json, <config hex>.json, <diff ID hex>/layer.tar (uncompressed), repositories. */
async function writeDocker(store: ImageStore, images: SavedImage[], sink: Sink, tmpDir: string): Promise<{ reference: string; digest: string }[]> {
  const entries: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const written = new Set<string>();
  for (const img of images) {
    const configBytes = await store.readBlob(img.manifest.config.digest);
    const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== img.manifest.layers.length) throw new ImageError('MALFORMED', `${img.reference}: the config has ${diffIDs.length} diff IDs for ${img.manifest.layers.length} layers`);
    const configName = `${img.manifest.config.digest.slice('sha256:'.length)}.json`;
    if (!written.has(configName)) {
      written.add(configName);
      await sink.data(configName, configBytes);
    }
    const layers: string[] = [];
    for (const [i, l] of img.manifest.layers.entries()) {
      const hex = diffIDs[i]!.replace(/^sha256:/, '');
      const name = `${hex}/layer.tar`;
      layers.push(name);
      if (written.has(name)) continue;
      written.add(name);
      // uncompressed, checked against its digest and diff ID on the way
      const tmp = join(tmpDir, `${hex}.tar`);
      const s = openLayerStream({ blob: store.blobPath(l.digest), mediaType: l.mediaType, label: l.digest, digest: l.digest, diffID: diffIDs[i]!, onWarning: () => {} });
      const w = createWriteStream(tmp);
      try {
        for await (const c of s.tar) if (!w.write(c)) await once(w, 'drain');
        w.end();
        await once(w, 'close');
      } catch (e) {
        s.abort();
        w.destroy();
        throw await s.explain(e);
      }
      await s.verify();
      await sink.dir(hex);
      await sink.file(name, tmp);
      await rm(tmp, { force: true });
    }
    const ref = parseReference(img.reference);
    const repoTag = ref.tag ? `${ref.registry}/${ref.repository}:${ref.tag}` : undefined;
    entries.push({ Config: configName, RepoTags: repoTag ? [repoTag] : [], Layers: layers });
    if (repoTag && ref.tag) (repositories[`${ref.registry}/${ref.repository}`] ??= {})[ref.tag] = diffIDs[diffIDs.length - 1]!.replace(/^sha256:/, '');
  }
  await sink.data('manifest.json', Buffer.from(JSON.stringify(entries)));
  await sink.data('repositories', Buffer.from(JSON.stringify(repositories)));
  return images.map((i) => ({ reference: i.reference, digest: i.manifest.config.digest }));
}

// ---------------------------------------------------------------------------- load

/** A member name of an archive as a safe relative path ("" for the archive's root). */
function memberPath(name: string): string {
  const parts = posix.normalize(`/${name}`).split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ImageError('MALFORMED', `archive member "${name}" leaves the archive`);
  return parts.join('/');
}

/** Extract an archive's regular files into dir (links resolved by name within the archive). Returns member -> host path. */
async function extract(input: string, dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const links: [string, string][] = [];
  const head = Buffer.alloc(2);
  const fh = await open(input, 'r');
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  const src = createReadStream(input, { highWaterMark: 1 << 18 });
  const stream = head[0] === 0x1f && head[1] === 0x8b ? src.pipe(createGunzip()) : src;
  const tar = new TarReader(stream);
  let n = 0;
  for (;;) {
    const e = await tar.next();
    if (!e) break;
    const p = memberPath(e.path);
    if (e.type === 'file') {
      const host = join(dir, String(n++));
      const fd = openSync(host, 'wx', 0o600);
      try {
        await tar.readBody((c) => {
          for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
        });
      } finally {
        closeSync(fd);
      }
      files.set(p, host);
    } else if (e.type === 'symlink') {
      links.push([p, memberPath(e.linkname.startsWith('/') ? e.linkname : posix.join(posix.dirname(p), e.linkname))]);
    } else if (e.type === 'link') {
      links.push([p, memberPath(e.linkname)]);
    }
  }
  for (let round = 0; round < 8; round++) for (const [p, target] of links) if (!files.has(p) && files.has(target)) files.set(p, files.get(target)!);
  return files;
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 18 })) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

async function ingestFile(store: ImageStore, desc: { digest: string; size: number }, path: string): Promise<void> {
  await store.ingestBlob(desc, async (offset) => ({ body: createReadStream(path, { start: offset }), offset }));
}

function nameFor(refName: string | undefined, tag: string | undefined, what: string): string {
  const n = tag ?? refName;
  if (!n) throw new ImageError('BAD_REFERENCE', `${what} has no name: give one with --tag`);
  // a bare tag (skopeo's oci:DIR:TAG) names no repository
  if (!tag && !/[/:]/.test(n)) throw new ImageError('BAD_REFERENCE', `${what} is named only "${n}", not a repository:tag: give a name with --tag`);
  return normalizeReference(n);
}

export interface LoadOptions {
  store?: StoreArg;
  input: string;
  /** name the (single) image so, whatever the archive calls it */
  tag?: string;
}

/** Load an oci-archive, an OCI layout directory or a docker-archive into the store. */
export async function loadImages(o: LoadOptions): Promise<{ images: { reference: string; digest: string }[] }> {
  const store = await openStore(o.store);
  await mkdir(join(store.root, '.lxr', 'tmp'), { recursive: true });
  return store.withWriterLock(async () => {
    const tmp = await mkdtemp(join(store.root, '.lxr', 'tmp', 'load-'));
    try {
      let files: Map<string, string>;
      if ((await stat(o.input)).isDirectory()) {
        files = new Map();
        const walk = async (rel: string) => {
          for (const d of await readdir(join(o.input, rel), { withFileTypes: true })) {
            const r = rel ? `${rel}/${d.name}` : d.name;
            if (d.isDirectory()) await walk(r);
            else if (d.isFile()) files.set(r, join(o.input, r));
          }
        };
        await walk('');
      } else {
        files = await extract(o.input, tmp);
      }
      if (files.has('index.json') && files.has('oci-layout')) return { images: await loadOci(store, files, o) };
      if (files.has('manifest.json')) return { images: await loadDocker(store, files, o) };
      throw new ImageError('UNSUPPORTED', `${o.input} is neither an OCI layout (oci-layout, index.json) nor a docker archive (manifest.json)`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

async function loadOci(store: ImageStore, files: Map<string, string>, o: LoadOptions): Promise<{ reference: string; digest: string }[]> {
  const blobFile = (digest: string) => {
    const m = /^(sha256|sha512):([a-f0-9]+)$/.exec(digest);
    const f = m ? files.get(`blobs/${m[1]}/${m[2]}`) : undefined;
    if (!f) throw new ImageError('NOT_FOUND', `blob ${digest} is missing from ${o.input}`);
    return f;
  };
  const copy = async (d: { digest: string; size: number }) => ingestFile(store, d, blobFile(d.digest));
  const index = JSON.parse(await readFile(files.get('index.json')!, 'utf8')) as { manifests?: Descriptor[] };
  const descs = index.manifests ?? [];
  if (o.tag && descs.length !== 1) throw new ImageError('BAD_REFERENCE', `--tag names one image, and ${o.input} holds ${descs.length}`);
  const out: { reference: string; digest: string }[] = [];
  const copyManifest = async (d: Descriptor) => {
    const bytes = await readFile(blobFile(d.digest));
    const p = parseManifest(bytes, d.mediaType, `${o.input}: ${d.digest}`);
    if (p.kind === 'manifest') {
      await copy(p.manifest.config);
      for (const l of p.manifest.layers) await copy(l);
    } else {
      for (const m of p.index.manifests) if (!isIndexType(m.mediaType)) await copyManifest(m).catch((e) => {
        // an index may list platforms the archive does not hold (podman saves one)
        if (!(e instanceof ImageError && e.code === 'NOT_FOUND')) throw e;
      });
    }
    await copy(d);
  };
  for (const d of descs) {
    const name = nameFor(d.annotations?.[REF_NAME] ?? d.annotations?.['io.containerd.image.name'], o.tag, `image ${d.digest} in ${o.input}`);
    await copyManifest(d);
    await store.setRef(name, { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.platform ? { platform: d.platform } : {}) });
    out.push({ reference: name, digest: d.digest });
  }
  return out;
}

async function loadDocker(store: ImageStore, files: Map<string, string>, o: LoadOptions): Promise<{ reference: string; digest: string }[]> {
  const entries = JSON.parse(await readFile(files.get('manifest.json')!, 'utf8')) as { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
  if (!Array.isArray(entries)) throw new ImageError('MALFORMED', `${o.input}: manifest.json is not a list`);
  if (o.tag && entries.length !== 1) throw new ImageError('BAD_REFERENCE', `--tag names one image, and ${o.input} holds ${entries.length}`);
  const member = (name: string) => {
    const f = files.get(memberPath(name));
    if (!f) throw new ImageError('NOT_FOUND', `${o.input}: ${name} is missing from the archive`);
    return f;
  };
  const out: { reference: string; digest: string }[] = [];
  for (const e of entries) {
    const names = o.tag ? [o.tag] : (e.RepoTags ?? []);
    if (names.length === 0) throw new ImageError('BAD_REFERENCE', `image ${e.Config} in ${o.input} has no RepoTags: give a name with --tag`);
    const configFile = member(e.Config);
    const config = await hashFile(configFile);
    await ingestFile(store, config, configFile);
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const f = member(l);
      const d = await hashFile(f);
      await ingestFile(store, d, f);
      layers.push({ mediaType: OCI_LAYER[detectCompression(f, l) ?? 'none'], digest: d.digest, size: d.size });
    }
    const m: ImageManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size }, layers };
    const bytes = Buffer.from(JSON.stringify(m));
    const digest = await store.writeBlob(bytes);
    for (const n of names) {
      const ref = normalizeReference(n);
      await store.setRef(ref, { mediaType: MediaType.OciManifest, digest, size: bytes.length });
      out.push({ reference: ref, digest });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------- import

export interface ImportOptions {
  store?: StoreArg;
  /** a rootfs tarball: plain, gzip or zstd */
  input: string;
  reference: string;
  /** Config.Cmd of the new image (docker import's `--change CMD`) */
  cmd?: string[];
}

/** A rootfs tarball as a one-layer image, as `docker import` / `podman import` make it. */
export async function importRootfs(o: ImportOptions): Promise<{ reference: string; digest: string }> {
  const reference = normalizeReference(o.reference);
  const store = await openStore(o.store);
  const compression = detectCompression(o.input, o.input);
  if (compression === undefined) throw new ImageError('NOT_FOUND', `cannot read ${o.input}`);
  return store.withWriterLock(async () => {
    const blob = await hashFile(o.input);
    // the diff ID: the uncompressed tar's digest (and a check that it is a tar)
    const s = openLayerStream({ blob: o.input, mediaType: OCI_LAYER[compression], label: o.input });
    const h = createHash('sha256');
    const hashed = (async function* () {
      for await (const c of s.tar) {
        h.update(c as Buffer);
        yield c as Buffer;
      }
    })();
    try {
      const tar = new TarReader(hashed);
      let entries = 0;
      while (await tar.next()) entries++;
      await tar.drain();
      if (entries === 0) throw new ImageError('MALFORMED', `${o.input} holds no files`);
      for await (const _ of hashed) void _;
    } catch (e) {
      s.abort();
      throw e instanceof ImageError ? e : new ImageError('MALFORMED', `${o.input} is not a tar archive: ${(await s.explain(e)).message}`);
    }
    await s.verify();
    const diffID = `sha256:${h.digest('hex')}`;
    await ingestFile(store, blob, o.input);
    const created = new Date().toISOString();
    const p = hostPlatform();
    const config = Buffer.from(JSON.stringify({
      created, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}), os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...(o.cmd?.length ? { Cmd: o.cmd } : {}) },
      rootfs: { type: 'layers', diff_ids: [diffID] },
      history: [{ created, created_by: `lxr-image import ${o.input}` }],
    }));
    const configDigest = await store.writeBlob(config);
    const m: ImageManifest = {
      schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: OCI_LAYER[compression], digest: blob.digest, size: blob.size }],
    };
    const bytes = Buffer.from(JSON.stringify(m));
    const digest = await store.writeBlob(bytes);
    await store.setRef(reference, { mediaType: MediaType.OciManifest, digest, size: bytes.length });
    return { reference, digest };
  });
}
