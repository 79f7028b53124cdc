// Test helpers: write tar layers entry by entry (PAX for xattrs and long names, devices,
// whiteouts, hostile names), compress them, and lay out an OCI image in a directory.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, lstatSync, readdirSync, readlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { getXattr, listXattrs } from '../unpack/libc.js';

export interface FixtureEntry {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** a PAX mtime record, exactly as written (e.g. "1796233108.897108188") */
  paxMtime?: string;
  content?: string | Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
}

const TYPEFLAG = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, e: FixtureEntry, flag: string, size: number, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(e.mode ?? (e.type === 'dir' ? 0o755 : 0o644), 8), 100);
  h.write(octal(e.uid ?? 0, 8), 108);
  h.write(octal(e.gid ?? 0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(Math.floor(e.mtime ?? 1_600_000_000), 12), 136);
  h.write('        ', 148);
  h.write(flag, 156);
  h.write(linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329);
  h.write(octal(e.devminor ?? 0, 8), 337);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148);
  return h;
}

function pad(b: Buffer): Buffer {
  const r = b.length % 512;
  return r === 0 ? b : Buffer.concat([b, Buffer.alloc(512 - r)]);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** An uncompressed tar of the entries, in order. */
export function makeTar(entries: FixtureEntry[], opts: { noEnd?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const recs: Buffer[] = [];
    const nameBytes = Buffer.byteLength(e.path);
    if (nameBytes > 100) recs.push(paxRecord('path', Buffer.from(e.path)));
    if (e.linkname && Buffer.byteLength(e.linkname) > 100) recs.push(paxRecord('linkpath', Buffer.from(e.linkname)));
    if (e.paxMtime !== undefined) recs.push(paxRecord('mtime', Buffer.from(e.paxMtime)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) recs.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
    if (recs.length > 0) {
      const body = Buffer.concat(recs);
      out.push(header('PaxHeaders/x', { path: 'PaxHeaders/x', mode: 0o644 }, 'x', body.length), pad(body));
    }
    out.push(header(e.path, e, TYPEFLAG[type], content.length, e.linkname ?? ''));
    if (content.length > 0) out.push(pad(content));
  }
  if (!opts.noEnd) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export const LAYER_MEDIA = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export function compress(tar: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(tar);
  if (c === 'zstd') {
    const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
    return r.stdout;
  }
  return tar;
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function writeBlob(layout: string, data: Buffer): string {
  const d = sha256(data);
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'blobs', 'sha256', d.slice(7)), data);
  return d;
}

export interface FixtureLayer {
  entries?: FixtureEntry[];
  /** A ready tar (for hostile or broken archives); `entries` is ignored then. */
  tar?: Buffer;
  compression?: Compression;
  /** Overrides (to make broken images). */
  mediaType?: string;
  blob?: Buffer;
}

export interface BuiltImage {
  layout: string;
  manifest: string;
  layers: { digest: string; diffID: string; mediaType: string }[];
  config: string;
}

/** Writes an OCI image layout with one manifest, tagged `tag` in index.json. */
export function buildImage(
  layout: string,
  layers: FixtureLayer[],
  config: Record<string, unknown> = {},
  tag = 'latest',
  /** Use this compression for zstd layers (umoci 0.4 reads no zstd); the diff IDs stay the same. */
  zstdAs?: Compression,
): BuiltImage {
  mkdirSync(layout, { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const descs = layers.map((l) => {
    const tar = l.tar ?? makeTar(l.entries ?? []);
    const c = l.compression === 'zstd' && zstdAs ? zstdAs : (l.compression ?? 'gzip');
    const blob = l.blob ?? compress(tar, c);
    const digest = writeBlob(layout, blob);
    return { mediaType: l.mediaType ?? LAYER_MEDIA[c], digest, size: blob.length, diffID: sha256(tar) };
  });
  const cfg = {
    architecture: 'amd64',
    os: 'linux',
    ...config,
    rootfs: { type: 'layers', diff_ids: descs.map((d) => d.diffID) },
  };
  const cfgBlob = Buffer.from(JSON.stringify(cfg));
  const cfgDigest = writeBlob(layout, cfgBlob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfgBlob.length },
      layers: descs.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    }),
  );
  const mDigest = writeBlob(layout, manifest);
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: mDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { layout, manifest: mDigest, config: cfgDigest, layers: descs.map(({ digest, diffID, mediaType }) => ({ digest, diffID, mediaType })) };
}

export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime?: number;
  content?: string;
  link?: string;
  rdev?: number;
  xattrs: Record<string, string>;
  /** Index of the hard-link group (paths sharing an inode), for non-directories with nlink > 1. */
  linkGroup?: string;
}

