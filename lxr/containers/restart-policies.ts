// --restart across host restarts: a module of its own above manage.ts, so that status.ts
// (liveState, monitorAlive) stays read-only and imports nothing that starts containers.
import type { LxrContext } from '../core/context.js';
import { startContainer } from './manage.js';
import { liveState } from './status.js';
import { listRecords } from './store.js';

/**
 * --restart across host restarts: the monitors died with the host, so the first lxr command
 * after it starts again the containers whose policy asks for it (what dockerd does at boot).
 * Returns the names started. Errors are reported, not thrown: one bad container must not
 * block the command the user typed.
 */
export async function applyRestartPolicies(ctx: LxrContext, report: (msg: string) => void = () => {}): Promise<string[]> {
  const started: string[] = [];
  for (const r of listRecords(ctx)) {
    if (r.settings.restart === 'no' || r.stopRequested) continue;
    const live = liveState(ctx, r);
    if (!live.stale) continue;
    try {
      await startContainer(ctx, r.id);
      started.push(r.name);
    } catch (e) {
      report(`restarting ${r.name} (--restart ${r.settings.restart}): ${(e as Error).message}`);
    }
  }
  return started;
}
