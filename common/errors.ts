// One error type for everything a user can cause: a one-line message that names the
// thing at fault. The CLI prints `message` and exits non-zero.
export class LxrError extends Error {
  readonly errno: number | undefined;
  readonly exitCode: number;
  constructor(message: string, opts: { errno?: number; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LxrError';
    this.errno = opts.errno;
    this.exitCode = opts.exitCode ?? 1;
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
