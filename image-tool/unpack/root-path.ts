// Path resolution confined to a root directory, the way a chroot would see it: `..` stops at the
// root, and a symlink met on the way (absolute or relative) is resolved again inside the root.
// Node cannot use openat2(RESOLVE_IN_ROOT), so this walks component by component with lstat.
// The unpacker is the only writer of the tree while it runs, so a checked component stays checked.
import { lstat } from 'node:fs/promises';
import { chmodSync, lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { LxrError } from '../../common/errors.js';

export class PathError extends LxrError {
  override name = 'PathError';
}

/** Cleans a tar entry name into components: no "", ".", and ".." only pops (never above the root). */
export function cleanComponents(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

export async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** lstat without an exception for a missing path (the unpacker's hot path: no promise, no throw). */
export function lstatOrNullSync(p: string): Stats | null {
  return lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

const MAX_SYMLINKS = 40; // Linux's own limit for one lookup

export interface ResolveSyncOptions {
  /** Create missing directories (mode 0755); each one created is reported through onCreate. */
  create?: boolean;
  onCreate?: (components: string[], hostPath: string) => void;
  /** Called with a directory just before a missing child of it is created. */
  beforeCreate?: (parentHostPath: string) => void;
  /** Follow a symlink in the last component too (for reading files such as /etc/passwd). */
  followLast?: boolean;
  /** Every component is a directory (resolving a parent): the last is followed and created like the others. */
  dir?: boolean;
  /** The whole path being resolved, for error messages, when `start` skips part of it. */
  whole?: string[];
}

/**
 * Resolves `components` under `root`. Returns the host path and the real components (no symlinks
 * in any parent), or null if something is missing and `create` is off. The last component is
 * not followed unless `followLast`; it may not exist. `start` resumes a walk from an already
 * resolved directory (real components, no symlinks).
 *
 * Synchronous on purpose: on tmpfs or a page-cached disk an lstat takes a microsecond, far
 * less than a round trip through libuv's thread pool.
 */
export function resolveInRootSync(
  root: string,
  components: string[],
  opts: ResolveSyncOptions = {},
  start: string[] = [],
): { host: string; components: string[] } | null {
  const real: string[] = [...start];
  const queue = [...components];
  let links = 0;
  const whole = () => `/${(opts.whole ?? components).join('/')}`;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      real.pop();
      continue;
    }
    const last = queue.length === 0 && !opts.dir;
    const p = join(root, ...real, c);
    const st = lstatOrNullSync(p);
    if (st === null) {
      if (last) {
        real.push(c);
        break;
      }
      if (!opts.create) return null;
      opts.beforeCreate?.(join(root, ...real));
      mkdirSync(p, 0o755);
      chmodSync(p, 0o755); // whatever the umask
      real.push(c);
      opts.onCreate?.([...real], p);
      continue;
    }
    if (st.isSymbolicLink() && (!last || opts.followLast)) {
      if (++links > MAX_SYMLINKS) throw new PathError(`too many levels of symbolic links resolving ${whole()}`);
      const target = readlinkSync(p);
      if (target.startsWith('/')) real.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (!last && !st.isDirectory()) {
      throw new PathError(`/${[...real, c].join('/')} is not a directory (resolving ${whole()})`);
    }
    real.push(c);
  }
  return { host: join(root, ...real), components: real };
}