/** Walks a tree with lstat + readlink + xattrs + content hash; keys are paths relative to root. */
export function describeTree(root: string, opts: { mtimes?: 'all' | 'files' | 'none'; skipXattr?: (n: string) => boolean } = {}): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = lstatSync(p);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : '?';
    const xattrs: Record<string, string> = {};
    for (const n of listXattrs(p).sort()) {
      if (opts.skipXattr?.(n)) continue;
      xattrs[n] = getXattr(p, n)?.toString('hex') ?? '';
    }
    const e: TreeEntry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, xattrs };
    if (type !== 'symlink' && type !== 'dir' ? opts.mtimes !== 'none' : opts.mtimes === 'all' || (type === 'symlink' && opts.mtimes !== 'none')) e.mtime = Math.floor(st.mtimeMs / 1000);
    if (type === 'symlink') e.mode = 0;
    if (type === 'file') e.content = createHash('sha256').update(readFileSync(p)).digest('hex');
    if (type === 'symlink') e.link = readlinkSync(p);
    if (type === 'char' || type === 'block') e.rdev = st.rdev;
    if (type !== 'dir' && st.nlink > 1) {
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, rel);
      e.linkGroup = first ?? rel;
    }
    out[rel || '.'] = e;
    if (type === 'dir') for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

