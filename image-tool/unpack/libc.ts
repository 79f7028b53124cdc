// The few libc calls that Node's fs lacks and unpacking needs: mknod (device nodes, fifos and
// overlay whiteouts) and the l*xattr family (PAX SCHILY.xattr.*, trusted.overlay.opaque).
// They are called straight from glibc through koffi, so the project's C library stays small.
import { loadKoffi } from '../../native/koffi.js';
import { errnoName } from '../../native/index.js';
import { LxrError } from '../../common/errors.js';

interface Libc {
  mknod(path: string, mode: number, dev: bigint): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  syncfs(fd: number): number;
  utimensat(dirfd: number, path: string, times: Buffer, flags: number): number;
  futimens(fd: number, times: Buffer): number;
  errno(): number;
}

let cached: Libc | undefined;

function libc(): Libc {
  if (cached) return cached;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  const mknod = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  const lsetxattr = lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
  const lgetxattr = lib.func('int64_t lgetxattr(const char *path, const char *name, void *value, size_t size)');
  const llistxattr = lib.func('int64_t llistxattr(const char *path, void *list, size_t size)');
  const syncfs = lib.func('int syncfs(int fd)');
  const utimensat = lib.func('int utimensat(int dirfd, const char *path, const uint8_t *times, int flags)');
  const futimens = lib.func('int futimens(int fd, const uint8_t *times)');
  cached = {
    utimensat: (d, p, t, f) => utimensat(d, p, t, f),
    futimens: (fd, t) => futimens(fd, t),
    syncfs: (fd) => syncfs(fd),
    mknod: (p, m, d) => mknod(p, m, d),
    lsetxattr: (p, n, v, s, f) => lsetxattr(p, n, v, s, f),
    lgetxattr: (p, n, v, s) => Number(lgetxattr(p, n, v, s)),
    llistxattr: (p, l, s) => Number(llistxattr(p, l, s)),
    errno: () => koffi.errno() as number,
  };
  return cached;
}


export class SysError extends LxrError {
  constructor(
    readonly syscall: string,
    readonly path: string,
    override readonly errno: number,
  ) {
    const name = errnoName(errno);
    super(`${syscall} ${path}: ${name}`);
    // Same shape as Node's fs errors so callers can test err.code.
    (this as unknown as { code: string }).code = name.startsWith('errno ') ? `E${errno}` : name;
  }
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** glibc's makedev encoding of a device number. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  const l = libc();
  if (l.mknod(path, mode, makedev(major, minor)) !== 0) throw new SysError('mknod', path, l.errno());
}

export function setXattr(path: string, name: string, value: Buffer): void {
  const l = libc();
  if (l.lsetxattr(path, name, value, value.length, 0) !== 0) throw new SysError(`lsetxattr ${name}`, path, l.errno());
}

/** The value of one xattr, or null when the file does not have it. */
export function getXattr(path: string, name: string): Buffer | null {
  const l = libc();
  for (;;) {
    const n = l.lgetxattr(path, name, null, 0);
    if (n < 0) {
      const e = l.errno();
      if (e === 61) return null;
      throw new SysError(`lgetxattr ${name}`, path, e);
    }
    const buf = Buffer.alloc(Math.max(n, 1));
    const m = l.lgetxattr(path, name, buf, buf.length);
    if (m >= 0) return buf.subarray(0, m);
    if (l.errno() !== 34) throw new SysError(`lgetxattr ${name}`, path, l.errno()); // ERANGE: it grew, retry
  }
}

export function listXattrs(path: string): string[] {
  const l = libc();
  for (;;) {
    const n = l.llistxattr(path, null, 0);
    if (n < 0) {
      const e = l.errno();
      if (e === 95) return [];
      throw new SysError('llistxattr', path, e);
    }
    if (n === 0) return [];
    const buf = Buffer.alloc(n);
    const m = l.llistxattr(path, buf, n);
    if (m >= 0) return buf.subarray(0, m).toString('latin1').split('\0').filter((s) => s !== '');
    if (l.errno() !== 34) throw new SysError('llistxattr', path, l.errno());
  }
}

/** Flushes the whole filesystem holding fd (one call instead of an fsync per unpacked file). */
export function syncFs(fd: number, path: string): void {
  const l = libc();
  if (l.syncfs(fd) !== 0) throw new SysError('syncfs', path, l.errno());
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const NS = 1_000_000_000n;

/** struct timespec[2] (atime, mtime) from nanoseconds since the epoch. */
function timespecs(atimeNs: bigint, mtimeNs: bigint): Buffer {
  const b = Buffer.alloc(32);
  const put = (ns: bigint, off: number) => {
    let sec = ns / NS;
    let nsec = ns % NS;
    if (nsec < 0n) {
      nsec += NS;
      sec -= 1n;
    }
    b.writeBigInt64LE(sec, off);
    b.writeBigInt64LE(nsec, off + 8);
  };
  put(atimeNs, 0);
  put(mtimeNs, 16);
  return b;
}

/**
 * Sets a path's times to the nanosecond (utimensat; Node's utimes takes doubles, which lose
 * the last digits of a PAX time). The last component is not followed: a symlink gets its own.
 */
export function setTimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const l = libc();
  if (l.utimensat(AT_FDCWD, path, timespecs(atimeNs, mtimeNs), AT_SYMLINK_NOFOLLOW) !== 0) throw new SysError('utimensat', path, l.errno());
}

/** futimens: the times of an open file, to the nanosecond. */
export function setFdTimesNs(fd: number, path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const l = libc();
  if (l.futimens(fd, timespecs(atimeNs, mtimeNs)) !== 0) throw new SysError('futimens', path, l.errno());
}
