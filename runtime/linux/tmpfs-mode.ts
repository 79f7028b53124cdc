// A tmpfs mounted over a directory keeps that directory's mode (runc chmods the mountpoint
// back after mounting), unless the mount's options give "mode=". The mode is read before
// anything is mounted, inside the rootfs (openat2 RESOLVE_IN_ROOT, so an image's symlink
// cannot make the runtime look at a host path), and passed as "mode=" in the mount data.
import type { Mount } from '../../oci-spec/types.js';
import { statInRoot } from './read-in-root.js';
import { log } from '../../common/log.js';

const clean = (p: string): string => p.replace(/\/+$/, '') || '/';

/**
 * The extra mount data for `m` (a tmpfs), [`mode=NNNN`] or []. `earlier` are the mounts
 * before it: when one of them covers the destination, the directory in the rootfs is not
 * the one the tmpfs will cover, and the tmpfs keeps its own default (as runc, which then
 * finds no directory and makes one).
 */
export function tmpfsModeData(m: Mount, data: string[], earlier: Mount[], rootfs: string | undefined): string[] {
  if (!rootfs || data.some((d) => d.startsWith('mode='))) return [];
  const dest = clean(m.destination);
  if (dest === '/') return [];
  for (const e of earlier) {
    const d = clean(e.destination);
    if (dest === d || dest.startsWith(d === '/' ? '/' : `${d}/`)) return [];
  }
  try {
    const st = statInRoot(rootfs, dest);
    if (!st?.isDirectory()) return [];
    return [`mode=${(st.mode & 0o7777).toString(8).padStart(4, '0')}`];
  } catch (e) {
    log.debug(`${m.destination}: cannot read the mode of the tmpfs mountpoint: ${(e as Error).message}`);
    return [];
  }
}
