// A container's real status, from its record, its monitor process and the runtime's state.
// Kept light (no runtime or image code): ps and every command's restart-policy check load it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initAlive, readRecord as readRuntimeRecord } from '../../runtime/index.js';
import type { LxrContext } from '../core/context.js';
import { procStat } from '../../common/proc.js';
import type { ContainerRecord, ContainerStatus } from '../core/types.js';

export interface LiveState {
  status: ContainerStatus;
  /** the runtime state or the monitor vanished (host restart, kill -9): shown as exited */
  stale: boolean;
  pid?: number;
  exitCode?: number;
  /** running, but its monitor died: nothing will record its exit (the runtime says it lives) */
  monitorLost?: boolean;
}

/** Does the runtime know the container's init as alive (as podman asks the runtime once conmon is gone)? */
export function runtimeSaysAlive(ctx: LxrContext, r: ContainerRecord): boolean {
  try {
    const rec = readRuntimeRecord(ctx.runtimeRoot, r.id);
    return (!r.pid || rec.pid === r.pid) && initAlive(rec);
  } catch {
    return false;
  }
}

export function monitorAlive(r: ContainerRecord): boolean {
  if (!r.monitorPid) return false;
  const st = procStat(r.monitorPid);
  return !!st && st.state !== 'Z' && st.startTime === r.monitorStart;
}

/** The status as it really is: a record that says running is believed only while its monitor and runtime state exist. */
export function liveState(ctx: LxrContext, r: ContainerRecord): LiveState {
  if (r.status === 'running') {
    const runtimeState = existsSync(join(ctx.runtimeRoot, r.id, 'state.json'));
    if (!monitorAlive(r) && runtimeState && runtimeSaysAlive(ctx, r)) {
      return { status: 'running', stale: false, monitorLost: true, ...(r.pid ? { pid: r.pid } : {}) };
    }
    if (!monitorAlive(r) || (!runtimeState && r.pid)) {
      return { status: 'exited', stale: true, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}) };
    }
    return { status: 'running', stale: false, ...(r.pid ? { pid: r.pid } : {}) };
  }
  return { status: r.status, stale: false, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}) };
}
