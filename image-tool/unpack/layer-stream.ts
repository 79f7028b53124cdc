// Opens a layer blob as a stream of tar bytes: read the file, hash it (blob digest), decompress
// (by the data's magic bytes; the media type only when they say nothing), hash again (diff ID). Nothing is held in memory beyond the streams' buffers.
//
// zstd: Node 20's zlib has no zstd. Debian's `zstd -dc` runs as a child process and streams
// (stdin to stdout), at C speed, with the reference decoder, so every frame format zstd itself
// writes is understood. The pure-JS decoders on npm are several times slower and buffer whole
// frames; the native ones need a compiler at install time. Cost: one process per zstd layer and
// the Debian package `zstd`.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, pipeline, type Readable, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { unpackedBytes } from '../core/blobs-memory.js';
import { UnpackError, parseDigest } from '../core/digest.js';


export type Compression = 'none' | 'gzip' | 'zstd';

const MEDIA_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};

/** The compression of a layer media type; throws for anything that is not a layer. */
export function layerCompression(mediaType: string, label: string): Compression {
  const c = MEDIA_TYPES[mediaType];
  if (c === undefined) throw new UnpackError(`layer ${label}: unsupported media type "${mediaType}"`);
  return c;
}

const describe = (c: Compression) => (c === 'none' ? 'an uncompressed tar' : `${c}-compressed`);

/**
 * The compression of a blob from its first bytes, as containers/image (skopeo, podman) and
 * containerd decide it, whatever the media type says: `docker save` / `podman save` archives
 * pushed with their digests kept hold plain tars labelled gzip. Undefined if unreadable (the
 * stream reports that); bzip2 and xz, which no layer media type names, are refused.
 */
