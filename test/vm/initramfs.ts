// Builds the harness's initramfs: a static busybox, the handful of kernel
// modules needed to reach the host's root over virtio-9p and lay an overlay on
// it, and the stage-1 init script (guest-init.sh). The archive is a plain
// "newc" cpio (the format the kernel unpacks, see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), written here
// in Node so that no cpio/gzip tools are needed; it is left uncompressed,
// which the kernel accepts and which boots faster under TCG.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { writeFileAtomic } from '../../common/atomic.js';

/** Modules to load, in this order; their dependencies are added before them. */
export const GUEST_MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci',
  'netfs', 'fscache', '9pnet', '9pnet_virtio', '9p', 'overlay',
];

export interface KernelInfo {
  version: string;
  /** Path of the bzImage (vmlinuz). */
  image: string;
  /** /lib/modules/<version> */
  modulesDir: string;
}

/**
 * Finds the kernel to boot: LXR_VM_KERNEL (a vmlinuz path) or the newest
 * /boot/vmlinuz-<version> that has a matching /lib/modules/<version>. The
 * host's own running kernel (uname -r) is irrelevant: it may not be installed.
 */
export function findKernel(env: NodeJS.ProcessEnv = process.env): KernelInfo {
  const wanted = env['LXR_VM_KERNEL'];
  if (wanted) {
    const m = /vmlinuz-(.+)$/.exec(wanted);
    if (!m) throw new Error(`LXR_VM_KERNEL=${wanted}: expected a path ending in vmlinuz-<version>`);
    const version = m[1]!;
    const modulesDir = join('/lib/modules', version);
    if (!existsSync(wanted)) throw new Error(`LXR_VM_KERNEL=${wanted}: no such file`);
    if (!existsSync(join(modulesDir, 'modules.dep'))) throw new Error(`${modulesDir}/modules.dep: missing (modules of kernel ${version} not installed)`);
    return { version, image: wanted, modulesDir };
  }
  let names: string[] = [];
  try { names = readdirSync('/boot'); } catch { /* no /boot: reported below */ }
  const versions = names
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join('/lib/modules', v, 'modules.dep')))
    .sort(compareVersions);
  const version = versions.at(-1);
  if (!version) throw new Error('no kernel found: need /boot/vmlinuz-<version> with /lib/modules/<version>/modules.dep (apt-get install linux-image-amd64)');
  return { version, image: join('/boot', `vmlinuz-${version}`), modulesDir: join('/lib/modules', version) };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

const moduleName = (path: string): string =>
  path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

/**
 * Resolves module names to file paths (relative to modulesDir) in load order,
 * dependencies first, from modules.dep. Modules built into the kernel
 * (modules.builtin) are skipped, so a kernel configured differently still works.
 */
export function resolveModules(kernel: KernelInfo, names: string[] = GUEST_MODULES): string[] {
  const dep = new Map<string, { path: string; deps: string[] }>();
  for (const line of readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    dep.set(moduleName(path), { path, deps });
  }
  const builtin = new Set<string>();
  try {
    for (const line of readFileSync(join(kernel.modulesDir, 'modules.builtin'), 'utf8').split('\n')) {
      if (line) builtin.add(moduleName(line));
    }
  } catch { /* older kernels may lack the file */ }

  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, wantedBy: string | null): void => {
    const key = name.replace(/-/g, '_');
    if (seen.has(key)) return;
    seen.add(key);
    const entry = dep.get(key);
    if (!entry) {
      if (builtin.has(key)) return;
      throw new Error(`kernel ${kernel.version}: module ${name}${wantedBy ? ` (needed by ${wantedBy})` : ''} not found in ${kernel.modulesDir}/modules.dep`);
    }
    // modules.dep lists the full transitive closure; visiting each keeps the order right.
    for (const d of entry.deps) visit(moduleName(d), name);
    order.push(entry.path);
  };
  for (const n of names) visit(n, null);
  return order;
}

/** Reads a module file, decompressing .ko.xz / .ko.zst / .ko.gz (busybox insmod wants plain .ko). */
function readModule(path: string): Buffer {
  if (path.endsWith('.ko')) return readFileSync(path);
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : path.endsWith('.gz') ? 'gzip' : null;
  if (!tool) throw new Error(`${path}: unknown module compression`);
  try {
    return execFileSync(tool, ['-dc', path], { maxBuffer: 256 << 20 });
  } catch (e) {
    throw new Error(`${path}: cannot decompress with ${tool} (${(e as Error).message.split('\n')[0]}); install the Debian package ${tool === 'xz' ? 'xz-utils' : tool}`);
  }
}

/** True if the ELF file at path has no PT_INTERP header, i.e. needs no dynamic loader. */
export function isStaticElf(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 /* 64-bit */) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

