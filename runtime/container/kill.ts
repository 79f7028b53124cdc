// runtime.md "kill": send a signal to the container's init (or, with --all, to every
// process in it).
import { initAlive, liveStatus, readRecord } from './state.js';
import { parseSignal } from './signals.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { containerPids } from './processes.js';
import { cgroupMembers, recordCgroup } from './cgroup-link.js';
import { killCgroup } from '../cgroups/manager/index.js';

function signal(id: string, pids: number[], sig: number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new LxrError(`kill ${pid} in container "${id}": ${(e as NodeJS.ErrnoException).code}`);
    }
  }
}

export async function killContainer(root: string, id: string, signalArg?: string | number, all = false): Promise<void> {
  const sig = parseSignal(signalArg);
  const rec = readRecord(root, id);
  const status = liveStatus(root, rec);
  if (all) {
    // As runc: --all signals whatever is in the container's cgroup, even once the init has
    // exited (a child that left the init's process group, in a pid namespace shared with
    // other containers, lives on). containerd's shim sends `kill --all ID 9` whenever such
    // an init exits, and waits for the cgroup to empty. Nothing left: nothing to do.
    const paths = recordCgroup(rec);
    const members = cgroupMembers(rec);
    if (paths && members !== undefined) {
      if (!members.length) return;
      try {
        // freezes first (v1, v2 without cgroup.kill) so nothing forks past the list
        killCgroup(paths, sig);
      } catch (e) {
        // e.g. a rootless container that may not write its freezer: signal the list
        if (!rec.rootless) throw new LxrError(`kill --all in container "${id}": ${errorMessage(e)}`);
        signal(id, members, sig);
      }
      return;
    }
    if (status === 'stopped') return;
    signal(id, containerPids(rec), sig);
    return;
  }
  if (status === 'stopped') throw new LxrError(`cannot kill container "${id}": container not running`);
  if (initAlive(rec)) signal(id, [rec.pid], sig);
}