export function detectCompression(blob: string, label: string): Compression | undefined {
  const head = Buffer.alloc(6);
  let n: number;
  try {
    const fd = openSync(blob, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const b = head.subarray(0, n);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') throw new UnpackError(`layer ${label}: bzip2-compressed data is not a supported layer format`);
  if (b.length >= 6 && b.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) throw new UnpackError(`layer ${label}: xz-compressed data is not a supported layer format`);
  return 'none';
}

const warned = new Set<string>();

function warnOnce(key: string, message: string, onWarning?: (m: string) => void): void {
  if (warned.has(key)) return;
  warned.add(key);
  if (onWarning) onWarning(message);
  else process.stderr.write(`warning: ${message}\n`);
}

// Every buffer of the chain (file reads, inflated chunks, the tail stream's buffer) is 64 KiB. What the chain holds is garbage as soon as it is passed on and lives
// until a scavenge (blobs-memory.ts runs one every 2 MB): smaller chunks, less of it. Unpack
// peak RSS on the bench/pull image, 256 KiB reads and buffers with 128 KiB inflated chunks ->
// 64 KiB: about -4 MB (128 KiB: -1 MB), for about 5% more CPU time and the same wall time.
const BUF = 1 << 16;

/**
 * Hash each chunk as the stream emits it (and count it for blobs-memory's scavenges): a
 * 'data' listener beside the pipe rather than a Transform between two streams, which would
 * cost a stream stage, and a buffer, per chunk.
 */
function hashEach(s: Readable, h: Hash): void {
  s.on('data', (chunk: Buffer) => {
    h.update(chunk);
    unpackedBytes(chunk.length);
  });
}

export interface LayerStream {
  /** The uncompressed tar bytes. */
  tar: Readable;
  /** After `tar` has been read to its end: checks the digests. Throws a one-line UnpackError. */
  verify(): Promise<void>;
  /** Turns a failure while reading into a clear error naming the layer (decompressor errors first). */
  explain(err: unknown): Promise<Error>;
  /** Stops reading (on failure): destroys the streams and ends the decompressor process. */
  abort(): void;
}

export function openLayerStream(opts: {
  blob: string;
  mediaType: string;
  /** How errors name the layer: its digest when known, else the blob path. */
  label: string;
  digest?: string;
  diffID?: string;
  /** Where a warning goes (a media type that does not match the data); default: stderr. */
  onWarning?: (message: string) => void;
}): LayerStream {
  const { blob, label } = opts;
  const labelled = layerCompression(opts.mediaType, label);
  const compression = detectCompression(blob, label) ?? labelled;
  if (compression !== labelled) warnOnce(`${label} ${opts.mediaType}`, `layer ${label}: media type "${opts.mediaType}" says ${describe(labelled)}, but the data is ${describe(compression)}: unpacking it as such`, opts.onWarning);
  const blobHash = opts.digest ? createHash(parseDigest(opts.digest, `layer ${label}`).alg) : undefined;
  const diffHash = opts.diffID ? createHash(parseDigest(opts.diffID, `layer ${label} diff ID`).alg) : undefined;

  let child: ChildProcess | undefined;
  let childDone: Promise<{ code: number | null; stderr: string }> | undefined;
  let failure: unknown;
  const tail = new PassThrough({ highWaterMark: BUF });
  const onError = (e: unknown) => {
    failure ??= e;
    tail.destroy(e as Error);
  };
  const source = createReadStream(blob, { highWaterMark: BUF });
  const streams: (Readable | Writable)[] = [];
  const upstream: Readable = source;
  // Every stream keeps an error handler for its whole life: zlib can report after a pipeline
  // has already settled, and an unhandled 'error' would crash the process.
  const guard = <S extends Readable | Writable>(s: S): S => {
    s.on('error', (e) => onError(e));
    streams.push(s);
    return s;
  };
  guard(source);
  if (blobHash) hashEach(source, blobHash);


  let decompressed: Readable;
  if (compression === 'gzip') {
    const gunzip = guard(createGunzip({ chunkSize: BUF }));
    pipeline(upstream, gunzip, (e) => e && onError(e));
    decompressed = gunzip;
  } else if (compression === 'zstd') {
    const c = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    childDone = new Promise((resolve) => {
      c.on('error', (e) => {
        const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the zstd program is missing (apt-get install zstd)' : e.message;
        stderr = msg;
        resolve({ code: -1, stderr: msg });
      });
      c.on('close', (code) => resolve({ code, stderr }));
    });
    // A closed stdin (zstd gave up) is reported through its exit status, not as EPIPE here.
    c.stdin!.on('error', () => {});
    pipeline(upstream, c.stdin!, (e) => {
      if (e && (e as NodeJS.ErrnoException).code !== 'EPIPE') onError(e);
    });
    decompressed = guard(c.stdout!);
    void childDone.then(({ code, stderr: err }) => {
      if (code !== 0) onError(new UnpackError(`layer ${label}: corrupt zstd data (${err.trim().split('\n').pop() || `zstd exited with ${code}`})`));
    });
  } else {
    decompressed = upstream;
  }
  if (diffHash) hashEach(decompressed, diffHash);
  pipeline(decompressed, tail, (e) => e && onError(e));
  streams.push(tail);

  const explainSync = (e: unknown): Error => {
    if (e instanceof UnpackError) return e;
    const err = e as NodeJS.ErrnoException;
    if (err?.code === 'ENOENT' && err.path === blob) return new UnpackError(`layer ${label}: blob ${blob} is missing`);
    if (err?.syscall && err.path === blob) return new UnpackError(`layer ${label}: cannot read blob ${blob}: ${err.code}`);
    if (typeof err?.code === 'string' && err.code.startsWith('Z_')) {
      return new UnpackError(`layer ${label}: corrupt or truncated gzip data (${err.message})`);
    }
    return new UnpackError(`layer ${label}: ${err?.message ?? String(e)}`);
  };

  return {
    tar: tail,
    async verify() {
      if (childDone) {
        const { code, stderr } = await childDone;
        if (code !== 0) throw new UnpackError(`layer ${label}: corrupt zstd data (${stderr.trim().split('\n').pop() || `zstd exited with ${code}`})`);
      }
      if (failure) throw explainSync(failure);
      if (blobHash && opts.digest) {
        const got = `${parseDigest(opts.digest, label).alg}:${blobHash.digest('hex')}`;
        if (got !== opts.digest) throw new UnpackError(`layer ${label}: digest mismatch: blob ${blob} has ${got}`);
      }
      if (diffHash && opts.diffID) {
        const got = `${parseDigest(opts.diffID, label).alg}:${diffHash.digest('hex')}`;
        if (got !== opts.diffID) throw new UnpackError(`layer ${label}: diff ID mismatch: expected ${opts.diffID}, uncompressed content has ${got}`);
      }
    },
    async explain(e) {
      // A decompressor that failed explains a truncated tar stream better than the tar reader.
      if (childDone) {
        const { code, stderr } = await childDone;
        if (code !== 0) return new UnpackError(`layer ${label}: corrupt zstd data (${stderr.trim().split('\n').pop() || `zstd exited with ${code}`})`);
      }
      if (failure) return explainSync(failure);
      if (e instanceof Error && e.name === 'TarFormatError') return new UnpackError(`layer ${label}: ${e.message}`);
      return explainSync(e);
    },
    abort() {
      for (const s of streams) s.destroy();
      if (child && child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
