// A container's rootfs: an OverlayFS mount of the image's shared layer snapshots (read-only
// lowerdirs, top layer first) plus the container's own upper/ and work/.
//
// Many layers: the mount options travel in one page (4096 bytes), and a snapshot path is
// ~70 characters plus its directory, so ~50 layers would overflow it. Like podman's l/ links,
// each container gets a directory l/ of one-or-three-character symlinks to its snapshots; the
// mount is done with the container directory as the working directory and relative options
// ("lowerdir=l/0:l/1:...,upperdir=upper,workdir=work"), so 100 layers need ~500 bytes.
// The kernel resolves (and follows) these paths once, at mount time.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native, errnoName } from '../../native/index.js';
import { LxrError } from '../../common/errors.js';
import { removeUnusedLockFile } from '../../native/lock.js';

const MNT_DETACH = 2;
/** the kernel's limit on overlay lower layers (OVL_MAX_STACK) */
export const MAX_LAYERS = 500;

export interface OverlayPaths {
  /** the container directory: holds l/, upper/, work/ and merged/ */
  dir: string;
  merged: string;
}

export function overlayPaths(dir: string): OverlayPaths {
  return { dir, merged: join(dir, 'merged') };
}

/** Make l/, upper/, work/ and merged/ for the given snapshots (bottom first). */
export function prepareOverlay(dir: string, layers: string[]): void {
  if (layers.length === 0) throw new LxrError('the image has no layers: nothing to mount as a rootfs');
  if (layers.length > MAX_LAYERS) throw new LxrError(`the image has ${layers.length} layers; OverlayFS stacks at most ${MAX_LAYERS}`);
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  const links = join(dir, 'l');
  rmSync(links, { recursive: true, force: true });
  mkdirSync(links, { mode: 0o700 });
  // l/0 is the top layer, so the option string reads in overlay's order
  const top = [...layers].reverse();
  top.forEach((snap, i) => symlinkSync(snap, join(links, i.toString(36))));
}

export function overlayOptions(layerCount: number): string {
  const lower = Array.from({ length: layerCount }, (_, i) => `l/${i.toString(36)}`).join(':');
  return `lowerdir=${lower},upperdir=upper,workdir=work`;
}

export function isMounted(path: string): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[4] && unescapeMount(f[4]) === path) return true;
  }
  return false;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Mount the overlay at <dir>/merged (no-op if it is already mounted there). `volatile`
 * (for --rm containers, whose upper layer is thrown away) skips every sync of the upper
 * layer, which makes the unmount ~8 ms faster; the kernel then refuses to mount that upper
 * layer again after a crash, which for a throw-away container is what should happen.
 */
export function mountOverlay(dir: string, layers: string[], volatile = false): string {
  const { merged } = overlayPaths(dir);
  if (isMounted(merged)) return merged;
  if (!existsSync(join(dir, 'l'))) prepareOverlay(dir, layers);
  for (const l of layers) if (!existsSync(l)) throw new LxrError(`layer snapshot ${l} is missing (was it removed by gc?)`);
  const data = overlayOptions(layers.length);
  const cwd = process.cwd();
  // Node runs JS on one thread and koffi's call is synchronous: nothing else runs between
  // the two chdir calls.
  process.chdir(dir);
  let r: number;
  try {
    r = native().mount('overlay', merged, 'overlay', 0, volatile ? `${data},volatile` : data);
    if (r === -22 && volatile) r = native().mount('overlay', merged, 'overlay', 0, data); // EINVAL: a kernel before 5.10
  } finally {
    process.chdir(cwd);
  }
  if (r < 0) throw new LxrError(`mounting the overlay rootfs at ${merged} (${layers.length} layers) failed: ${errnoName(-r)}`);
  return merged;
}

export function unmountOverlay(dir: string): void {
  const { merged } = overlayPaths(dir);
  for (let i = 0; i < 10 && isMounted(merged); i++) {
    const r = native().umount(merged, 0);
    if (r < 0 && -r !== 22) {
      // EBUSY and friends: detach it, the kernel finishes when the last user goes
      native().umount(merged, MNT_DETACH);
    }
  }
}

/** Snapshot directories under `snapshots` that no image or container in `keep` uses. */
export function unusedSnapshots(snapshots: string, keep: Set<string>): string[] {
  let names: string[];
  try {
    names = readdirSync(snapshots);
  } catch {
    return [];
  }
  const removed: string[] = [];
  // not locks and in-progress unpacks (dot files)
  for (const n of names) if (!n.startsWith('.') && !keep.has(join(snapshots, n))) removed.push(join(snapshots, n));
  return removed;
}

/**
 * Snapshot directories under `snapshots` that no image or container in `keep` uses are
 * removed, with the per-layer lock files (.NAME.lock) nobody holds: only an unpack needs one,
 * and it makes it again.
 */
export function removeUnusedSnapshots(snapshots: string, keep: Set<string>): string[] {
  const removed = unusedSnapshots(snapshots, keep);
  for (const p of removed) rmSync(p, { recursive: true, force: true });
  let names: string[] = [];
  try {
    names = readdirSync(snapshots);
  } catch {
    /* gone */
  }
  for (const n of names) if (/^\..+\.lock$/.test(n)) removeUnusedLockFile(join(snapshots, n));
  return removed;
}
