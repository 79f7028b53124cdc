// Run a command on a pseudo-terminal of our own, as a user's shell would: the command's
// stdin, stdout and stderr are the slave, which is also its controlling terminal
// (setsid -c); the test holds the master, types `input` into it and reads everything
// the command writes.
//
// This replaces script(1), which stops reading its master 10 ms after its child exits:
// on a loaded machine the child's last lines can still be on their way through the
// tty layer then, and are lost. Here the master is read until it reports EIO, which
// the kernel does only once every slave is closed and all that was written is read.
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { native } from '../../native/index.js';
import { loadKoffi } from '../../native/koffi.js';

interface Libc {
  posix_openpt(flags: number): number;
  grantpt(fd: number): number;
  unlockpt(fd: number): number;
  ptsname(fd: number): string | null;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const l = koffi.load('libc.so.6');
  libc = {
    posix_openpt: l.func('int posix_openpt(int flags)'),
    grantpt: l.func('int grantpt(int fd)'),
    unlockpt: l.func('int unlockpt(int fd)'),
    ptsname: l.func('const char *ptsname(int fd)'),
  };
  return libc;
}

export interface PtyResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  /** everything written to the terminal (stdout and stderr together, with the echo of the input) */
  output: string;
}

export interface PtyOptions {
  /** typed into the terminal once the command has started */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** kill the command after this long (default 30 s) */
  timeout?: number;
  rows?: number;
  cols?: number;
  /** called with everything read so far after each read, and the master (to resize it, type more) */
  onOutput?: (output: string, master: number) => void;
}

/**
 * After the command exits, how long to wait for the master's EIO: longer only when
 * something the command started (a detached container, a shim) still holds the slave.
 */
const LINGER_MS = 3000;

export function runOnPty(argv: string[], o: PtyOptions = {}): Promise<PtyResult> {
  const c = lib();
  const master = c.posix_openpt(constants.O_RDWR | constants.O_NOCTTY);
  if (master < 0) throw new Error('posix_openpt failed');
  const name = c.grantpt(master) === 0 && c.unlockpt(master) === 0 ? c.ptsname(master) : null;
  if (!name) {
    closeSync(master);
    throw new Error('cannot set up a pseudo-terminal');
  }
  native().setWinsize(master, o.rows ?? 24, o.cols ?? 80);
  const slave = openSync(name, constants.O_RDWR | constants.O_NOCTTY);
  let child;
  try {
    child = spawn('setsid', ['-c', ...argv], { stdio: [slave, slave, slave], env: o.env ?? process.env, cwd: o.cwd });
  } finally {
    closeSync(slave);
  }
  if (o.input) writeSync(master, o.input);

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const out = new ReadStream(master);
    let exit: { status: number | null; signal: NodeJS.Signals | null } | undefined;
    let drained = false;
    let linger: NodeJS.Timeout | undefined;
    const finish = () => {
      if (!exit || !drained) return;
      clearTimeout(timer);
      clearTimeout(linger);
      resolve({ ...exit, output: Buffer.concat(chunks).toString('utf8') });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, o.timeout ?? 30000);
    out.on('data', (d: Buffer) => {
      chunks.push(d);
      o.onOutput?.(Buffer.concat(chunks).toString('utf8'), master);
    });
    const closed = () => {
      if (drained) return;
      drained = true;
      out.destroy();
      finish();
    };
    out.on('error', closed); // EIO: no slave is left open and everything is read
    out.on('end', closed);
    out.on('close', closed);
    child.on('error', (e) => {
      clearTimeout(timer);
      out.destroy();
      reject(e);
    });
    child.on('exit', (status, signal) => {
      exit = { status, signal };
      linger = setTimeout(closed, LINGER_MS);
      finish();
    });
  });
}

