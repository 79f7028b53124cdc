// Waits that end early when a watched directory changes. `lxr events` and `lxr logs -f` (and
// so `run --sig-proxy=false -a STDOUT`, which the Dev Containers CLI starts a container with)
// read the container records and logs again every 100 ms; inotify (fs.watch) wakes them as
// soon as a record or a log is written, so that what tools wait for is not a poll late.
import { watch, type FSWatcher } from 'node:fs';

export interface ChangeWaker {
  /** watch a directory; `wanted` picks the names in it whose changes wake */
  watch(dir: string, wanted: (file: string | null) => boolean): void;
  unwatch(dir: string): void;
  /** up to `ms`, less when a change came since the last sleep or comes during this one */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * A directory that cannot be watched (not there yet, out of inotify watches) is simply polled:
 * the sleeps still end after their `ms`.
 */
export function changeWaker(): ChangeWaker {
  const watchers = new Map<string, FSWatcher>();
  let changed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    changed = true;
    wake?.();
  };
  return {
    watch(dir, wanted) {
      if (watchers.has(dir)) return;
      try {
        const w = watch(dir, { persistent: false }, (_type, file) => {
          if (wanted(file === null ? null : String(file))) poke();
        });
        w.on('error', () => {
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        /* polled */
      }
    },
    unwatch(dir) {
      watchers.get(dir)?.close();
      watchers.delete(dir);
    },
    sleep(ms, signal) {
      if (changed) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise((res) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          wake = undefined;
          changed = false;
          res();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done);
        wake = done;
      });
    },
    close() {
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
