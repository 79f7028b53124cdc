// One error type for everything lxr-image reports to a user. The message is one line
// that names the thing at fault (reference, URL, HTTP status, path); `code` lets
// callers (the lxr front end, tests) branch without parsing text.
import { LxrError } from '../../common/errors.js';

export type ImageErrorCode =
  | 'BAD_REFERENCE'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'DIGEST_MISMATCH'
  | 'MALFORMED'
  | 'UNSUPPORTED'
  | 'PLATFORM_NOT_FOUND'
  | 'NO_SPACE'
  | 'UNREACHABLE'
  | 'HTTP'
  | 'STORE'
  | 'CONFIG';

export class ImageError extends LxrError {
  readonly code: ImageErrorCode;
  /** Whether trying the same operation again may succeed (network blips, 429, 5xx). */
  readonly retryable: boolean;
  constructor(code: ImageErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ImageError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** Wrap a filesystem error of the store into an ImageError with a readable message. */
export function storeError(err: unknown, what: string): ImageError {
  if (err instanceof ImageError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return new ImageError('NO_SPACE', `no space left on device while ${what}`, { cause: err });
  if (e?.code === 'EDQUOT') return new ImageError('NO_SPACE', `disk quota exceeded while ${what}`, { cause: err });
  if (e?.code === 'EACCES' || e?.code === 'EPERM') {
    return new ImageError('STORE', `permission denied while ${what}${e.path ? ` (${e.path})` : ''}`, { cause: err });
  }
  if (e?.code === 'EROFS') return new ImageError('STORE', `read-only file system while ${what}`, { cause: err });
  return new ImageError('STORE', `${what} failed: ${e?.message ?? String(err)}`, { cause: err });
}
