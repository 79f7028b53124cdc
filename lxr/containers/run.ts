// `lxr run` in the foreground: this lxr process is the init's parent (no monitor), with the
// container on our stdio (or, with -t, on a pty whose master we proxy). Ctrl-C and other
// signals are forwarded to the init. Returns the exit code as a shell would see it.
import { native } from '../../native/index.js';
import { proxyTerminal } from '../../runtime/index.js';
import type { LxrContext } from '../core/context.js';
import { createAndStart, createContainerRecord, discard, type CreateOptions } from './create.js';
import { finish, launch, shouldRestart, waitExit, type Launched } from './launch.js';
import { startContainer } from './manage.js';
import { errorMessage } from '../../common/errors.js';
import { readRecordById, updateRecord } from './store.js';
import { withStartCode } from './exit-codes.js';
import { containerLogs } from './query.js';

const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2'];

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  /**
   * attached to the output only (docker's --sig-proxy=false, or -a without STDIN): the
   * container runs under its monitor, as with -d, and this call follows its output until it
   * exits. Killing the caller leaves the container running.
   */
  observe?: boolean;
}

export interface RunResult {
  id: string;
  name: string;
  /** set for a foreground run */
  exitCode?: number;
}

export async function runContainer(ctx: LxrContext, o: RunOptions): Promise<RunResult> {
  if (o.detach) {
    const r = await createAndStart(ctx, o);
    return { id: r.id, name: r.name };
  }
  if (o.observe) {
    const r = await createAndStart(ctx, o);
    await containerLogs(ctx, r.id, { follow: true });
    // the monitor forgets the runtime's container just before it records the exit code
    for (let i = 0; i < 100; i++) {
      const x = readRecordById(ctx, r.id);
      if (!x || x.status === 'exited' || (x.exitCode !== undefined && !x.pid)) return { id: r.id, name: r.name, exitCode: x?.exitCode ?? 0 };
      await new Promise((res) => setTimeout(res, 50));
    }
    return { id: r.id, name: r.name, exitCode: readRecordById(ctx, r.id)?.exitCode ?? 0 };
  }
  const rec = await createContainerRecord(ctx, o);
  let l: Launched;
  let master: number | undefined;
  try {
    if (rec.settings.tty) {
      const [parent, child] = native().socketpair();
      try {
        l = await launch(ctx, rec.id, [0, 1, 2], child);
      } finally {
        native().close(child);
      }
      master = await native().recvFdAsync(parent);
      native().close(parent);
    } else {
      l = await launch(ctx, rec.id, [0, 1, 2]);
    }
  } catch (e) {
    await discard(ctx, rec);
    throw withStartCode(e);
  }
  const pid = l.pid;
  let interrupted = false;
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      if (sig !== 'SIGUSR1' && sig !== 'SIGUSR2') interrupted = true;
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  const stop = master !== undefined && master >= 0 ? proxyTerminal(master, !!rec.settings.interactive) : undefined;
  const code = await waitExit(ctx, rec.id, l);
  await stop?.();
  for (const [sig, h] of handlers) process.off(sig, h);
  // --restart: this command returns the first exit code, as podman's does, and the container
  // goes on under a background monitor. A signal from the user (Ctrl-C) is a stop.
  const after = await updateRecord(ctx, rec.id, (r) => {
    if (interrupted || !shouldRestart(r)) r.stopRequested = true;
  });
  await finish(ctx, rec.id);
  if (after && !after.stopRequested) {
    await updateRecord(ctx, rec.id, (r) => {
      r.restartCount++;
    });
    try {
      await startContainer(ctx, rec.id);
    } catch (e) {
      process.stderr.write(`lxr: restarting ${rec.name} (--restart ${rec.settings.restart}): ${errorMessage(e)}\n`);
    }
  }
  return { id: rec.id, name: rec.name, exitCode: code };
}

