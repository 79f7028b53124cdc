// Peak memory of a pull. Two costs that had nothing to do with the data in flight:
//
// 1. undici parses HTTP with llhttp compiled to WebAssembly, and V8's optimising compiler
//    (TurboFan) compiles that module on the first connection, which costs about 35 MB of
//    resident memory that the process keeps until it exits. The baseline compiler (Liftoff)
//    makes code that is plenty fast for what llhttp does on a blob download (count body
//    bytes), with a fraction of that memory. LXR_WASM_TURBOFAN=1 turns this off.
//
// 2. Every chunk received from a socket is a fresh Buffer whose memory lives outside V8's
//    heap. V8 frees them only when its young generation fills (rarely: the Buffer objects
//    themselves are tiny) or when external memory has grown by tens of MB, and glibc keeps
//    the pages it had to get for them. A scavenge (a minor GC, about a millisecond with a
//    small young generation) every 1 MB received keeps that garbage small (every 8 MB: a
//    pull's peak RSS was about 5 MB higher). The store copies each chunk out at once
//    (ImageStore.ingestBlob), so that a scavenge never finds a chunk still referenced and
//    promotes it to the old generation, where only a full GC would free it. Node gives gc()
//    only to --expose-gc processes; the flag can be set at run time and the function taken
//    from a new context, once, on first use. LXR_NO_GC=1 turns this off.
//
// Measured on the bench/pull image (5 layers, 152 MiB): peak RSS 146 MB -> ~118 MB (1) ->
// ~94 MB (1 and 2), and less CPU (TurboFan's compile is gone); with the store's copy and a
// scavenge every 1 MB instead of 8 MB, ~90 MB -> ~77 MB.
import { setFlagsFromString as v8SetFlags } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8 ties a code cache to its flags: tell the CLI loader (scripts/loader.cjs) that this
 * process changed them, so that it writes no code cache that every other run would reject.
 */
function setFlagsFromString(flags: string): void {
  (globalThis as Record<symbol, unknown>)[Symbol.for('lxr.codeCache.flagsChanged')] = true;
  v8SetFlags(flags);
}

let liftoff = false;

/** The benchmark switches (bench/pull): lxr-image's CLI sets them from LXR_NO_GC and LXR_WASM_TURBOFAN. */
const tuning = { gc: true, liftoff: true };
export function setMemoryTuning(t: { gc?: boolean; liftoff?: boolean }): void {
  Object.assign(tuning, t);
}

/** Have WebAssembly compiled by Liftoff only. Call before the first HTTP request of the process. */
export function lowMemoryHttpParser(): void {
  if (liftoff || !tuning.liftoff) return;
  liftoff = true;
  setFlagsFromString('--liftoff-only');
}

type GcFn = (opts?: { type?: 'minor' | 'major' }) => void;
let gcFn: GcFn | null | undefined;

function minorGc(): void {
  if (gcFn === undefined) {
    gcFn = null;
    const existing = (globalThis as { gc?: unknown }).gc;
    if (typeof existing === 'function') gcFn = existing as GcFn;
    else {
      try {
        setFlagsFromString('--expose-gc');
        const fn: unknown = runInNewContext('gc');
        if (typeof fn === 'function') gcFn = fn as GcFn;
      } catch {
        // no gc(): memory stays bounded by V8's own limits
      }
    }
  }
  gcFn?.({ type: 'minor' });
}

const GC_EVERY = 1 << 20;
let received = 0;

/** A blob body that frees the chunks it has handed out every 1 MB. */
export async function* collectingGarbage(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    received += chunk.length;
    if (received >= GC_EVERY) {
      received = 0;
      if (tuning.gc) minorGc();
    }
    yield chunk;
  }
}

let unpacked = 0;
const UNPACK_GC_EVERY = 2 << 20;

/**
 * Counts bytes of a layer being unpacked (compressed and inflated, as they are hashed) and
 * runs a scavenge every 2 MB of them: the read, inflate and tar chunks are off-heap garbage,
 * as in a download. Unpack peak RSS on the bench/pull image: ~110 MB -> ~94 MB (every 4 MB,
 * with 256 KiB stream buffers). With 256 KiB buffers every 1 MB made it worse (~137 MB):
 * chunks still queued in the streams survive two scavenges and are promoted, to be freed
 * only by a full GC. With 64 KiB buffers (layer-stream.ts) less is queued, and every 2 MB is
 * the best measured: ~82 -> ~78 MB (1 MB: ~86, 1.5: ~82, 3: ~80, 4: ~82, 8: ~86).
 * LXR_NO_GC=1 turns this off too.
 */
export function unpackedBytes(n: number): void {
  unpacked += n;
  if (unpacked >= UNPACK_GC_EVERY) {
    unpacked = 0;
    if (tuning.gc) minorGc();
  }
}
