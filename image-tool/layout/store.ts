// The content-addressed OCI image layout (image-spec image-layout.md) that holds every
// pulled image: oci-layout, index.json, blobs/<alg>/<hex>. lxr's own bookkeeping lives
// in .lxr/ beside them (ignored by other layout readers):
//   .lxr/tmp/       temp files, renamed into place once complete and fsynced
//   .lxr/ingest/    partial downloads keyed by digest, kept for Range resume
//   .lxr/index.lock exclusive lock around index.json read-modify-write
//   .lxr/gc.lock    shared by writers (pull, push), exclusive for gc
import { createHash, type Hash } from 'node:crypto';
import { constants as FS, createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ImageError, storeError } from '../core/errors.js';
import { isDigest } from '../core/reference.js';
import { MediaType, type Descriptor, type ImageIndex } from '../core/manifest.js';
import { isRetryable, retryDelay, retryPolicy, sleep, type RetryPolicy } from '../core/retry.js';
import { lockFd, withExclusiveLock, withSharedLock } from '../../native/lock.js';
import { writeFileAtomicAsync } from '../../common/atomic.js';

/** Bytes of a blob download gathered per write (see ingestOnce). */
const WRITE_BUFFER = 1 << 18;

export const DEFAULT_STORE = '/var/lib/lxr/images';
export const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * The store path: explicit value, else /var/lib/lxr/images for root and, for an ordinary
 * user, the per-user store lxr uses too: $XDG_DATA_HOME/lxr/images (~/.local/share/lxr/images),
 * as podman's per-user storage.
 */
export function defaultStorePath(explicit?: string): string {
  return explicit || ((process.geteuid?.() ?? 0) !== 0 ? userStorePath() : DEFAULT_STORE);
}

function userStorePath(): string {
  const xdg = process.env.XDG_DATA_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'lxr', 'images');
  const home = process.env.HOME || homedir();
  return join(home, '.local', 'share', 'lxr', 'images');
}

/** A source of blob bytes starting at `offset`; `offset` in the answer is where the body really starts (0 if Range was ignored). */
export type BlobFetcher = (offset: number, signal?: AbortSignal) => Promise<{ body: AsyncIterable<Uint8Array>; offset: number }>;

export interface IngestOptions {
  /** Called with byte counts as they land; `reset` when a download restarts from 0. */
  onBytes?: (n: number) => void;
  onReset?: () => void;
  retry?: Partial<RetryPolicy>;
  /** Names the origin in errors (a URL without credentials). */
  source?: string;
  signal?: AbortSignal;
}

export async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function checkedDigest(digest: string): [string, string] {
  if (!isDigest(digest)) throw new ImageError('MALFORMED', `invalid digest "${digest}"`);
  const i = digest.indexOf(':');
  return [digest.slice(0, i), digest.slice(i + 1)];
}

export function digestOf(data: Buffer | string, alg = 'sha256'): string {
  return `${alg}:${createHash(alg).update(data).digest('hex')}`;
}

/**
 * Downloads in flight in this process, keyed by store and digest, so concurrent pulls
 * sharing a layer fetch it once, and never park more than one thread in a blocking
 * flock on the same partial file (koffi's async calls share a small thread pool).
 */
const inflight = new Map<string, Promise<boolean>>();

export class ImageStore {
  readonly root: string;
  private readonly meta: string;

  private constructor(root: string) {
    this.root = resolve(root);
    this.meta = join(this.root, '.lxr');
  }

