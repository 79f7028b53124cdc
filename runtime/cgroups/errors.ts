// One error type for the whole cgroup library: a one-line message that names the spec
// field (e.g. "linux.resources.memory.limit") or the path at fault.
import { getSystemErrorMap } from 'node:util';
import { LxrError } from '../../common/errors.js';

export class CgroupError extends LxrError {
  override name = 'CgroupError';
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** "EINVAL (invalid argument)" from a Node system error, or its message otherwise. */
export function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number') {
    const entry = getSystemErrorMap().get(e.errno);
    if (entry) return `${entry[1]} (${entry[0]})`;
  }
  if (e?.code) return String(e.code);
  return e instanceof Error ? e.message : String(err);
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}
