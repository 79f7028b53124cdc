// Peak memory of a pull: undici parses HTTP with llhttp compiled to WebAssembly, and V8's
// optimising compiler (TurboFan) compiles that module on the first connection, which costs
// about 35 MB of resident memory that the process keeps until it exits: a third of a pull's
// peak RSS. The baseline compiler (Liftoff) makes code that is plenty fast for what llhttp
// does on a blob download (count body bytes), with a fraction of that memory.
import { setFlagsFromString } from 'node:v8';

let done = false;

/** Have WebAssembly compiled by Liftoff only. Call before the first HTTP request of the process. */
export function lowMemoryHttpParser(): void {
  if (done || process.env.LXR_WASM_TURBOFAN === '1') return;
  done = true;
  setFlagsFromString('--liftoff-only');
}
