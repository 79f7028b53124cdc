// `events` (runc's): resource usage as JSON lines, once (--stats) or every --interval,
// plus {"type":"oom"} when the OOM killer strikes in the container.
import { cgroupOomEvents, cgroupStats } from '../cgroups/manager/index.js';
import { recordCgroup, isPaused } from './cgroup-link.js';
import { liveStatus, readRecord } from './state.js';
import { LxrError } from '../../common/errors.js';

export function statsEvent(root: string, id: string): Record<string, unknown> {
  const rec = readRecord(root, id);
  const paths = recordCgroup(rec);
  if (!paths) throw new LxrError(`container "${id}" has no cgroup, so it has no stats`);
  if (liveStatus(root, rec, isPaused) === 'stopped') throw new LxrError(`container "${id}" is not running`);
  return { type: 'stats', id, data: cgroupStats(paths) };
}

export async function streamEvents(root: string, id: string, intervalMs: number, write: (line: string) => void): Promise<void> {
  const rec = readRecord(root, id);
  const paths = recordCgroup(rec);
  if (!paths) throw new LxrError(`container "${id}" has no cgroup, so it has no events`);
  let ooms = cgroupOomEvents(paths);
  for (;;) {
    if (liveStatus(root, rec) === 'stopped') return;
    write(JSON.stringify({ type: 'stats', id, data: cgroupStats(paths) }));
    const end = Date.now() + intervalMs;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(200, intervalMs)));
      let now: number;
      try {
        now = cgroupOomEvents(paths);
      } catch {
        return;
      }
      if (now > ooms) write(JSON.stringify({ type: 'oom', id }));
      ooms = now;
      if (liveStatus(root, rec) === 'stopped') return;
    }
  }
}
