// push: upload an image from the store to a registry: blobs the registry lacks
// (streamed from the store), then manifests, then the tag. With allPlatforms an index
// is pushed whole; otherwise one platform's manifest is pushed under the tag.
import { ImageError } from '../core/errors.js';
import { formatReference, parseReference } from '../core/reference.js';
import { hostPlatform, isIndexType, parsePlatform, selectPlatform, type Descriptor, type Platform } from '../core/manifest.js';
import type { RegistryClient } from './client.js';
import { clientsFor, type RemoteOptions } from './session.js';
import { findImage, openStore, readManifestBlob, type StoreArg } from '../layout/images.js';
import { describeName } from '../core/reference.js';
import type { ImageStore } from '../layout/store.js';

export type PushProgress = { type: 'blob-skip' | 'blob-done'; digest: string; size: number } | { type: 'manifest-done'; digest: string };

export interface PushOptions extends RemoteOptions {
  /** Name of the image in the store. */
  reference: string;
  /** Where to push (default: the same reference). */
  destination?: string;
  store?: StoreArg;
  allPlatforms?: boolean;
  platform?: string | Platform;
  onProgress?: (e: PushProgress) => void;
}

export interface PushResult {
  reference: string;
  /** Digest of what the tag now points at (an index with allPlatforms). */
  manifestDigest: string;
}

async function pushBlob(store: ImageStore, client: RegistryClient, d: Descriptor, progress: (e: PushProgress) => void): Promise<void> {
  if (!(await store.hasBlob(d.digest))) throw new ImageError('NOT_FOUND', `blob ${d.digest} is missing from store ${store.root}`);
  if (await client.blobExists(d.digest)) {
    progress({ type: 'blob-skip', digest: d.digest, size: d.size });
    return;
  }
  await client.uploadBlob(d.digest, d.size, () => store.openBlobStream(d.digest));
  progress({ type: 'blob-done', digest: d.digest, size: d.size });
}

async function pushManifest(store: ImageStore, client: RegistryClient, d: Descriptor, tag: string, what: string, progress: (e: PushProgress) => void): Promise<void> {
  const p = await readManifestBlob(store, d);
  if (p.kind !== 'manifest') throw new ImageError('UNSUPPORTED', `${what}: ${d.digest} is not an image manifest`);
  await pushBlob(store, client, p.manifest.config, progress);
  for (const l of p.manifest.layers) await pushBlob(store, client, l, progress);
  await client.putManifest(tag, await store.readBlob(d.digest), p.mediaType, what);
  progress({ type: 'manifest-done', digest: d.digest });
}

export async function pushImage(opts: PushOptions): Promise<PushResult> {
  const store = await openStore(opts.store, false);
  const hit = await findImage(store, opts.reference);
  if (!hit) throw new ImageError('NOT_FOUND', `image ${describeName(opts.reference)} is not in store ${store.root}`);
  const dest = parseReference(opts.destination ?? hit.name);
  const destName = formatReference(dest);
  const tag = dest.tag ?? dest.digest!;
  const [client] = await clientsFor(dest.registry, dest.repository, opts, 'pull,push');
  const progress = opts.onProgress ?? (() => {});
  return store.withWriterLock(async () => {
    let desc = hit.descriptor;
    if (isIndexType(desc.mediaType)) {
      const p = await readManifestBlob(store, desc);
      if (p.kind !== 'index') throw new ImageError('MALFORMED', `${hit.name}: ${desc.digest} is not an index`);
      if (opts.allPlatforms) {
        for (const child of p.index.manifests) {
          await pushManifest(store, client!, child, child.digest, `${destName}@${child.digest}`, progress);
        }
        await client!.putManifest(tag, await store.readBlob(desc.digest), p.mediaType, destName);
        progress({ type: 'manifest-done', digest: desc.digest });
        return { reference: destName, manifestDigest: desc.digest };
      }
      const want = opts.platform ? (typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform) : hostPlatform();
      desc = selectPlatform(p.index, want, hit.name);
    }
    await pushManifest(store, client!, desc, tag, destName, progress);
    return { reference: destName, manifestDigest: desc.digest };
  });
}
