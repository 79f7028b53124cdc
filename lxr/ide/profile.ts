// What --ide changes in the container's own files, before it starts:
// - /etc/profile keeps the PATH it is given. code-server resolves its terminals' environment
//   through a login shell, and Debian's /etc/profile sets PATH outright (for root too), so the
//   image's ENV PATH (/usr/local/go/bin in golang images) would be lost in IDE terminals. The
//   Dev Containers CLI makes the same edit: `PATH="..."` becomes `PATH="${PATH:-...}"`.
// - the code-server data volume (settings, extensions) belongs to the container's user.
// The writes go through the container's overlay mount, so they land in its own upper layer,
// never in a shared layer snapshot; paths are resolved inside the rootfs (symlinks included)
// and the file is opened without following a last symlink.
import { chownSync, closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync, ftruncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInRootSync } from '../../image-tool/index.js';

/** The line edit: an assignment PATH=value with no "$" in it keeps an existing PATH. */
export function keepPathLine(line: string): string {
  return line.replace(/((^|\s)PATH=)([^$]*)$/, (_m, head: string, _s: string, value: string) => `${head}\${PATH:-${value}}`);
}

export function keepPathProfile(text: string): string {
  return text.split('\n').map(keepPathLine).join('\n');
}

/**
 * Patch the container's /etc/profile (if it has one) so that a login shell keeps the PATH
 * it inherits. `rootfs` is the container's mounted overlay. Returns true when it changed.
 */
export function patchEtcProfile(rootfs: string): boolean {
  const r = resolveInRootSync(rootfs, ['etc', 'profile'], { followLast: true });
  if (!r) return false;
  let fd: number;
  try {
    fd = openSync(r.host, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch {
    return false; // no /etc/profile (busybox, distroless): nothing resets PATH
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const text = readFileSync(fd, 'utf8');
    const patched = keepPathProfile(text);
    if (patched === text) return false;
    ftruncateSync(fd, 0);
    writeSync(fd, patched, 0);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** The code-server data volume's mount point in the container. */
export const IDE_DATA_MOUNT = '/opt/lxr-ide/data';

/**
 * The named volume that keeps code-server's settings and extensions across containers: one
 * per user id (a uid's files must stay its own), made on first use and owned by that user.
 * Returns its host directory.
 */
export function ideDataVolume(volumesRoot: string, uid: number, gid: number): { name: string; dir: string } {
  const name = `lxr-ide-data-${uid}`;
  const dir = join(volumesRoot, name, '_data');
  mkdirSync(join(volumesRoot, name), { recursive: true, mode: 0o755 });
  try {
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, uid, gid);
    writeFileSync(join(volumesRoot, name, 'volume.json'), JSON.stringify({ CreatedAt: new Date().toISOString(), Labels: { 'lxr.ide': 'code-server user data' } }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return { name, dir };
}
