// Assertions shared by lxr-image tests.
import type { Test } from 'tap';
import { ImageError } from '../../core/errors.js';

/** The promise must reject with an ImageError of `code`, one line, whose message names every part. */
export async function expectImageError(t: Test, p: Promise<unknown>, code: string, ...parts: string[]): Promise<ImageError | undefined> {
  try {
    await p;
  } catch (e) {
    t.ok(e instanceof ImageError, `ImageError: ${(e as Error).message}`);
    t.equal((e as ImageError).code, code, (e as Error).message);
    for (const s of parts) t.ok((e as Error).message.includes(s), `message names ${s}`);
    t.notOk((e as Error).message.includes('\n'), 'one line');
    return e as ImageError;
  }
  t.fail(`expected an ImageError ${code}, but it succeeded`);
  return undefined;
}
