// runc-compatible logging: --log FILE, --log-format text|json, --debug. containerd's
// shim reads the JSON lines ({"level","msg","time"}) from the log file to report errors.
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { LxrError } from './errors.js';

type Level = 'debug' | 'info' | 'warning' | 'error';

let file: string | undefined;
let format: 'text' | 'json' = 'text';
let debug = false;

export function configureLog(opts: { file?: string; format?: string; debug?: boolean }): void {
  format = opts.format === 'json' ? 'json' : 'text';
  debug = !!opts.debug;
  file = undefined;
  if (!opts.file) return;
  // as runc: a log file that cannot be opened (created if missing) is an error
  try {
    closeSync(openSync(opts.file, 'a', 0o644));
  } catch (e) {
    throw new LxrError(`--log: cannot open "${opts.file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  file = opts.file;
}

function emit(level: Level, msg: string): void {
  if (level === 'debug' && !debug) return;
  const time = new Date().toISOString();
  const line = format === 'json' ? JSON.stringify({ level, msg, time }) + '\n' : `time="${time}" level=${level} msg="${msg.replace(/"/g, '\\"')}"\n`;
  if (file) {
    try {
      appendFileSync(file, line);
      return;
    } catch {
      /* fall back to stderr */
    }
  }
  if (level !== 'error') process.stderr.write(line);
}

export const log = {
  debug: (m: string) => emit('debug', m),
  info: (m: string) => emit('info', m),
  warn: (m: string) => emit('warning', m),
  error: (m: string) => emit('error', m),
};
