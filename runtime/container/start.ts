// runtime.md "start": run the startContainer hooks, release the init through exec.fifo,
// then the poststart hooks. A failing hook of either kind fails start and stops the container.
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { fifoPath, liveStatus, ociState, readRecord, withLock, writeRecord } from './state.js';
import { runHooks } from './run-hooks.js';
import { LxrError } from '../../common/errors.js';

export async function startContainer(root: string, id: string): Promise<void> {
  await withLock(root, id, async () => {
    const rec = readRecord(root, id);
    const status = liveStatus(root, rec);
    if (status !== 'created') throw new LxrError(`cannot start container "${id}": it is ${status}, not created`);
    if (!rec.config.process) {
      // runtime.md "start": without process, start MUST generate an error; the init stops
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw new LxrError(`cannot start container "${id}": config.json has no process to run`);
    }
    const hooks = rec.config.hooks;
    try {
      await runHooks('startContainer', hooks?.startContainer, ociState(rec, 'created'), rec.pid);
    } catch (e) {
      // config.md: a failing startContainer hook stops the container
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw e;
    }
    const fifo = fifoPath(root, id);
    let fd: number;
    try {
      fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new LxrError(`cannot start container "${id}": its init is not waiting (${(e as NodeJS.ErrnoException).code})`);
    }
    try {
      writeSync(fd, Buffer.from([0]));
    } finally {
      closeSync(fd);
    }
    unlinkSync(fifo);
    rec.started = new Date().toISOString();
    writeRecord(root, rec);
    try {
      await runHooks('poststart', hooks?.poststart, ociState(rec, 'running'));
    } catch (e) {
      // runtime.md (1.3.0) lifecycle step 9: a failing poststart hook is an error, and the
      // container is stopped (delete then destroys it), as for the hooks before it
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw e;
    }
  });
}
