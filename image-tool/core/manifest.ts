// Manifests, indexes and their media types (image-spec manifest.md, image-index.md,
// media-types.md; Docker's v2 schema 2 media types are accepted as their OCI twins).
import { ImageError } from './errors.js';
import { isDigest } from './reference.js';

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What we send in Accept when fetching a manifest: everything we can use, never schema 1. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

export const LAYER_MEDIA_TYPES = new Set<string>([
  MediaType.OciLayer,
  MediaType.OciLayerGzip,
  MediaType.OciLayerZstd,
  MediaType.DockerLayerGzip,
  MediaType.DockerLayerZstd,
  'application/vnd.docker.image.rootfs.diff.tar',
]);
export const CONFIG_MEDIA_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export type ParsedManifest = { kind: 'manifest'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}
export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Descriptor;
  if (!o || typeof o !== 'object') throw new ImageError('MALFORMED', `${where}: descriptor is not an object`);
  if (typeof o.digest !== 'string' || !isDigest(o.digest)) throw new ImageError('MALFORMED', `${where}: bad digest ${JSON.stringify(o.digest)}`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw new ImageError('MALFORMED', `${where}: bad size ${JSON.stringify(o.size)}`);
  if (typeof o.mediaType !== 'string') throw new ImageError('MALFORMED', `${where}: missing mediaType`);
  return o;
}

/**
 * Parse manifest bytes. `contentType` is the HTTP Content-Type (may be absent or generic);
 * the document's own mediaType field wins when present. `source` names the URL or blob for errors.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, source: string): ParsedManifest {
  let doc: any;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ImageError('MALFORMED', `malformed manifest JSON from ${source}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ImageError('MALFORMED', `malformed manifest from ${source}: not a JSON object`);
  const ct = contentType?.split(';')[0]?.trim();
  if (doc.schemaVersion === 1 || ct === MediaType.DockerSchema1 || ct === MediaType.DockerSchema1Signed) {
    throw new ImageError('UNSUPPORTED', `${source} is a Docker schema 1 manifest, which lxr-image does not support (re-push the image with a current Docker or skopeo)`);
  }
  if (doc.schemaVersion !== 2) throw new ImageError('MALFORMED', `malformed manifest from ${source}: schemaVersion is ${JSON.stringify(doc.schemaVersion)}, expected 2`);
  let mt: string | undefined = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (!mt && ct && (isIndexType(ct) || isManifestType(ct))) mt = ct;
  if (!mt) mt = Array.isArray(doc.manifests) ? MediaType.OciIndex : doc.config ? MediaType.OciManifest : undefined;
  if (isIndexType(mt)) {
    if (!Array.isArray(doc.manifests)) throw new ImageError('MALFORMED', `malformed index from ${source}: "manifests" is not an array`);
    doc.manifests.forEach((d: unknown, i: number) => checkDescriptor(d, `index ${source} manifests[${i}]`));
    return { kind: 'index', mediaType: mt!, index: doc as ImageIndex };
  }
  if (isManifestType(mt)) {
    checkDescriptor(doc.config, `manifest ${source} config`);
    if (!Array.isArray(doc.layers)) throw new ImageError('MALFORMED', `malformed manifest from ${source}: "layers" is not an array`);
    doc.layers.forEach((d: unknown, i: number) => checkDescriptor(d, `manifest ${source} layers[${i}]`));
    return { kind: 'manifest', mediaType: mt!, manifest: doc as ImageManifest };
  }
  throw new ImageError('UNSUPPORTED', `unsupported manifest media type "${mt ?? ct ?? 'none'}" from ${source}`);
}

/** Refuse images lxr cannot unpack, before downloading anything. */
export function checkSupportedImage(m: ImageManifest, source: string): void {
  if (!CONFIG_MEDIA_TYPES.has(m.config.mediaType)) {
    throw new ImageError('UNSUPPORTED', `${source}: unsupported config media type "${m.config.mediaType}" (not a container image)`);
  }
  for (const l of m.layers) {
    if (!LAYER_MEDIA_TYPES.has(l.mediaType)) {
      throw new ImageError('UNSUPPORTED', `${source}: unsupported layer media type "${l.mediaType}" for layer ${l.digest}`);
    }
  }
}

// --- platforms -------------------------------------------------------------

export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const architecture = archMap[process.arch] ?? process.arch;
  const p: Platform = { os: 'linux', architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  if (architecture === 'arm') p.variant = 'v7';
  return p;
}

/** Parse `os/arch[/variant]`. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new ImageError('BAD_REFERENCE', `invalid platform "${s}": expected os/arch[/variant], e.g. linux/arm64`);
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return 'v8';
  return p.variant;
}

/** Pick the manifest for `want` from an index: exact variant first, then any variant if none was asked for. */
export function selectPlatform(index: ImageIndex, want: Platform, source: string): Descriptor {
  const candidates = index.manifests.filter((d) => isManifestType(d.mediaType) && d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture);
  const wantVariant = normVariant(want);
  const exact = candidates.find((d) => normVariant(d.platform!) === wantVariant);
  if (exact) return exact;
  if (!want.variant || want.architecture === 'arm64') {
    // linux/arm with no variant asked: take the best (highest) variant available.
    const sorted = [...candidates].sort((a, b) => (b.platform!.variant ?? '').localeCompare(a.platform!.variant ?? ''));
    if (sorted[0] && (!want.variant || !sorted[0].platform!.variant)) return sorted[0];
  }
  const have = index.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform!));
  throw new ImageError('PLATFORM_NOT_FOUND', `${source} has no image for platform ${formatPlatform(want)} (available: ${have.join(', ') || 'none'})`);
}
