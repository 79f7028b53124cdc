// Atomic file writes: readers see the old file or the whole new one, never a mix. The one
// helper every store uses (container records, runtime state, network records, image
// layouts, bundles). The temp file is unique within the process, lives beside the target
// (or in `tmpDir` on the same filesystem) and is removed when anything fails.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync, constants } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** the new file's mode (default 0o644) */
  mode?: number;
  /** fsync the file before the rename (default true); skip it only for files that do not
   * outlive their owner (a pid file, a record rewritten each second) */
  durable?: boolean;
  /** fsync the directory after the rename too, so that the new name survives a crash */
  syncDir?: boolean;
  /** make the file's directory first */
  mkdir?: boolean;
  /** write the temp file here instead of beside the target (same filesystem) */
  tmpDir?: string;
}

let seq = 0;
function tmpName(path: string, o: AtomicWriteOptions): string {
  return join(o.tmpDir ?? dirname(path), `.${basename(path)}.tmp-${process.pid}-${++seq}`);
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, data: string | Buffer, o: AtomicWriteOptions = {}): void {
  const durable = o.durable ?? true;
  if (o.mkdir) mkdirSync(dirname(path), { recursive: true });
  if (o.tmpDir) mkdirSync(o.tmpDir, { recursive: true });
  const tmp = tmpName(path, o);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, o.mode ?? 0o644);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (o.syncDir) fsyncDirSync(dirname(path));
}

export async function writeFileAtomicAsync(path: string, data: string | Buffer, o: AtomicWriteOptions = {}): Promise<void> {
  const durable = o.durable ?? true;
  if (o.mkdir) await mkdir(dirname(path), { recursive: true });
  if (o.tmpDir) await mkdir(o.tmpDir, { recursive: true });
  const tmp = tmpName(path, o);
  try {
    const fh = await open(tmp, 'wx', o.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  if (o.syncDir) {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
