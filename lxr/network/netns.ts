// Named network namespaces for containers, at /run/netns/NAME (also /var/run/netns/NAME on
// Debian) where `ip netns` and other tools find them. The front end puts
// { "type": "network", "path": <path> } into the container's config.json.
//
// Made without running `ip`: native/netns.c clones a helper into a new network namespace that
// brings lo up and bind-mounts its namespace onto the file; this process never enters it.
// /run/netns is made a shared mount point first, as `ip netns add` does, so that the mounts
// in it propagate to mount namespaces made later, and their removal too. Removal is what
// `ip netns del` does: detach the mount, remove the file. The namespace itself goes away
// (with the interfaces in it) when nothing else holds it.
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { native, errnoName, NS_STEP } from '../../native/index.js';

export const NETNS_DIR = '/run/netns';

const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SHARED = 1 << 20;
const MNT_DETACH = 2;
const EINVAL = 22;
const ENOENT = 2;
const EEXIST = 17;

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(name)) throw new LxrError(`invalid network namespace name "${name}"`);
}

export function netnsPath(name: string): string {
  checkName(name);
  return `${NETNS_DIR}/${name}`;
}

let dirReady = false;

/** NETNS_DIR exists and is a shared mount point (bind-mounted onto itself if it was not one). */
function prepareDir(): void {
  if (dirReady) return;
  mkdirSync(NETNS_DIR, { recursive: true, mode: 0o755 });
  const n = native();
  let r = n.mount('none', NETNS_DIR, null, MS_SHARED | MS_REC, null);
  if (r === -EINVAL) {
    // not a mount point yet
    r = n.mount(NETNS_DIR, NETNS_DIR, null, MS_BIND | MS_REC, null);
    if (r < 0) throw new LxrError(`bind-mounting ${NETNS_DIR} onto itself: ${errnoName(-r)}`);
    r = n.mount('none', NETNS_DIR, null, MS_SHARED | MS_REC, null);
  }
  if (r < 0) throw new LxrError(`making ${NETNS_DIR} a shared mount point: ${errnoName(-r)}`);
  dirReady = true;
}

/** Create the named netns with loopback up; returns its path. An existing one is an error. */
export function createNetns(name: string): string {
  const path = netnsPath(name);
  if (existsSync(path)) throw new LxrError(`network namespace ${path} already exists`);
  prepareDir();
  const [r, step] = native().netnsCreate(path);
  if (r === -EEXIST && step === 1) throw new LxrError(`network namespace ${path} already exists`);
  if (r < 0) throw new LxrError(`creating network namespace ${path}: ${NS_STEP[step] ?? `step ${step}`}: ${errnoName(-r)}`, { errno: -r });
  return path;
}

/** Remove the named netns (and with it any interfaces left in it). Missing is fine. */
export function removeNetns(name: string): void {
  const path = netnsPath(name);
  const r = native().umount(path, MNT_DETACH);
  if (r === -ENOENT) return;
  // EINVAL: not a mount point (a file left behind by a create that died half-way)
  if (r < 0 && r !== -EINVAL) throw new LxrError(`removing network namespace ${path}: unmounting it: ${errnoName(-r)}`, { errno: -r });
  try {
    unlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new LxrError(`removing network namespace ${path}: ${code ?? (e as Error).message}`);
  }
}