  /** Open (and by default create) a store. */
  static async open(root: string, opts: { create?: boolean } = {}): Promise<ImageStore> {
    const s = new ImageStore(root);
    const create = opts.create ?? true;
    let layout: string | undefined;
    try {
      layout = await readFile(join(root, 'oci-layout'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(e, `reading ${join(root, 'oci-layout')}`);
    }
    if (layout !== undefined) {
      let v: unknown;
      try {
        v = JSON.parse(layout).imageLayoutVersion;
      } catch {
        throw new ImageError('STORE', `${join(root, 'oci-layout')} is not valid JSON`);
      }
      if (v !== '1.0.0') throw new ImageError('STORE', `${join(root, 'oci-layout')}: unsupported imageLayoutVersion ${JSON.stringify(v)}`);
      return s;
    }
    if (!create) throw new ImageError('STORE', `${root} is not an OCI image layout (no oci-layout file)`);
    try {
      await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(join(s.meta, 'tmp'), { recursive: true });
      await withExclusiveLock(join(s.meta, 'index.lock'), async () => {
        try {
          await stat(join(root, 'index.json'));
        } catch {
          await s.writeFileAtomic(join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }, null, 2) + '\n');
        }
        try {
          await stat(join(root, 'oci-layout'));
        } catch {
          await s.writeFileAtomic(join(root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }) + '\n');
        }
      });
    } catch (e) {
      throw storeError(e, `creating image store ${root}`);
    }
    return s;
  }

  blobPath(digest: string): string {
    const [alg, hex] = checkedDigest(digest);
    return join(this.root, 'blobs', alg, hex);
  }

  /** Write a file so that readers see either the old or the whole new content. */
  async writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
    try {
      await writeFileAtomicAsync(path, data, { tmpDir: join(this.meta, 'tmp'), syncDir: true });
    } catch (e) {
      throw storeError(e, `writing ${path}`);
    }
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(digest));
      return size === undefined || st.size === size;
    } catch {
      return false;
    }
  }

  /** Read a small blob (manifest, config) fully and check it against its digest. */
  async readBlob(digest: string): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageError('NOT_FOUND', `blob ${digest} is missing from store ${this.root}`);
      throw storeError(e, `reading blob ${digest}`);
    }
    const [alg] = checkedDigest(digest);
    if (digestOf(data, alg) !== digest) throw new ImageError('DIGEST_MISMATCH', `blob ${digest} in store ${this.root} is corrupt (content does not match its digest)`);
    return data;
  }

  openBlobStream(digest: string): ReadStream {
    return createReadStream(this.blobPath(digest));
  }

  /** Store a blob held in memory; checks it against `expected` when given. Returns its digest. */
  async writeBlob(data: Buffer, expected?: string): Promise<string> {
    const alg = expected ? checkedDigest(expected)[0] : 'sha256';
    const digest = digestOf(data, alg);
    if (expected && digest !== expected) throw new ImageError('DIGEST_MISMATCH', `content does not match digest ${expected} (got ${digest})`);
    if (await this.hasBlob(digest, data.length)) return digest;
    await mkdir(join(this.root, 'blobs', alg), { recursive: true }).catch((e) => {
      throw storeError(e, `creating ${join(this.root, 'blobs', alg)}`);
    });
    await this.writeFileAtomic(this.blobPath(digest), data);
    return digest;
  }

  /**
   * Download a blob into the store, hashing while it streams. Partial data is kept in
   * .lxr/ingest/<alg>-<hex> and resumed from its end with the next fetch. The blob only
   * appears under blobs/ once its size and digest are checked. Returns false when the
   * blob was already present (nothing fetched).
   */
  async ingestBlob(desc: { digest: string; size: number }, fetch: BlobFetcher, opts: IngestOptions = {}): Promise<boolean> {
    const key = `${this.root}\0${desc.digest}`;
    const running = inflight.get(key);
    if (running) {
      try {
        await running;
        return false;
      } catch {
        // That download failed (or its pull was cancelled): try ourselves.
        return this.ingestOnce(desc, fetch, opts);
      }
    }
    const p = this.ingestOnce(desc, fetch, opts);
    inflight.set(key, p);
    try {
      return await p;
    } finally {
      inflight.delete(key);
    }
  }

  private async ingestOnce(desc: { digest: string; size: number }, fetch: BlobFetcher, opts: IngestOptions): Promise<boolean> {
    const [alg, hex] = checkedDigest(desc.digest);
    const final = this.blobPath(desc.digest);
    if (await this.hasBlob(desc.digest, desc.size)) return false;
    const dir = join(this.meta, 'ingest');
    const partial = join(dir, `${alg}-${hex}`);
    const what = `downloading blob ${desc.digest} into ${this.root}`;
    try {
      await mkdir(dir, { recursive: true });
      await mkdir(join(this.root, 'blobs', alg), { recursive: true });
    } catch (e) {
      throw storeError(e, what);
    }

    // Open and lock the partial file. Another process may hold it; when it lets go it has
    // either finished (the blob exists and our fd points at a renamed inode) or failed.
    let fh;
    for (;;) {
      fh = await open(partial, FS.O_RDWR | FS.O_CREAT, 0o600).catch((e) => {
        throw storeError(e, what);
      });
      await lockFd(fh.fd);
      const mine = await fh.stat();
      const onDisk = await stat(partial).catch(() => undefined);
      const current = onDisk !== undefined && onDisk.ino === mine.ino && onDisk.dev === mine.dev;
      if (await this.hasBlob(desc.digest, desc.size)) {
        // Someone else finished it; a file we created meanwhile is an empty leftover.
        if (current) await unlink(partial).catch(() => {});
        await fh.close();
        return false;
      }
      if (current) break;
      await fh.close();
    }

    const policy = retryPolicy(opts.retry);
    let hash: Hash = createHash(alg);
    let pos = 0;
    try {
      // Resume: hash what an earlier attempt left behind.
      const have = (await fh.stat()).size;
      if (have > desc.size) {
        await fh.truncate(0);
      } else if (have > 0) {
        const buf = Buffer.allocUnsafe(1 << 20);
        while (pos < have) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, have - pos), pos);
          if (bytesRead === 0) break;
          hash.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        opts.onBytes?.(pos);
      }

      let attempt = 0;
      while (pos < desc.size) {
        try {
          const { body, offset } = await fetch(pos, opts.signal);
          if (offset !== pos) {
            // The server ignored our Range: start over.
            await fh.truncate(0);
            hash = createHash(alg);
            pos = 0;
            opts.onReset?.();
          }
          // Chunks are gathered up to 256 KiB per write: a positional write per 64 KiB
          // network chunk costs a thread-pool round trip each and halves throughput. They are
          // copied into one buffer that lives as long as the download, so that each network
          // chunk is garbage as soon as it is copied: a chunk still referenced when the young
          // generation is collected (see blobs-memory.ts) is promoted to the old generation
          // and its off-heap memory held until a full GC. Holding 1 MiB of chunks per layer
          // (3 layers at once) cost about 10 MB of peak RSS on the bench/pull image.
          const buf = Buffer.allocUnsafe(WRITE_BUFFER);
          let pendingBytes = 0;
          const flush = async () => {
            if (pendingBytes === 0) return;
            const n = pendingBytes;
            pendingBytes = 0;
            let written = 0;
            while (written < n) {
              const { bytesWritten } = await fh.write(buf, written, n - written, pos + written);
              written += bytesWritten;
            }
            hash.update(buf.subarray(0, n));
            pos += n;
            opts.onBytes?.(n);
          };
          try {
            for await (const chunk of body) {
              const c = chunk as Uint8Array;
              if (pos + pendingBytes + c.length > desc.size) {
                throw new ImageError('DIGEST_MISMATCH', `blob ${desc.digest}${opts.source ? ` from ${opts.source}` : ''} is larger than its descriptor's size ${desc.size}; the download was deleted`);
              }
              for (let off = 0; off < c.length; ) {
                const k = Math.min(c.length - off, buf.length - pendingBytes);
                buf.set(off === 0 && k === c.length ? c : c.subarray(off, off + k), pendingBytes);
                pendingBytes += k;
                off += k;
                if (pendingBytes === buf.length) await flush();
              }
            }
          } finally {
            // Keep what arrived before a network error: it is valid data for the resume.
            if (pendingBytes) await flush();
          }
          if (pos < desc.size) {
            throw new ImageError('HTTP', `blob ${desc.digest}${opts.source ? ` from ${opts.source}` : ''} ended after ${pos} of ${desc.size} bytes`, { retryable: true });
          }
        } catch (e) {
          attempt++;
          let err = e;
          if (!(e instanceof ImageError) && isRetryable(e)) {
            const msg = ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message;
            err = new ImageError('HTTP', `download of blob ${desc.digest}${opts.source ? ` from ${opts.source}` : ''} broke after ${pos} of ${desc.size} bytes: ${msg} (the partial download is kept; pull again to resume)`, { retryable: true, cause: e });
          }
          if (!isRetryable(err) || attempt >= policy.attempts) throw err;
          await sleep(retryDelay(policy, attempt), opts.signal);
        }
      }
      const got = `${alg}:${hash.digest('hex')}`;
      if (got !== desc.digest) {
        throw new ImageError('DIGEST_MISMATCH', `blob ${desc.digest}${opts.source ? ` from ${opts.source}` : ''} does not match its digest (got ${got}); the download was deleted`);
      }
      await fh.sync();
      await rename(partial, final);
      await fsyncDir(join(this.root, 'blobs', alg));
      return true;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // A corrupt or unwritable download is worthless; a network failure is kept for resume.
      if (e instanceof ImageError ? e.code === 'DIGEST_MISMATCH' : err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
        await unlink(partial).catch(() => {});
      }
      if (e instanceof ImageError) throw e;
      if (err?.code && typeof err.syscall === 'string') throw storeError(e, what);
      throw e;
    } finally {
      await fh.close();
    }
  }

  // --- index.json --------------------------------------------------------

  async readIndex(): Promise<ImageIndex> {
    const path = join(this.root, 'index.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      throw storeError(e, `reading ${path}`);
    }
    let idx: ImageIndex;
    try {
      idx = JSON.parse(text);
    } catch (e) {
      throw new ImageError('STORE', `${path} is not valid JSON: ${(e as Error).message}`);
    }
    if (!idx || !Array.isArray(idx.manifests)) throw new ImageError('STORE', `${path} has no "manifests" array`);
    return idx;
  }

  /** Read-modify-write index.json under the store's lock; fn edits the index in place. */
  async updateIndex<T>(fn: (index: ImageIndex) => T | Promise<T>): Promise<T> {
    return withExclusiveLock(join(this.meta, 'index.lock'), async () => {
      const idx = await this.readIndex();
      const r = await fn(idx);
      await this.writeFileAtomic(join(this.root, 'index.json'), JSON.stringify(idx, null, 2) + '\n');
      return r;
    });
  }

  /** Point `name` (a full normalised reference) at `desc`, replacing what it pointed at before. */
  async setRef(name: string, desc: Descriptor): Promise<void> {
    await this.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== name);
      const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
      if (desc.platform) entry.platform = desc.platform;
      entry.annotations = { ...(desc.annotations ?? {}), [REF_NAME]: name };
      idx.manifests.push(entry);
    });
  }

  /** All named entries of index.json. */
  async refs(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    const idx = await this.readIndex();
    return idx.manifests.filter((d) => typeof d.annotations?.[REF_NAME] === 'string').map((d) => ({ name: d.annotations![REF_NAME]!, descriptor: d }));
  }

  /** Writers (pull, push) hold this so that gc never removes a blob they are about to reference. */
  withWriterLock<T>(fn: () => Promise<T>): Promise<T> {
    return withSharedLock(join(this.meta, 'gc.lock'), fn);
  }

  withGcLock<T>(fn: () => Promise<T>): Promise<T> {
    return withExclusiveLock(join(this.meta, 'gc.lock'), fn);
  }

  /** Remove temp files and partial downloads (only call under the gc lock). */
  async clearScratch(): Promise<number> {
    let n = 0;
    for (const sub of ['tmp', 'ingest']) {
      const dir = join(this.meta, sub);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const f of names) {
        await rm(join(dir, f), { force: true, recursive: true });
        n++;
      }
    }
    return n;
  }
}
