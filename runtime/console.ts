// Terminals for `run` and `exec` in the foreground without --console-socket: the pty
// master comes back over a socketpair, and this process copies between its own stdio
// and the master, the way runc does.
import { writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { native } from '../native/index.js';

/** A socketpair to pass as the console socket: [ours, the child's]. */
export function consolePair(): [number, number] {
  return native().socketpair();
}

export async function receiveMaster(ours: number): Promise<number> {
  const fd = await native().recvFdAsync(ours);
  native().close(ours);
  return fd;
}

/**
 * Copy the pty master to our stdout, and (when interactive) our stdin to the master,
 * with our terminal in raw mode meanwhile. The returned stop() first drains what the
 * container wrote before it exited (the master reads EIO once the pty is empty and its
 * last slave is closed), then restores the terminal.
 */
export function proxyTerminal(master: number, interactive = true): () => Promise<void> {
  const rawTty = process.stdin.isTTY && interactive;
  if (rawTty) process.stdin.setRawMode(true);
  const size = native().getWinsize(1);
  if (size) native().setWinsize(master, size[0], size[1]);
  const onResize = () => {
    const s = native().getWinsize(1);
    if (s) native().setWinsize(master, s[0], s[1]);
  };
  process.on('SIGWINCH', onResize);
  const out = new ReadStream(master);
  const drained = new Promise<void>((resolve) => {
    out.on('end', resolve);
    out.on('close', resolve);
    out.on('error', () => resolve());
  });
  out.on('data', (d: Buffer) => {
    try {
      writeSync(1, d);
    } catch {
      /* stdout closed */
    }
  });
  const onIn = (d: Buffer) => {
    try {
      writeSync(master, d);
    } catch {
      /* container gone */
    }
  };
  if (interactive) process.stdin.on('data', onIn);
  return async () => {
    if (interactive) {
      process.stdin.off('data', onIn);
      process.stdin.pause();
    }
    // a process the container left behind may still hold the pty: do not wait for ever
    await Promise.race([drained, new Promise((r) => setTimeout(r, 2000).unref())]);
    process.off('SIGWINCH', onResize);
    if (rawTty) process.stdin.setRawMode(false);
    out.destroy();
  };
}

const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGCONT'];

/** Forward the signals this process receives to pid; returns a function that stops it. */
export function forwardSignals(pid: number): () => void {
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
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}
