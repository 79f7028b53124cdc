// The host terminal's modes for `run -t` and `exec -t`: libc's tcgetattr, tcsetattr and
// cfmakeraw, bound through koffi. Node's setRawMode leaves output processing (OPOST, ONLCR)
// on, so a container's "\n" (already "\r\n" from its own pty) reaches the screen as
// "\r\r\n", and a program that turns its pty's OPOST off still gets it translated. runc,
// podman and docker make the host terminal fully raw (cfmakeraw); so does this.
import { loadKoffi } from './koffi.js';

/** sizeof(struct termios) on Linux/glibc is 60; leave room. */
const TERMIOS_SIZE = 64;
const TCSANOW = 0;
const TCSADRAIN = 1;

interface Libc {
  tcgetattr(fd: number, t: Buffer): number;
  tcsetattr(fd: number, when: number, t: Buffer): number;
  cfmakeraw(t: Buffer): void;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const l = loadKoffi().load('libc.so.6');
  libc = {
    tcgetattr: l.func('int tcgetattr(int fd, _Inout_ uint8_t *t)'),
    tcsetattr: l.func('int tcsetattr(int fd, int when, const uint8_t *t)'),
    cfmakeraw: l.func('void cfmakeraw(_Inout_ uint8_t *t)'),
  };
  return libc;
}

/** A terminal's saved modes (an opaque struct termios), or null if fd is not a terminal. */
export function getTermios(fd: number): Buffer | null {
  const t = Buffer.alloc(TERMIOS_SIZE);
  return lib().tcgetattr(fd, t) === 0 ? t : null;
}

export function setTermios(fd: number, t: Buffer, drain = false): boolean {
  return lib().tcsetattr(fd, drain ? TCSADRAIN : TCSANOW, t) === 0;
}

/** struct termios: c_oflag is the second 32-bit field; OPOST is its bit 0. */
const C_OFLAG = 4;
const OPOST = 0o1;

/**
 * Make terminal fd raw: fully (cfmakeraw: no echo, no signals from keys, no input or output
 * processing) or, with `outputOnly`, only its output processing off (OPOST), so that what a
 * container writes on its pty reaches the screen unchanged while Ctrl-C still works.
 * Returns the previous modes to restore with setTermios, or null if fd is not a terminal.
 */
export function makeRaw(fd: number, outputOnly = false): Buffer | null {
  const saved = getTermios(fd);
  if (!saved) return null;
  const raw = Buffer.from(saved);
  if (outputOnly) raw.writeUInt32LE(raw.readUInt32LE(C_OFLAG) & ~OPOST, C_OFLAG);
  else lib().cfmakeraw(raw);
  return setTermios(fd, raw) ? saved : null;
}
