// `state` and `list`: what runc prints, so that containerd and podman can read it.
import { existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isPaused } from './cgroup-link.js';
import { containerDir, liveStatus, listIds, readRecord, UnreadableState, type ContainerRecord } from './state.js';

/** runc's containerState: the OCI state plus rootfs, created and owner. */
export interface RuncState {
  ociVersion: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

function owner(root: string, id: string): string {
  try {
    const uid = statSync(containerDir(root, id)).uid;
    return uid === userInfo().uid ? userInfo().username : String(uid);
  } catch {
    return '';
  }
}

export function toRuncState(root: string, rec: ContainerRecord): RuncState {
  const status = liveStatus(root, rec, isPaused);
  const s: RuncState = {
    ociVersion: rec.ociVersion,
    id: rec.id,
    pid: status === 'stopped' ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: owner(root, rec.id),
  };
  if (rec.annotations && Object.keys(rec.annotations).length) s.annotations = rec.annotations;
  return s;
}

export function containerState(root: string, id: string): RuncState {
  return toRuncState(root, readRecord(root, id));
}

/**
 * Every container with a state file. One whose state cannot be read is left out of the
 * list but reported through `onError` (runc prints `load container ID: ...` on stderr).
 */
export function listContainers(root: string, onError?: (id: string, e: unknown) => void): RuncState[] {
  const out: RuncState[] = [];
  for (const id of listIds(root)) {
    if (!existsSync(`${containerDir(root, id)}/state.json`)) continue;
    try {
      out.push(toRuncState(root, readRecord(root, id)));
    } catch (e) {
      if (e instanceof UnreadableState) onError?.(id, e);
      /* else removed while listing */
    }
  }
  return out;
}
