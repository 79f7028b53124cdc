// Named images in a store: resolve, list, inspect, tag, remove, and gc of unreferenced blobs.
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageError } from '../core/errors.js';
import { describeName, formatReference, isDigest, parseReference } from '../core/reference.js';
import {
  hostPlatform,
  isIndexType,
  isManifestType,
  parsePlatform,
  parseManifest,
  selectPlatform,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from '../core/manifest.js';
import { ImageStore, REF_NAME, defaultStorePath } from './store.js';

export type StoreArg = string | ImageStore | undefined;

export async function openStore(store: StoreArg, create = true): Promise<ImageStore> {
  if (store instanceof ImageStore) return store;
  return ImageStore.open(defaultStorePath(store), { create });
}

function toPlatform(p: string | Platform | undefined): Platform {
  if (!p) return hostPlatform();
  return typeof p === 'string' ? parsePlatform(p) : p;
}

/**
 * Find the index.json entry for a user-given name: a reference in any Docker form
 * (`golang` finds docker.io/library/golang:latest), or a manifest digest or unique
 * hex prefix of one (at least 6 digits).
 */
export async function findImage(store: ImageStore, reference: string): Promise<{ name: string; descriptor: Descriptor } | undefined> {
  const refs = await store.refs();
  let normalized: string | undefined;
  try {
    normalized = formatReference(parseReference(reference));
  } catch {
    /* may still be a digest prefix */
  }
  if (normalized) {
    const hit = refs.find((r) => r.name === normalized);
    if (hit) return hit;
  }
  const hex = /^(?:sha256:)?([a-f0-9]{6,64})$/.exec(reference)?.[1];
  if (hex) {
    const hits = refs.filter((r) => r.descriptor.digest.startsWith(`sha256:${hex}`));
    const digests = new Set(hits.map((h) => h.descriptor.digest));
    if (digests.size > 1) throw new ImageError('BAD_REFERENCE', `digest prefix "${reference}" matches more than one image in ${store.root}`);
    if (hits[0]) return hits[0];
  }
  if (!normalized) parseReference(reference); // throws the reference's own error
  return undefined;
}

/** `myapp` -> `myapp (docker.io/library/myapp:latest)`, so users see what was looked up. */
async function requireImage(store: ImageStore, reference: string): Promise<{ name: string; descriptor: Descriptor }> {
  const hit = await findImage(store, reference);
  if (!hit) throw new ImageError('NOT_FOUND', `image ${describeName(reference)} is not in store ${store.root}`);
  return hit;
}

export async function readManifestBlob(store: ImageStore, desc: Descriptor): Promise<ReturnType<typeof parseManifest>> {
  const bytes = await store.readBlob(desc.digest);
  return parseManifest(bytes, desc.mediaType, `blob ${desc.digest} in ${store.root}`);
}

/** The image manifest digest for a reference (picking a platform when it names an index), or undefined. */
export async function resolveImage(store: StoreArg, reference: string, platform?: string | Platform): Promise<string | undefined> {
  const s = await openStore(store, false).catch((e) => {
    if (e instanceof ImageError && e.code === 'STORE') return undefined;
    throw e;
  });
  if (!s) return undefined;
  const hit = await findImage(s, reference);
  if (!hit) return undefined;
  return (await resolveManifest(s, hit.descriptor, toPlatform(platform), hit.name)).digest;
}

async function resolveManifest(store: ImageStore, desc: Descriptor, platform: Platform, name: string): Promise<Descriptor> {
  if (isManifestType(desc.mediaType)) return desc;
  if (isIndexType(desc.mediaType)) {
    const p = await readManifestBlob(store, desc);
    if (p.kind !== 'index') throw new ImageError('MALFORMED', `${name}: ${desc.digest} is not an index`);
    return selectPlatform(p.index, platform, name);
  }
  throw new ImageError('UNSUPPORTED', `${name}: unsupported media type ${desc.mediaType}`);
}

export interface ImageSummary {
  reference: string;
  digest: string;
  mediaType: string;
  /** Bytes of manifest, config and (compressed) layers, summed over all platforms for an index. */
  size: number;
  platforms: string[];
  created?: string;
}

export async function listImages(store: StoreArg): Promise<ImageSummary[]> {
  const s = await openStore(store);
  const out: ImageSummary[] = [];
  for (const { name, descriptor } of await s.refs()) {
    const sum: ImageSummary = { reference: name, digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size, platforms: [] };
    try {
      const manifests: Array<{ m: ImageManifest; platform?: Platform }> = [];
      const p = await readManifestBlob(s, descriptor);
      if (p.kind === 'manifest') manifests.push(descriptor.platform ? { m: p.manifest, platform: descriptor.platform } : { m: p.manifest });
      else {
        for (const d of p.index.manifests) {
          if (!isManifestType(d.mediaType) || !(await s.hasBlob(d.digest))) continue;
          const c = await readManifestBlob(s, d);
          if (c.kind === 'manifest') manifests.push(d.platform ? { m: c.manifest, platform: d.platform } : { m: c.manifest });
          sum.size += d.size;
        }
      }
      for (const { m, platform } of manifests) {
        sum.size += m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
        let plat = platform ? `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}` : undefined;
        try {
          const cfg = JSON.parse((await s.readBlob(m.config.digest)).toString('utf8'));
          if (!plat && cfg.os && cfg.architecture) plat = `${cfg.os}/${cfg.architecture}${cfg.variant ? `/${cfg.variant}` : ''}`;
          if (typeof cfg.created === 'string' && !sum.created) sum.created = cfg.created;
        } catch {
          /* config missing from a partial layout: still list the image */
        }
        if (plat) sum.platforms.push(plat);
      }
    } catch {
      /* a broken entry is still listed, with what index.json says */
    }
    out.push(sum);
  }
  return out.sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0)); // no ICU collator (~5 ms)
}

