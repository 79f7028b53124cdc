// runtime.md "kill": send a signal to the container's init (or, with --all, to every
// process in it).
import { initAlive, liveStatus, readRecord } from './state.js';
import { parseSignal } from './signals.js';
import { LxrError } from '../errors.js';
import { containerPids } from './processes.js';

export async function killContainer(root: string, id: string, signal?: string | number, all = false): Promise<void> {
  const sig = parseSignal(signal);
  const rec = readRecord(root, id);
  const status = liveStatus(root, rec);
  if (status === 'stopped') throw new LxrError(`cannot kill container "${id}": container not running`);
  const pids = all ? containerPids(rec) : [rec.pid];
  for (const pid of pids) {
    if (pid === rec.pid && !initAlive(rec)) continue;
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new LxrError(`kill ${pid} in container "${id}": ${(e as NodeJS.ErrnoException).code}`);
    }
  }
}
