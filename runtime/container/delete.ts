// runtime.md "delete": remove what create made, then run the poststop hooks.
import { existsSync } from 'node:fs';
import { containerDir, liveStatus, ociState, readRecord, removeDir, withLock } from './state.js';
import { containerPids, isZombieOrGone } from './processes.js';
import { runHooks } from '../run-hooks.js';
import { LxrError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { cgroupDriver, cgroupMembers, recordCgroup } from './cgroup-link.js';
import { killCgroup } from '../cgroups/index.js';
import { sharesHostMountNamespace, unmountUnder } from './host-mounts.js';

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (pids.every(isZombieOrGone)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function deleteContainer(root: string, id: string, force = false): Promise<void> {
  if (!existsSync(containerDir(root, id))) {
    if (force) return;
    throw new LxrError(`container "${id}" does not exist`);
  }
  await withLock(root, id, async () => {
    let rec;
    try {
      rec = readRecord(root, id);
    } catch (e) {
      // a create that died half-way: nothing to run, just remove it
      if (force) {
        removeDir(root, id);
        return;
      }
      throw e;
    }
    const status = liveStatus(root, rec);
    if ((status === 'running' || status === 'paused') && !force) {
      throw new LxrError(`cannot delete container "${id}": it is ${status} (stop it first, or use --force)`);
    }
    // A stopped container's cgroup can still hold processes: children of an init that
    // exited, when the pid namespace is shared (runc's destroy kills them too). They go
    // with the container, or its cgroup could not be removed.
    const leftovers = status === 'stopped' ? (cgroupMembers(rec) ?? []) : [];
    if (status !== 'stopped' || leftovers.length) {
      const paths = recordCgroup(rec);
      if (leftovers.length && paths) {
        try {
          killCgroup(paths, 9); // frozen first: nothing forks past the list
        } catch {
          /* the signals below */
        }
      }
      const pids = status === 'stopped' ? (cgroupMembers(rec) ?? leftovers) : containerPids(rec);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (!(await waitGone(pids, 5000))) throw new LxrError(`container "${id}": processes did not die after SIGKILL`);
    }
    try {
      cgroupDriver(rec, { id }).destroy();
    } catch (e) {
      throw new LxrError(`container "${id}": removing its cgroup: ${errorMessage(e)}`);
    }
    if (sharesHostMountNamespace(rec.config)) unmountUnder(rec.rootfs);
    removeDir(root, id);
    try {
      await runHooks('poststop', rec.config.hooks?.poststop, ociState(rec, 'stopped'));
    } catch (e) {
      log.warn(`container "${id}": ${errorMessage(e)}`);
    }
  });
}