export interface InspectResult {
  reference: string;
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  config: unknown;
  /** Raw bytes of the manifest and config as stored (for --raw). */
  rawManifest: Buffer;
  rawConfig: Buffer;
  /** Set when the name points at an index and a platform was picked from it. */
  index?: { digest: string; index: ImageIndex };
}

export async function inspectImage(store: StoreArg, reference: string, platform?: string | Platform): Promise<InspectResult> {
  const s = await openStore(store, false);
  const hit = await requireImage(s, reference);
  let index: InspectResult['index'];
  if (isIndexType(hit.descriptor.mediaType)) {
    const p = await readManifestBlob(s, hit.descriptor);
    if (p.kind === 'index') index = { digest: hit.descriptor.digest, index: p.index };
  }
  const desc = await resolveManifest(s, hit.descriptor, toPlatform(platform), hit.name);
  const rawManifest = await s.readBlob(desc.digest);
  const p = parseManifest(rawManifest, desc.mediaType, `blob ${desc.digest} in ${s.root}`);
  if (p.kind !== 'manifest') throw new ImageError('MALFORMED', `${hit.name}: ${desc.digest} is not an image manifest`);
  const rawConfig = await s.readBlob(p.manifest.config.digest);
  let config: unknown;
  try {
    config = JSON.parse(rawConfig.toString('utf8'));
  } catch {
    throw new ImageError('MALFORMED', `${hit.name}: config ${p.manifest.config.digest} is not valid JSON`);
  }
  const r: InspectResult = { reference: hit.name, digest: desc.digest, mediaType: p.mediaType, manifest: p.manifest, config, rawManifest, rawConfig };
  if (index) r.index = index;
  return r;
}

/** Give an image a second name. Returns the normalised target name. */
export async function tagImage(store: StoreArg, source: string, target: string): Promise<string> {
  const s = await openStore(store, false);
  const hit = await requireImage(s, source);
  const name = formatReference(parseReference(target));
  await s.setRef(name, hit.descriptor);
  return name;
}

/** Remove a name from the store. Blobs stay until gc (or pass gc: true). Returns the removed name. */
export async function removeImage(store: StoreArg, reference: string, opts: { gc?: boolean } = {}): Promise<{ reference: string; digest: string; gc?: GcResult }> {
  const s = await openStore(store, false);
  const hit = await requireImage(s, reference);
  await s.updateIndex((idx) => {
    idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== hit.name);
  });
  const r: { reference: string; digest: string; gc?: GcResult } = { reference: hit.name, digest: hit.descriptor.digest };
  if (opts.gc) r.gc = await gcStore(s);
  return r;
}

export interface GcResult {
  removed: string[];
  freedBytes: number;
  /** Temp files and partial downloads removed. */
  scratch: number;
}

/** Remove every blob no index.json entry reaches (through indexes and manifests). */
export async function gcStore(store: StoreArg): Promise<GcResult> {
  const s = await openStore(store);
  return s.withGcLock(async () => {
    const idx = await s.readIndex();
    const keep = new Set<string>();
    const visit = async (d: Descriptor): Promise<void> => {
      if (!isDigest(d.digest) || keep.has(d.digest)) return;
      keep.add(d.digest);
      if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) return;
      if (!(await s.hasBlob(d.digest))) return;
      let p;
      try {
        p = await readManifestBlob(s, d);
      } catch {
        return;
      }
      if (p.kind === 'index') for (const c of p.index.manifests) await visit(c);
      else {
        keep.add(p.manifest.config.digest);
        for (const l of p.manifest.layers) keep.add(l.digest);
      }
    };
    for (const d of idx.manifests) await visit(d);
    const removed: string[] = [];
    let freedBytes = 0;
    const blobs = join(s.root, 'blobs');
    for (const alg of await readdir(blobs).catch(() => [] as string[])) {
      for (const hex of await readdir(join(blobs, alg)).catch(() => [] as string[])) {
        const digest = `${alg}:${hex}`;
        if (keep.has(digest)) continue;
        const p = join(blobs, alg, hex);
        const st = await stat(p).catch(() => undefined);
        await unlink(p).catch(() => {});
        removed.push(digest);
        freedBytes += st?.size ?? 0;
      }
    }
    const scratch = await s.clearScratch();
    return { removed, freedBytes, scratch };
  });
}
