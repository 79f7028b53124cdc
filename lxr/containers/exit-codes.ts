// docker's and podman's exit codes for a container command that cannot start: 127 when the
// command is not found, 126 when it cannot be run (not executable, a directory, no working
// directory), 125 for lxr's own errors. Scripts tell the three apart.
import { LxrError, errorMessage } from '../../common/errors.js';

export const EXIT_NOT_FOUND = 127;
export const EXIT_CANNOT_RUN = 126;

/**
 * The exit code for an error from starting a container's (or an exec's) command: 127 or 126
 * for a failed execve or chdir, undefined for anything else. The runtime's message names the
 * step (`find executable "X"`, `exec "X"`, `change to the working directory "D"`) and the errno.
 */
export function startFailureCode(message: string): number | undefined {
  const m = /(?:find executable|exec) "[^"]*"[^:]*: (E[A-Z]+)/.exec(message);
  if (m) return m[1] === 'ENOENT' || m[1] === 'ENOTDIR' ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
  if (/working directory "[^"]*"[^:]*: E[A-Z]+/.test(message)) return EXIT_CANNOT_RUN;
  return undefined;
}

/** `e`, with docker's exit code when it says the command could not start. */
export function withStartCode(e: unknown): unknown {
  const code = startFailureCode(errorMessage(e));
  if (code === undefined) return e;
  return new LxrError(errorMessage(e), { exitCode: code, cause: e, ...(e instanceof LxrError && e.errno !== undefined ? { errno: e.errno } : {}) });
}