// ---- an uncompressed kernel for a PVH boot -----------------------------------

/**
 * Under TCG, the bzImage's real-mode setup and self-decompression cost about
 * 3 s a boot. QEMU can instead load an uncompressed ELF vmlinux directly at its
 * PVH entry point (the kernel's CONFIG_PVH, which Debian enables). This
 * extracts that vmlinux from the bzImage once per kernel and caches it in the
 * work dir. Returns null (boot the bzImage) if the payload's compression is
 * not handled or the result has no PVH entry note.
 */
export function ensurePvhKernel(workDir: string, kernel: KernelInfo): string | null {
  const path = join(workDir, `vmlinux-${kernel.version}`);
  if (existsSync(path)) return path;
  const image = readFileSync(kernel.image);
  let elf: Buffer | null = null;
  const xz = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  const gz = image.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
  try {
    if (xz >= 0) elf = execFileSync('xz', ['-dc', '--single-stream'], { input: image.subarray(xz), maxBuffer: 1 << 30 });
    else if (gz >= 0) elf = gunzipSync(image.subarray(gz));
  } catch {
    return null;
  }
  if (!elf || !hasPvhNote(elf)) return null;
  mkdirSync(workDir, { recursive: true });
  writeFileAtomic(path, elf);
  return path;
}

/** True if the ELF image carries a Xen PHYS32_ENTRY note (type 18): the PVH entry point QEMU jumps to. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let off = Number(elf.readBigUInt64LE(ph + 8));
    const end = off + Number(elf.readBigUInt64LE(ph + 32));
    while (off + 12 <= end) {
      const namesz = elf.readUInt32LE(off);
      const descsz = elf.readUInt32LE(off + 4);
      const type = elf.readUInt32LE(off + 8);
      const name = elf.toString('latin1', off + 12, off + 12 + namesz);
      if (name === 'Xen\0' && type === 18) return true;
      off += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

// ---- cpio "newc" writer ----------------------------------------------------

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

interface CpioEntry { name: string; mode: number; data?: Buffer; rdevMajor?: number; rdevMinor?: number }

function cpioHeader(e: CpioEntry, ino: number): Buffer {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const nameBytes = Buffer.from(`${e.name}\0`);
  const fields = [
    ino, e.mode, 0 /* uid */, 0 /* gid */, (e.mode & S_IFDIR) ? 2 : 1 /* nlink */, 0 /* mtime: fixed, so the archive is reproducible */,
    e.data?.length ?? 0, 0, 0 /* dev major/minor */, e.rdevMajor ?? 0, e.rdevMinor ?? 0, nameBytes.length, 0 /* check */,
  ];
  const head = Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii');
  return Buffer.concat([head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length))]);
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

export function cpioArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    parts.push(cpioHeader(e, e.name === 'TRAILER!!!' ? 0 : ino++));
    if (e.data) parts.push(e.data, Buffer.alloc(pad4(e.data.length)));
  }
  return Buffer.concat(parts);
}

// ---- the initramfs ---------------------------------------------------------

export interface Initramfs { path: string; kernel: KernelInfo }

/**
 * Returns the cached initramfs for this kernel, building it if needed. The
 * cache file name carries the kernel version and a hash of everything that
 * goes in (init script, module list, busybox), so changing any of them makes
 * a new file. Concurrent builders write identical bytes and rename atomically.
 */
export function ensureInitramfs(workDir: string, kernel: KernelInfo, busybox = '/bin/busybox'): Initramfs {
  const init = readFileSync(new URL('./guest-init.sh', import.meta.url));
  const modules = resolveModules(kernel);
  const busyboxBytes = readFileSync(busybox);
  const key = createHash('sha256').update(init).update(modules.join('\n')).update(busyboxBytes).digest('hex').slice(0, 16);
  const path = join(workDir, `initramfs-${kernel.version}-${key}.cpio`);
  if (existsSync(path)) return { path, kernel };

  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'host', 'rw', 'newroot', 'etc', 'lib', 'lib/modules']) {
    entries.push({ name: d, mode: S_IFDIR | 0o755 });
  }
  // The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: busyboxBytes });
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: init });
  const loadOrder: string[] = [];
  for (const rel of modules) {
    const base = rel.slice(rel.lastIndexOf('/') + 1).replace(/\.(xz|zst|gz)$/, '');
    entries.push({ name: `lib/modules/${base}`, mode: S_IFREG | 0o644, data: readModule(join(kernel.modulesDir, rel)) });
    loadOrder.push(base);
  }
  entries.push({ name: 'etc/modules.order', mode: S_IFREG | 0o644, data: Buffer.from(`${loadOrder.join('\n')}\n`) });

  mkdirSync(workDir, { recursive: true });
  writeFileAtomic(path, cpioArchive(entries));
  return { path, kernel };
}
