// Terminals for `run` and `exec` in the foreground without --console-socket: the pty
// master comes back over a socketpair, and this process copies between its own stdio
// and the master, the way runc does.
import { fstatSync, writeSync } from 'node:fs';
import { builtin } from '../../common/lazy.js';
import { native } from '../../native/index.js';
import { makeRaw, setTermios } from '../../native/termios.js';

/** The size of the terminal this process runs on (stdout's, else stdin's), for a container's pty. */
export function hostTerminalSize(): { height: number; width: number } | undefined {
  for (const fd of [1, 0]) {
    if (!tty().isatty(fd)) continue;
    const s = native().getWinsize(fd);
    if (s && s[0] > 0 && s[1] > 0) return { height: s[0], width: s[1] };
  }
  return undefined;
}

function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino && x.rdev === y.rdev;
  } catch {
    return false;
  }
}

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
  // Fully raw (cfmakeraw, as runc, podman and docker do: OPOST off too, so that the
  // container's own pty alone decides what reaches the screen) when our stdin is passed on;
  // otherwise only output processing off, so that Ctrl-C still reaches us.
  const saved: [number, Buffer][] = [];
  if (interactive && tty().isatty(0)) {
    const t = makeRaw(0);
    if (t) saved.push([0, t]);
  }
  if (tty().isatty(1) && !(saved.length && sameFile(0, 1))) {
    const t = makeRaw(1, true);
    if (t) saved.push([1, t]);
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    for (const [fd, t] of saved) setTermios(fd, t, true);
  };
  process.once('exit', restore);
  const size = hostTerminalSize();
  if (size) native().setWinsize(master, size.height, size.width);
  const onResize = () => {
    const s = hostTerminalSize();
    if (s) native().setWinsize(master, s.height, s.width);
  };
  process.on('SIGWINCH', onResize);
  const out = new (tty().ReadStream)(master);
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
    restore();
    process.off('exit', restore);
    out.destroy();
  };
}

// node:tty only when a terminal is proxied: lxr ps and friends load this module too
const tty = () => builtin<typeof import('node:tty')>('node:tty');

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

