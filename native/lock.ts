// flock(2) locks on lock files: the one helper that lxr's stores (images, snapshots,
// containers, networks, the code-server install) share. flock locks belong to an open file
// description, so they work between processes and between two opens in one process.
// Exclusive waiters in this process are queued in JS first, so at most one koffi worker
// thread per lock file is ever parked in a blocking flock.
import { openSync, closeSync, fstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { native, LOCK_EX, LOCK_SH, LOCK_NB, LOCK_UN } from './index.js';
import { LxrError } from '../common/errors.js';

const EWOULDBLOCK = 11;
const EINTR = 4;
const queues = new Map<string, Promise<unknown>>();

/** The lock file could not be opened or locked. `code` is the errno's name, or "errno N". */
export class LockError extends LxrError {
  override name = 'LockError';
  constructor(readonly path: string, readonly code: string, readonly opening: boolean) {
    super(`cannot ${opening ? 'open the lock' : 'lock'} ${path}: ${code}`);
  }
}

function open(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  try {
    return openSync(path, 'a+', 0o600);
  } catch (e) {
    throw new LockError(path, (e as NodeJS.ErrnoException).code ?? String(e), true);
  }
}

/** flock(fd, op): at once when it is free, else waiting on a worker thread. 0 or -errno. */
async function flockWait(fd: number, op: number): Promise<number> {
  let r = native().flock(fd, op | LOCK_NB);
  while (r === -EWOULDBLOCK || r === -EINTR) r = await native().flockAsync(fd, op);
  return r;
}

/**
 * Whether the locked fd is still the file at `path`: removeUnusedLockFile may have unlinked it
 * between our open and our flock, and a lock on an unlinked file excludes nobody.
 */
function stillThere(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

async function acquire(path: string, op: number): Promise<number> {
  for (;;) {
    const fd = open(path);
    try {
      const r = await flockWait(fd, op);
      if (r < 0) throw new LockError(path, `errno ${-r}`, false);
      if (stillThere(fd, path)) return fd;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    release(fd); // removed meanwhile: lock the new file
  }
}

/**
 * Remove a lock file that nobody holds (gc of what the lock guarded). Safe against lockers:
 * it is unlinked while we hold it, and every locker checks after flock that the file it
 * locked is still the one at the path (else it locks the new one). Returns whether it went.
 */
export function removeUnusedLockFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    if (native().flock(fd, LOCK_EX | LOCK_NB) < 0) return false; // held or waited for: in use
    if (!stillThere(fd, path)) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  } finally {
    release(fd);
  }
}

function release(fd: number): void {
  native().flock(fd, LOCK_UN);
  closeSync(fd);
}

/** Run fn while holding an exclusive lock on `path` (created, with its directory, if missing). */
export async function withExclusiveLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  const prev = queues.get(path) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const tail = prev.then(() => mine);
  queues.set(path, tail);
  await prev;
  try {
    const fd = await acquire(path, LOCK_EX);
    try {
      return await fn();
    } finally {
      release(fd);
    }
  } finally {
    done();
    if (queues.get(path) === tail) queues.delete(path);
  }
}

/** Run fn while holding a shared lock on `path` (many holders, excludes exclusive ones). */
export async function withSharedLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  // Wait for exclusive holders queued in this process, so we do not starve them forever.
  const pending = queues.get(path);
  if (pending) await pending;
  const fd = await acquire(path, LOCK_SH);
  try {
    return await fn();
  } finally {
    release(fd);
  }
}

/**
 * withExclusiveLock for synchronous callers: blocks the thread while it waits. Only for short
 * critical sections of synchronous code paths; never call it while this process holds the
 * same lock through withExclusiveLock.
 */
export function withExclusiveLockSync<T>(path: string, fn: () => T): T {
  let fd = open(path);
  try {
    for (;;) {
      let r = native().flock(fd, LOCK_EX);
      while (r === -EINTR) r = native().flock(fd, LOCK_EX);
      if (r < 0) throw new LockError(path, `errno ${-r}`, false);
      if (stillThere(fd, path)) break;
      release(fd);
      fd = -1;
      fd = open(path);
    }
    return fn();
  } finally {
    if (fd >= 0) release(fd);
  }
}

/** Hold an exclusive lock on an already open fd (used for per-blob download files). */
export async function lockFd(fd: number): Promise<void> {
  const r = await flockWait(fd, LOCK_EX);
  if (r < 0) throw new Error(`flock: errno ${-r}`);
}
