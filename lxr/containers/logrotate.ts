// --log-opt max-size=10m --log-opt max-file=3, as docker's json-file driver rotates: when the
// log reaches max-size it becomes ctr.log.1 (older ones move up to ctr.log.<max-file - 1>,
// the oldest is dropped) and ctr.log starts empty. The container writes ctr.log itself
// (O_APPEND), so rotation is copy-then-truncate, by lxr's own detached runner (`lxr
// __logrotate ID STARTEDAT`, started with the container, like the health checks) woken by
// inotify; native/monitor.c is not involved. It ends when the container stops or restarts.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, rmSync, statSync, truncateSync, watch } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { contextEnv, type LxrContext } from '../context.js';
import { logPath, readRecordById } from './store.js';
import { liveState } from './status.js';

export interface LogOptions {
  /** "json-file" (lxr's file, the default), "k8s-file" (the same) or "none" */
  driver: string;
  maxSize?: number;
  maxFile?: number;
}

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

/** The rotated files of a log, oldest first (ctr.log.N ... ctr.log.1). */
export function rotatedLogs(path: string, maxFile = 1): string[] {
  const out: string[] = [];
  for (let i = Math.max(maxFile - 1, 0); i >= 1; i--) if (existsSync(`${path}.${i}`)) out.push(`${path}.${i}`);
  return out;
}

export function startLogRotator(ctx: LxrContext, id: string, startedAt: string, lxrBin: string): void {
  const c = spawn(process.execPath, [lxrBin, '__logrotate', id, startedAt], { detached: true, stdio: 'ignore', env: { ...process.env, ...contextEnv(ctx) } });
  c.on('error', () => {});
  c.unref();
}

function rotate(path: string, maxFile: number): void {
  rmSync(`${path}.${maxFile - 1}`, { force: true });
  for (let i = maxFile - 2; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
  if (maxFile > 1) copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
}

/** `lxr __logrotate ID STARTEDAT`. */
export async function logRotateMain(ctx: LxrContext, id: string, startedAt: string): Promise<number> {
  const rec = readRecordById(ctx, id);
  const o = rec?.settings.flags?.log;
  if (!o?.maxSize) return 0;
  const path = logPath(ctx, id);
  if (!existsSync(path)) return 0; // a foreground run writes to the terminal, not the log
  const current = () => {
    const r = readRecordById(ctx, id);
    return !!r && r.startedAt === startedAt && liveState(ctx, r).status === 'running';
  };
  const check = () => {
    try {
      if (statSync(path).size >= o.maxSize!) rotate(path, o.maxFile ?? 1);
    } catch {
      /* gone */
    }
  };
  await new Promise<void>((resolve) => {
    const w = watch(path, () => check());
    w.on('error', () => {});
    const timer = setInterval(() => {
      check();
      if (!current()) {
        clearInterval(timer);
        w.close();
        resolve();
      }
    }, 500);
    check();
  });
  return 0;
}
