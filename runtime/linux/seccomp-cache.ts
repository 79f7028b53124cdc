// A cache of compiled seccomp programs. Compiling a profile through libseccomp takes 20-50
// ms here for the front end's default profile (several architectures, ~400 syscalls), and
// every container of the front end has that same profile: so a compiled program is kept,
// keyed by a hash of linux.seccomp and of everything else its compilation depends on (the
// machine's architecture, libseccomp's version and API level, the kernel's release).
//
// Stored under the runtime's root (<root>/@seccomp/, not a valid container id, so never
// listed as a container): a directory of the caller's own (mode 0700), files written
// atomically (temp file, rename). A file is used only if it is the caller's own, writable
// by nobody else, names the same key in its header, and its program has the checksum the
// header gives; anything else is compiled again and the file replaced. A cache that cannot
// be written is no error: the program is compiled each time, as without a cache.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, rmSync, constants } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Seccomp } from '../../oci-spec/types.js';
import { writeFileAtomic } from '../../common/atomic.js';

export interface CachedProgram {
  program: Buffer;
  /** the debug messages of the compilation (unknown syscalls), said again on a hit */
  debug: string[];
}

/** at most this many profiles are kept: past it, the directory is emptied first */
const MAX_ENTRIES = 64;

/** The cache of the runtime whose state is in `root`, shared by its create and exec. */
export function seccompCacheDir(root: string): string {
  return join(root, '@seccomp');
}

export function cacheKey(sc: Seccomp, libIdentity: string): string {
  return createHash('sha256').update(JSON.stringify([process.arch, release(), libIdentity, sc])).digest('hex');
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The program stored for `key`, if a file that passes every check has it. */
export function readCached(dir: string, key: string): CachedProgram | undefined {
  let fd: number;
  try {
    fd = openSync(join(dir, key), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const euid = process.geteuid?.() ?? 0;
    if (!st.isFile() || st.uid !== euid || (st.mode & 0o022) !== 0 || st.size > 1 << 22) return undefined;
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) return undefined;
      off += n;
    }
    const nl = buf.indexOf(10);
    if (nl < 0) return undefined;
    const head = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { key?: unknown; sha256?: unknown; debug?: unknown };
    const program = buf.subarray(nl + 1);
    if (head.key !== key || program.length === 0 || program.length % 8 !== 0 || head.sha256 !== sha256(program)) return undefined;
    const debug = Array.isArray(head.debug) ? head.debug.filter((d): d is string => typeof d === 'string') : [];
    return { program: Buffer.from(program), debug };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Keep `program` for `key`; any failure leaves the cache as it was. */
export function writeCached(dir: string, key: string, entry: CachedProgram): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return;
  }
  try {
    const names = readdirSync(dir);
    if (names.length >= MAX_ENTRIES) for (const n of names) rmSync(join(dir, n), { force: true });
    const head = JSON.stringify({ key, sha256: sha256(entry.program), debug: entry.debug });
    writeFileAtomic(join(dir, key), Buffer.concat([Buffer.from(`${head}\n`), entry.program]), { mode: 0o600, durable: false });
  } catch {
    /* a cache: the next start compiles again */
  }
}
