// --log-opt max-size=10m --log-opt max-file=3, as docker's json-file driver rotates: before a
// record would take ctr.log over max-size, ctr.log becomes ctr.log.1 (older ones move up to
// ctr.log.<max-file - 1>, the oldest is dropped) and a fresh ctr.log is started. lxr-monitor's
// log thread, the only writer, does it (native/monitor.c), so no line is lost; lxr decides
// the limits (here) and passes them to it. This module also reads the files back as one log.
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import type { LogOptions } from '../core/types.js';

const bad = (flag: string, value: string, why: string) => new LxrError(`invalid argument "${value}" for "${flag}" flag: ${why}`, { exitCode: 125 });

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** --log-driver and --log-opt KEY=VALUE (max-size, max-file), or undefined for the defaults. */
export function parseLogFlags(driver: unknown, opts: string[]): LogOptions | undefined {
  if (driver === undefined && !opts.length) return undefined;
  const d = driver === undefined ? 'json-file' : String(driver);
  if (!['json-file', 'k8s-file', 'none'].includes(d)) throw new LxrError(`--log-driver ${d}: lxr has the json-file (its own log file, the default) and none drivers`, { exitCode: 125 });
  const o: LogOptions = { driver: d };
  for (const kv of opts) {
    const eq = kv.indexOf('=');
    const key = kv.slice(0, eq);
    const v = kv.slice(eq + 1);
    if (d === 'none') throw new LxrError(`--log-opt ${kv}: the none log driver takes no options`, { exitCode: 125 });
    if (key === 'max-size') {
      const m = /^(\d+)([kmg]?)$/i.exec(v);
      if (!m || Number(m[1]) <= 0) throw bad('--log-opt', kv, 'max-size must be a positive size such as 10m');
      o.maxSize = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
    } else if (key === 'max-file') {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw bad('--log-opt', kv, 'max-file must be a positive integer');
      o.maxFile = Number(v);
    } else {
      throw bad('--log-opt', kv, `unknown log opt '${key}' for ${d} log driver (lxr has max-size and max-file)`);
    }
  }
  if (o.maxFile && o.maxFile > 1 && !o.maxSize) throw new LxrError('--log-opt max-file needs max-size', { exitCode: 125 });
  return o;
}

/** One file of a log, open. */
export interface LogFile {
  fd: number;
  ino: number;
}

/** The names a log's files can have, oldest first: ctr.log.<maxFile-1> ... ctr.log.1, ctr.log. */
export function logFileNames(path: string, maxFile = 1): string[] {
  const out: string[] = [];
  for (let i = Math.max(maxFile - 1, 0); i >= 1; i--) out.push(`${path}.${i}`);
  out.push(path);
  return out;
}

/** The inode a name has now, or undefined. */
export function inodeOf(name: string): number | undefined {
  try {
    return statSync(name).ino;
  } catch {
    return undefined;
  }
}

/**
 * Open a log's files, oldest first, as one consistent set. The monitor may rotate while they
 * are opened one by one (opening a rotated file, then the current one after a rotation, would
 * lose the lines in between), so the set is checked after opening: each name must still name
 * the file opened under it, and a name missing then must still be missing; if not, it is
 * opened again. Every state within one rotation is a consistent set (the monitor shifts the
 * oldest first, and ctr.log always names a file), and ctr.log, replaced last, must be the same
 * file before and after: so no two rotations mixed. A file seen under two names (the instant
 * of a rotation when ctr.log and ctr.log.1 are one file) counts once. The caller closes the
 * fds. Empty: no log file.
 */
export function openLogFiles(path: string, maxFile = 1): LogFile[] {
  const names = logFileNames(path, maxFile);
  for (let attempt = 0; ; attempt++) {
    const current = inodeOf(path);
    const opened: (LogFile | undefined)[] = names.map((name) => {
      try {
        const fd = openSync(name, 'r');
        return { fd, ino: fstatSync(fd).ino };
      } catch {
        return undefined;
      }
    });
    const files = opened.filter((f): f is LogFile => f !== undefined);
    const steady = current === opened[opened.length - 1]?.ino && names.every((name, i) => inodeOf(name) === opened[i]?.ino);
    if (steady || attempt >= 100) {
      return files.filter((f, i) => {
        if (i === 0 || files[i - 1]!.ino !== f.ino) return true;
        closeSync(f.fd);
        return false;
      });
    }
    for (const f of files) closeSync(f.fd);
  }
}
