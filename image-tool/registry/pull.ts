// pull: resolve a reference on a registry, choose the platform, download config and
// layers (in parallel, streamed and verified) into the store, then name the image in
// index.json. Until that last step nothing refers to the new blobs, so a failed or
// interrupted pull leaves the store as it was (plus blobs gc can drop, and partial
// downloads the next pull resumes).
import { ImageError } from '../core/errors.js';
import { formatReference, manifestReference, parseReference } from '../core/reference.js';
import { checkSupportedImage, hostPlatform, parseManifest, parsePlatform, selectPlatform, type Descriptor, type ImageManifest, type Platform } from '../core/manifest.js';
import type { RegistryClient } from './client.js';
import { clientsFor, type RemoteOptions } from './session.js';
import { openStore, type StoreArg } from '../layout/images.js';
import type { ImageStore } from '../layout/store.js';
import { collectingGarbage, lowMemoryHttpParser } from '../core/blobs-memory.js';

export type PullProgress =
  | { type: 'resolved'; reference: string; manifestDigest: string; layers: Descriptor[] }
  | { type: 'layer-start'; digest: string; size: number }
  | { type: 'layer-bytes'; digest: string; bytes: number; done: number; size: number }
  | { type: 'layer-reset'; digest: string }
  | { type: 'layer-done'; digest: string; size: number; cached: boolean };

export interface PullOptions extends RemoteOptions {
  reference: string;
  /** Store path or an open store; default /var/lib/lxr/images (a user's: ~/.local/share/lxr/images). */
  store?: StoreArg;
  /** os/arch[/variant]; default the host's. */
  platform?: string | Platform;
  /** Keep the whole index and every platform's image. */
  allPlatforms?: boolean;
  onProgress?: (e: PullProgress) => void;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
}

export interface PullResult {
  /** Full normalised reference, as recorded in index.json. */
  reference: string;
  manifestDigest: string;
  configDigest: string;
  layers: Descriptor[];
  mediaType: string;
  platform?: Platform;
  /** Digest of the index the manifest was chosen from, if any. */
  indexDigest?: string;
}

async function firstManifest(clients: RegistryClient[], ref: string, what: string): Promise<{ client: RegistryClient; got: Awaited<ReturnType<RegistryClient['getManifest']>> }> {
  let lastErr: unknown;
  for (const client of clients) {
    try {
      return { client, got: await client.getManifest(ref, what) };
    } catch (e) {
      lastErr = e;
      if (!client.endpoint.mirror) throw e;
    }
  }
  throw lastErr;
}

export async function pullImage(opts: PullOptions): Promise<PullResult> {
  lowMemoryHttpParser();
  const ref = parseReference(opts.reference);
  const name = formatReference(ref);
  const want = opts.platform ? (typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform) : hostPlatform();
  const store = await openStore(opts.store);
  const clients = await clientsFor(ref.registry, ref.repository, opts, 'pull');
  const progress = opts.onProgress ?? (() => {});

  return store.withWriterLock(async () => {
    const { client, got } = await firstManifest(clients, manifestReference(ref), name);
    const top = parseManifest(got.bytes, got.contentType, `${name} (${got.url})`);
    let indexDigest: string | undefined;
    const images: Array<{ desc: Descriptor; bytes: Buffer; manifest: ImageManifest; platform?: Platform }> = [];

    const fetchChild = async (d: Descriptor) => {
      const child = await client.getManifest(d.digest, `${name}@${d.digest}`);
      const p = parseManifest(child.bytes, d.mediaType, `${name}@${d.digest} (${child.url})`);
      if (p.kind !== 'manifest') throw new ImageError('UNSUPPORTED', `${name}: index entry ${d.digest} is itself an index (nested indexes are not supported)`);
      checkSupportedImage(p.manifest, `${name}@${d.digest}`);
      const desc: Descriptor = { mediaType: p.mediaType, digest: child.digest, size: child.bytes.length };
      if (d.platform) desc.platform = d.platform;
      images.push(d.platform ? { desc, bytes: child.bytes, manifest: p.manifest, platform: d.platform } : { desc, bytes: child.bytes, manifest: p.manifest });
    };

    if (top.kind === 'index') {
      indexDigest = got.digest;
      if (opts.allPlatforms) {
        for (const d of top.index.manifests) {
          if (d.platform?.architecture === 'unknown') continue; // attestation manifests
          await fetchChild(d);
        }
      } else {
        await fetchChild(selectPlatform(top.index, want, name));
      }
    } else {
      checkSupportedImage(top.manifest, name);
      images.push({ desc: { mediaType: top.mediaType, digest: got.digest, size: got.bytes.length }, bytes: got.bytes, manifest: top.manifest });
    }

    const main = images[0]!;
    progress({ type: 'resolved', reference: name, manifestDigest: main.desc.digest, layers: images.flatMap((i) => i.manifest.layers) });

    // Configs are small and the first thing that shows the image is usable: fetch them first.
    for (const img of images) {
      const c = img.manifest.config;
      if (!(await store.hasBlob(c.digest, c.size))) await store.writeBlob(await client.getSmallBlob(c.digest, c.size), c.digest);
    }
    const layers = new Map<string, Descriptor>();
    for (const img of images) for (const l of img.manifest.layers) layers.set(l.digest, l);
    await downloadLayers(store, client, [...layers.values()], opts.concurrency ?? 3, progress, opts.signal, opts.retry);

    for (const img of images) await store.writeBlob(img.bytes, img.desc.digest);
    let named: Descriptor = main.desc;
    if (top.kind === 'index' && opts.allPlatforms) {
      await store.writeBlob(got.bytes, got.digest);
      named = { mediaType: top.mediaType, digest: got.digest, size: got.bytes.length };
    }
    await store.setRef(name, named);
    const r: PullResult = {
      reference: name,
      manifestDigest: main.desc.digest,
      configDigest: main.manifest.config.digest,
      layers: main.manifest.layers,
      mediaType: main.desc.mediaType,
    };
    if (main.platform) r.platform = main.platform;
    if (indexDigest) r.indexDigest = indexDigest;
    return r;
  });
}

async function downloadLayers(
  store: ImageStore,
  client: RegistryClient,
  layers: Descriptor[],
  concurrency: number,
  progress: (e: PullProgress) => void,
  signal?: AbortSignal,
  retry?: PullOptions['retry'],
): Promise<void> {
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(signal!.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  const queue = [...layers];
  let failure: unknown;
  const worker = async () => {
    for (let l = queue.shift(); l && failure === undefined; l = queue.shift()) {
      const layer = l;
      let done = 0;
      progress({ type: 'layer-start', digest: layer.digest, size: layer.size });
      let source = '';
      try {
        const fetched = await store.ingestBlob(
          layer,
          async (offset, sig) => {
            const r = await client.openBlob(layer.digest, offset, sig);
            source = r.url;
            return { ...r, body: collectingGarbage(r.body) };
          },
          {
            onBytes: (n) => {
              done += n;
              progress({ type: 'layer-bytes', digest: layer.digest, bytes: n, done, size: layer.size });
            },
            onReset: () => {
              done = 0;
              progress({ type: 'layer-reset', digest: layer.digest });
            },
            get source() {
              return source || `${client.registry}/${client.repository}`;
            },
            signal: abort.signal,
            ...(retry ? { retry } : {}),
          },
        );
        progress({ type: 'layer-done', digest: layer.digest, size: layer.size, cached: !fetched });
      } catch (e) {
        if (failure === undefined) failure = e;
        abort.abort(e);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, layers.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onOuterAbort);
  }
  if (failure !== undefined) throw failure;
}

