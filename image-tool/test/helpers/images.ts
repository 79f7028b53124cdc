// Test images built from scratch: small tar layers (gzip, zstd or plain), image
// configs, manifests (OCI or Docker media types) and multi-platform indexes, written
// into an OCI image layout directory whose index.json names them the way lxr-image's
// store does (org.opencontainers.image.ref.name = full reference). Tests then push
// them to a registry with lxr-image push (or skopeo).
//
// Stable API: makeTar(files), compress(tar, kind), buildImage(layout, spec), buildIndex(layout, spec).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarOfFiles } from '../../../test/helpers/tar.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerSpec {
  /** path -> content; paths ending in '/' are directories. */
  files: Record<string, string | Buffer>;
  compression?: Compression;
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageSpec {
  /** Full reference recorded in index.json, e.g. 127.0.0.1:5000/test/app:1. Omit to not name it. */
  name?: string;
  layers: LayerSpec[];
  platform?: PlatformSpec;
  /** Docker v2 schema 2 media types instead of OCI ones. */
  docker?: boolean;
  env?: string[];
  cmd?: string[];
}

export interface BlobDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: PlatformSpec;
  annotations?: Record<string, string>;
}

export interface BuiltImage {
  manifest: BlobDescriptor;
  manifestBytes: Buffer;
  config: BlobDescriptor;
  layers: BlobDescriptor[];
  /** Uncompressed tars, in layer order. */
  tars: Buffer[];
}

export function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A minimal ustar archive of regular files and directories (paths ending in '/'), deterministic (fixed mtime, root owner). */
export const makeTar = tarOfFiles;

export function compress(tar: Buffer, kind: Compression): Buffer {
  if (kind === 'none') return tar;
  if (kind === 'gzip') return gzipSync(tar);
  const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed (apt-get install -y zstd): ${r.stderr}`);
  return r.stdout;
}

function layerMediaType(kind: Compression, docker: boolean): string {
  if (docker) return kind === 'zstd' ? 'application/vnd.docker.image.rootfs.diff.tar.zstd' : kind === 'none' ? 'application/vnd.docker.image.rootfs.diff.tar' : 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return kind === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : kind === 'none' ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.oci.image.layer.v1.tar+gzip';
}

export function writeBlob(layout: string, data: Buffer): string {
  const digest = sha256(data);
  const dir = join(layout, 'blobs', 'sha256');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, digest.slice(7)), data);
  return digest;
}

function ensureLayout(layout: string): void {
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  if (!existsSync(join(layout, 'oci-layout'))) writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  if (!existsSync(join(layout, 'index.json'))) writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
}

/** Add (or replace) a named entry in the layout's index.json. */
export function nameInLayout(layout: string, name: string, desc: BlobDescriptor): void {
  ensureLayout(layout);
  const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  idx.manifests = idx.manifests.filter((d: BlobDescriptor) => d.annotations?.['org.opencontainers.image.ref.name'] !== name);
  idx.manifests.push({ ...desc, annotations: { ...(desc.annotations ?? {}), 'org.opencontainers.image.ref.name': name } });
  writeFileSync(join(layout, 'index.json'), JSON.stringify(idx, null, 2));
}

export function buildImage(layout: string, spec: ImageSpec): BuiltImage {
  ensureLayout(layout);
  const docker = spec.docker ?? false;
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const tars: Buffer[] = [];
  const layers: BlobDescriptor[] = [];
  for (const l of spec.layers) {
    const tar = makeTar(l.files);
    tars.push(tar);
    const kind = l.compression ?? 'gzip';
    const blob = compress(tar, kind);
    layers.push({ mediaType: layerMediaType(kind, docker), digest: writeBlob(layout, blob), size: blob.length });
  }
  const config = {
    created: '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: spec.cmd ?? ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) },
    history: tars.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'lxr test' })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: BlobDescriptor = {
    mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
    digest: writeBlob(layout, configBytes),
    size: configBytes.length,
  };
  const manifestMediaType = docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestMediaType, config: configDesc, layers }, null, 2));
  const manifest: BlobDescriptor = { mediaType: manifestMediaType, digest: writeBlob(layout, manifestBytes), size: manifestBytes.length };
  if (spec.name) nameInLayout(layout, spec.name, manifest);
  return { manifest, manifestBytes, config: configDesc, layers, tars };
}

export interface IndexSpec {
  name?: string;
  docker?: boolean;
  images: Array<Omit<ImageSpec, 'name' | 'docker'> & { platform: PlatformSpec }>;
}

export function buildIndex(layout: string, spec: IndexSpec): { index: BlobDescriptor; indexBytes: Buffer; images: BuiltImage[] } {
  const docker = spec.docker ?? false;
  const images = spec.images.map((i) => buildImage(layout, { ...i, docker }));
  const mediaType = docker ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json';
  const indexBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, manifests: images.map((img, n) => ({ ...img.manifest, platform: spec.images[n]!.platform })) }, null, 2),
  );
  const index: BlobDescriptor = { mediaType, digest: writeBlob(layout, indexBytes), size: indexBytes.length };
  if (spec.name) nameInLayout(layout, spec.name, index);
  return { index, indexBytes, images };
}
