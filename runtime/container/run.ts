// `run`: create + start, then (in the foreground) wait for the init, forward signals,
// delete the container and return its exit code as a shell would (128+signal).
import { createContainer, type CreateOptions } from './create.js';
import { startContainer } from './start.js';
import { deleteContainer } from './delete.js';
import { native } from '../../native/index.js';
import { loadSpec } from '../spec/load.js';
import { consolePair, forwardSignals, proxyTerminal, receiveMaster } from './console.js';
import { exitCodeOf } from '../../common/proc.js';


export async function runContainer(o: CreateOptions & { detach?: boolean; keep?: boolean }): Promise<number> {
  const terminal = !o.consoleSocket && !o.detach && !!loadSpec(o.bundle).spec.process?.terminal;
  let consoleParent: number | undefined;
  let consoleChild: number | undefined;
  if (terminal) [consoleParent, consoleChild] = consolePair();
  const { record, child } = await createContainer({ ...o, ...(consoleChild !== undefined ? { consoleFd: consoleChild } : {}) });
  if (consoleChild !== undefined) native().close(consoleChild);
  const master = consoleParent !== undefined ? await receiveMaster(consoleParent) : undefined;
  await startContainer(o.root, o.id);
  if (o.detach) {
    child.detach();
    return 0;
  }
  // The init reports a failure after start (the execve itself) on its channel.
  const after = await child.next();
  if (after.kind === 'error') {
    await native().wait(record.pid);
    await deleteContainer(o.root, o.id, true);
    throw child.failure(after);
  }
  const stopForwarding = forwardSignals(record.pid);
  const stopProxy = master !== undefined && master >= 0 ? proxyTerminal(master) : undefined;
  const [, status] = await native().wait(record.pid);
  await stopProxy?.();
  stopForwarding();
  child.detach();
  // --keep: the container stays, stopped, until `delete` (runc's run --keep)
  if (!o.keep) await deleteContainer(o.root, o.id, true);
  return exitCodeOf(status);
}
