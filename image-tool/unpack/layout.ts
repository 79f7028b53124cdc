// Reads what unpacking needs straight from an OCI image layout (image-layout.md): the manifest
// and the image config, as `blobs/<alg>/<hex>`, each checked against its digest.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, UnpackError } from '../core/digest.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** The image config (image-spec config.md); only the fields unpacking reads are typed. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs?: { type: string; diff_ids: string[] };
}

const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);
const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** JSON documents bigger than this are refused (manifests are limited to 4 MiB by registries). */
const MAX_JSON = 16 << 20;

export function blobPath(layout: string, digest: string, what = 'blob'): string {
  const { alg, hex } = parseDigest(digest, what);
  return join(layout, 'blobs', alg, hex);
}

/** Reads a small blob whole, verifying its digest. */
export async function readBlob(layout: string, digest: string, what: string): Promise<Buffer> {
  const path = blobPath(layout, digest, what);
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnpackError(`${what} ${digest}: blob ${path} is missing`);
    throw new UnpackError(`${what} ${digest}: cannot open blob ${path}: ${code}`);
  }
  try {
    const st = await fh.stat();
    if (st.size > MAX_JSON) throw new UnpackError(`${what} ${digest}: blob ${path} is too large (${st.size} bytes)`);
    const data = await fh.readFile();
    const { alg } = parseDigest(digest, what);
    const got = `${alg}:${createHash(alg).update(data).digest('hex')}`;
    if (got !== digest) throw new UnpackError(`${what} ${digest}: digest mismatch: blob ${path} has ${got}`);
    return data;
  } finally {
    await fh.close();
  }
}

async function readJson(layout: string, digest: string, what: string): Promise<Record<string, unknown>> {
  const data = await readBlob(layout, digest, what);
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new UnpackError(`${what} ${digest}: malformed JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UnpackError(`${what} ${digest}: not a JSON object`);
  return v as Record<string, unknown>;
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const o = d as Descriptor;
  if (typeof o !== 'object' || o === null || typeof o.mediaType !== 'string' || typeof o.digest !== 'string' || typeof o.size !== 'number') {
    throw new UnpackError(`${what}: malformed descriptor ${JSON.stringify(d)}`);
  }
  parseDigest(o.digest, what);
  return o;
}

export async function readManifest(layout: string, digest: string): Promise<ImageManifest> {
  const m = await readJson(layout, digest, 'manifest');
  const mt = m.mediaType as string | undefined;
  if (mt !== undefined && INDEX_TYPES.has(mt)) {
    throw new UnpackError(`manifest ${digest}: is an image index (${mt}), not an image manifest: pick one of its manifests`);
  }
  if (mt !== undefined && !MANIFEST_TYPES.has(mt)) throw new UnpackError(`manifest ${digest}: unsupported media type "${mt}"`);
  if (!Array.isArray(m.layers)) throw new UnpackError(`manifest ${digest}: has no "layers" list`);
  const config = checkDescriptor(m.config, `manifest ${digest} config`);
  if (!CONFIG_TYPES.has(config.mediaType)) {
    throw new UnpackError(`manifest ${digest}: config ${config.digest} has media type "${config.mediaType}", not an image config`);
  }
  const layers = m.layers.map((l, i) => checkDescriptor(l, `manifest ${digest} layer ${i}`));
  return { mediaType: mt, config, layers };
}

export async function readImageConfig(layout: string, manifest: ImageManifest): Promise<ImageConfig> {
  const c = (await readJson(layout, manifest.config.digest, 'image config')) as ImageConfig;
  const ids = c.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.length !== manifest.layers.length) {
    throw new UnpackError(
      `image config ${manifest.config.digest}: rootfs.diff_ids has ${Array.isArray(ids) ? ids.length : 'no'} entries for ${manifest.layers.length} layers`,
    );
  }
  for (const id of ids) parseDigest(id, `image config ${manifest.config.digest} diff ID`);
  return c;
}
