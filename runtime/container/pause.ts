// `pause` and `resume` (runc's): freeze and thaw every process of the container through
// its cgroup (v1 freezer, v2 cgroup.freeze).
import { freezeCgroup } from '../cgroups/manager/index.js';
import { recordCgroup, isPaused } from './cgroup-link.js';
import { liveStatus, readRecord, withLock } from './state.js';
import { LxrError } from '../../common/errors.js';

export async function pauseContainer(root: string, id: string, pause: boolean): Promise<void> {
  await withLock(root, id, async () => {
    const rec = readRecord(root, id);
    const status = liveStatus(root, rec, isPaused);
    const paths = recordCgroup(rec);
    if (!paths) throw new LxrError(`container "${id}" has no cgroup, so it cannot be ${pause ? 'paused' : 'resumed'}`);
    if (pause && status !== 'running') throw new LxrError(`cannot pause container "${id}": it is ${status}, not running`);
    if (!pause && status !== 'paused') throw new LxrError(`cannot resume container "${id}": it is ${status}, not paused`);
    await freezeCgroup(paths, pause);
  });
}
