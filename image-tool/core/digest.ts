// Digests as the unpacker checks them, and its error: light, so that reading a layout's
// manifests does not load the layer streams (zlib, tar).
import { LxrError } from '../../common/errors.js';

export class UnpackError extends LxrError {
  override name = 'UnpackError';
}

const DIGEST_RE = /^(sha256|sha512):([a-f0-9]+)$/;
const HEX_LEN: Record<string, number> = { sha256: 64, sha512: 128 };

/** Splits "alg:hex" after checking it is a digest lxr can verify. */
export function parseDigest(digest: string, what: string): { alg: string; hex: string } {
  const m = DIGEST_RE.exec(digest);
  if (!m || m[2]!.length !== HEX_LEN[m[1]!]) throw new UnpackError(`${what}: invalid digest "${digest}"`);
  return { alg: m[1]!, hex: m[2]! };
}

/** The snapshot directory name of a layer: its diff ID with ':' made '-' (':' separates overlay lowerdirs). */
export function snapshotName(diffID: string): string {
  const { alg, hex } = parseDigest(diffID, 'diff ID');
  return `${alg}-${hex}`;
}