/** Lists a directory tree's paths (for "nothing changed outside" checks). */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = lstatSync(p);
    out.push(`${rel || '.'} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // vfs_cap_data v2: cap_net_raw=ep

/** A three-layer image (gzip, zstd, plain tar) that uses every layer.md feature. */
export function featureLayers(): FixtureLayer[] {
  const T = 1_500_000_000;
  const long = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/long-file-name-over-one-hundred-bytes.txt`;
  return [
    {
      compression: 'gzip',
      entries: [
        { path: './', type: 'dir', mode: 0o755, mtime: T },
        { path: 'etc/', type: 'dir', mtime: T + 1 },
        {
          path: 'etc/passwd',
          content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nsvc:x:1001:100::/srv:/bin/false\n',
          mtime: T + 2,
        },
        { path: 'etc/group', content: 'root:x:0:\nusers:x:100:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:svc,app\n', mtime: T + 2 },
        { path: 'bin/', type: 'dir', mtime: T + 3 },
        { path: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755, mtime: T + 4 },
        { path: 'bin/sgid', content: 'sgid', mode: 0o2755, gid: 50, mtime: T + 4 },
        { path: 'bin/ping', content: 'ping binary', mode: 0o755, xattrs: { 'security.capability': CAP_NET_RAW, 'user.comment': Buffer.from([0, 1, 2, 0xff, 0x80]) }, mtime: T + 5 },
        { path: 'tmp/', type: 'dir', mode: 0o1777, mtime: T + 6 },
        { path: 'data/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000, mtime: T + 7 },
        { path: 'data/file', content: 'original data\n', mode: 0o640, uid: 1000, gid: 1000, mtime: T + 8 },
        { path: 'data/hard', type: 'link', linkname: 'data/file', mode: 0o640, uid: 1000, gid: 1000, mtime: T + 8 },
        { path: 'data/empty', content: '', mode: 0o600, uid: 1001, gid: 100, mtime: 0 },
        { path: 'link-abs', type: 'symlink', linkname: '/etc/passwd', mtime: T + 9 },
        { path: 'link-rel', type: 'symlink', linkname: '../etc', mtime: T + 9 },
        { path: 'link-dangling', type: 'symlink', linkname: 'nowhere/at/all', uid: 1000, gid: 1000, mtime: T + 9 },
        { path: 'dev/', type: 'dir', mtime: T + 10 },
        { path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3, mtime: T + 10 },
        { path: 'dev/loop7', type: 'block', mode: 0o660, gid: 6, devmajor: 7, devminor: 7, mtime: T + 10 },
        { path: 'run/', type: 'dir', mtime: T + 11 },
        { path: 'run/fifo', type: 'fifo', mode: 0o620, mtime: T + 11 },
        { path: 'gone/', type: 'dir', mtime: T },
        { path: 'gone/a', content: 'a' },
        { path: 'gone/sub/', type: 'dir' },
        { path: 'gone/sub/b', content: 'b' },
        { path: 'opq/', type: 'dir', mode: 0o700, mtime: T },
        { path: 'opq/old1', content: 'old' },
        { path: 'opq/olddir/', type: 'dir' },
        { path: 'opq/olddir/x', content: 'x' },
        { path: 'keep/', type: 'dir', mtime: T + 12 },
        { path: 'keep/x', content: 'x' },
        { path: 'keep/y', content: 'y' },
        { path: 'rep/', type: 'dir', mtime: T },
        { path: 'rep/child', content: 'child' },
        { path: 'a/', type: 'dir', mtime: T },
        { path: 'a/b/', type: 'dir', mtime: T },
        { path: 'a/b/c/', type: 'dir', mtime: T },
        { path: 'a/b/c/bar', content: 'bar' },
        { path: 'data2/', type: 'dir', mtime: T + 13 },
        { path: long, content: 'long name', mtime: T + 14 },
        { path: 'ro/', type: 'dir', mode: 0o555, mtime: T + 15 },
        { path: 'ro/file', content: 'read only', mode: 0o444, mtime: T + 15 },
        { path: 'sticky/', type: 'dir', mode: 0o3775, gid: 100, mtime: T + 16 },
      ],
    },
    {
      compression: 'zstd',
      entries: [
        { path: '.wh.gone', mtime: T + 100 },
        { path: 'opq/', type: 'dir', mode: 0o755, mtime: T + 101 },
        { path: 'opq/.wh..wh..opq' },
        { path: 'opq/new', content: 'new', mtime: T + 102 },
        { path: 'keep/.wh.x' },
        { path: 'bin/hard2', type: 'link', linkname: 'bin/tool' },
        { path: 'data/file', content: 'modified data\n', mode: 0o600, uid: 1000, gid: 1000, mtime: T + 103 },
        { path: 'etc/', type: 'dir', mode: 0o711, mtime: T + 104 },
        { path: 'rep', content: 'now a file', mtime: T + 105 },
        { path: 'newdir/sub/file', content: 'implicit parents', mtime: T + 106 },
        { path: 'ro/new', content: 'into a read-only dir', mtime: T + 107 },
        { path: 'hard-to-dev', type: 'link', linkname: 'dev/null' },
      ],
    },
    {
      compression: 'none',
      entries: [
        { path: '.wh.link-rel' },
        { path: 'a/', type: 'dir', mtime: T + 200 },
        { path: 'a/b/', type: 'dir', mtime: T + 201 },
        { path: 'a/b/c/', type: 'dir', mtime: T + 202 },
        { path: 'a/b/c/foo', content: 'foo', mtime: T + 203 },
        { path: 'a/.wh..wh..opq' },
        { path: 'data2/file', content: 'in a lower dir', mtime: T + 204 },
        { path: 'link-dangling', content: 'replaced a symlink', mtime: T + 205 },
        { path: 'tmp/.wh.nothing-there' },
      ],
    },
  ];
}

export const FEATURE_CONFIG = {
  created: '2024-01-02T03:04:05Z',
  author: 'lxr tests',
  config: {
    User: 'app',
    Env: ['PATH=/bin:/usr/bin', 'FOO=bar'],
    Entrypoint: ['/bin/tool'],
    Cmd: ['--flag', 'x'],
    WorkingDir: '/data',
    Labels: { 'org.example.label': 'yes', 'org.opencontainers.image.author': 'label wins' },
    ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    StopSignal: 'SIGTERM',
    Volumes: { '/data': {}, '/var/cache': {} },
  },
};
