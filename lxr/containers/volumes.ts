// Named volumes: $LXR_ROOT/volumes/<name>/_data, bind-mounted into containers. As with docker
// and podman, a volume that is new when a container first mounts it starts as a copy of what
// the image has at the mount point: files, ownership, modes, times and xattrs (`cp -a`), so
// that e.g. a database image's data directory keeps its owner. `nocopy` leaves it empty.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInRootSync } from '../../image-tool/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';

/**
 * The host directory of volume `name`, made if missing. `rootfs` is the container's root
 * (mounted), used to fill a new volume from the image's `destination` unless `nocopy`.
 */
export function prepareNamedVolume(volumesRoot: string, name: string, rootfs: string, destination: string, nocopy = false): string {
  const dir = join(volumesRoot, name);
  const data = join(dir, '_data');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    mkdirSync(data, { mode: 0o755 }); // exclusive: only the container that makes the volume fills it
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return data;
    throw new LxrError(`volume ${name}: creating ${data}: ${errorMessage(e)}`);
  }
  if (nocopy) return data;
  try {
    copyUp(rootfs, destination, data);
  } catch (e) {
    rmSync(data, { recursive: true, force: true });
    throw new LxrError(`volume ${name}: copying the image's ${destination} into it: ${errorMessage(e)}`);
  }
  return data;
}

function copyUp(rootfs: string, destination: string, data: string): void {
  // the mount point as the container will see it: symlinks resolved inside the rootfs
  const r = resolveInRootSync(rootfs, destination.split('/'), { followLast: true });
  if (!r) return; // not in the image: the volume starts empty
  let st;
  try {
    st = lstatSync(r.host);
  } catch {
    return;
  }
  if (!st.isDirectory()) return; // the runtime reports a file/directory mismatch at mount time
  chownSync(data, st.uid, st.gid);
  chmodSync(data, st.mode & 0o7777);
  // "src/." copies the entries and the directory's own attributes; -a never follows symlinks
  const cp = spawnSync('cp', ['-a', '--', `${r.host}/.`, `${data}/`], { encoding: 'utf8' });
  if (cp.error) throw cp.error;
  if (cp.status !== 0) throw new Error(cp.stderr.trim().split('\n')[0] || `cp exited with status ${cp.status}`);
}
