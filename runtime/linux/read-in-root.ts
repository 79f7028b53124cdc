// Read a file of a container's root filesystem from the runtime, with the path resolved
// by the kernel inside that root: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from
// an fd of the root. Symlinks (absolute or relative) and ".." stay inside it, even if a
// running container swaps a path component while we read, so an image or a container
// cannot make the runtime read a host file.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { loadKoffi } from '../../native/koffi.js';
import { LxrError } from '../../common/errors.js';

const SYS_OPENAT2 = 437; // the same number on every architecture (added after the syscall table unification)
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;

type Syscall = (...args: unknown[]) => number | bigint;
let sys: { syscall: Syscall; errno: () => number } | undefined;

function libc(): { syscall: Syscall; errno: () => number } {
  if (sys) return sys;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  sys = { syscall: lib.func('long syscall(long nr, ...)'), errno: () => koffi.errno() as number };
  return sys;
}

export class ReadInRootError extends LxrError {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** openat2 `path` inside the root fd `rootFd`; returns the fd, or -errno. */
function openat2InRoot(rootFd: number, path: string, flags: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | 0o2000000 /* O_CLOEXEC */), 0);
  how.writeBigUInt64LE(0n, 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
  const { syscall, errno } = libc();
  const r = Number(syscall(SYS_OPENAT2, 'int', rootFd, 'const char *', path, 'uint8_t *', how, 'size_t', how.length));
  return r < 0 ? -errno() : r;
}

const O_PATH = 0o10000000;

/**
 * lstat-like information about `path` inside `root`, following symlinks inside the root
 * as a mount on that path would, or null when it does not exist there.
 */
export function statInRoot(root: string, path: string): import('node:fs').Stats | null {
  const rootFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const fd = openat2InRoot(rootFd, path, O_PATH);
    if (fd === -2 || fd === -20) return null;
    if (fd < 0) throw new ReadInRootError(`errno ${-fd}`, `cannot open "${path}" in "${root}": errno ${-fd}`);
    try {
      return fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(rootFd);
  }
}

/**
 * The contents of `path` inside the root directory `root` (a host path, e.g. a rootfs or
 * /proc/PID/root), or null when it does not exist there. Only regular files are read,
 * up to `max` bytes.
 */
export function readFileInRoot(root: string, path: string, max = 4 << 20): string | null {
  const rootFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  let fd = -1;
  try {
    const r = openat2InRoot(rootFd, path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
    if (r < 0) {
      const e = -r;
      if (e === 2 || e === 20) return null; // ENOENT, ENOTDIR: not there
      throw new ReadInRootError(`errno ${e}`, `cannot open "${path}" in "${root}": errno ${e}`);
    }
    fd = r;
    if (!fstatSync(fd).isFile()) return null;
    const buf = Buffer.alloc(max);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, max - n, null);
      if (got <= 0) break;
      n += got;
      if (n >= max) break;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    if (fd >= 0) closeSync(fd);
    closeSync(rootFd);
  }
}
