// `run`: create + start, then (in the foreground) wait for the init, forward signals,
// delete the container and return its exit code as a shell would (128+signal).
import { writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { createContainer, type CreateOptions } from './create.js';
import { startContainer } from './start.js';
import { deleteContainer } from './delete.js';
import { native } from '../../native/index.js';
import { loadSpec } from '../spec/load.js';

const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGCONT', 'SIGWINCH'];

export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}

export async function runContainer(o: CreateOptions & { detach?: boolean }): Promise<number> {
  const terminal = !o.consoleSocket && !o.detach && !!loadSpec(o.bundle).spec.process?.terminal;
  let consoleParent: number | undefined;
  let consoleChild: number | undefined;
  if (terminal) [consoleParent, consoleChild] = native().socketpair();
  const { record, child } = await createContainer({ ...o, ...(consoleChild !== undefined ? { consoleFd: consoleChild } : {}) });
  if (consoleChild !== undefined) native().close(consoleChild);
  let master: number | undefined;
  if (consoleParent !== undefined) {
    master = await native().recvFdAsync(consoleParent);
    native().close(consoleParent);
  }
  await startContainer(o.root, o.id);
  if (o.detach) {
    child.detach();
    return 0;
  }
  const pid = record.pid;
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  const stopProxy = master !== undefined && master >= 0 ? proxyTerminal(master) : undefined;
  const [, status] = await native().wait(pid);
  stopProxy?.();
  for (const [sig, h] of handlers) process.off(sig, h);
  child.detach();
  await deleteContainer(o.root, o.id, true);
  return exitCodeOf(status);
}

/** Copy between our stdio and the container's pty master. */
function proxyTerminal(master: number): () => void {
  const stdinIsTty = process.stdin.isTTY;
  if (stdinIsTty) process.stdin.setRawMode(true);
  const size = native().getWinsize(1);
  if (size) native().setWinsize(master, size[0], size[1]);
  const out = new ReadStream(master);
  out.on('data', (d: Buffer) => {
    try {
      writeSync(1, d);
    } catch {
      /* stdout closed */
    }
  });
  out.on('error', () => {});
  const onIn = (d: Buffer) => {
    try {
      writeSync(master, d);
    } catch {
      /* container gone */
    }
  };
  process.stdin.on('data', onIn);
  return () => {
    process.stdin.off('data', onIn);
    process.stdin.pause();
    if (stdinIsTty) process.stdin.setRawMode(false);
    out.destroy();
  };
}
