// Small system helpers for the network code: running commands (iptables), atomic writes.
// File locks are native/lock.ts's, as everywhere in lxr.
// Links, addresses and routes go through netlink (netlink.ts, link.ts), not `ip`.
// Everything here is synchronous on purpose: the CNI plugins are short-lived processes that
// do one operation, and the library calls them through the plugins.
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync, ftruncateSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { LxrError } from '../../common/errors.js';

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run a command; never throws for a non-zero exit (see `must`). */
export function run(cmd: string, args: string[], input?: string): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LxrError(`${cmd} is not installed (apt-get install -y ${packageOf(cmd)})`);
    throw new LxrError(`running ${cmd}: ${r.error.message}`);
  }
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function packageOf(cmd: string): string {
  if (cmd === 'ip') return 'iproute2';
  if (cmd.startsWith('iptables')) return 'iptables';
  if (cmd === 'nsenter') return 'util-linux';
  return cmd;
}

/** Run a command and throw a one-line error naming it when it fails. */
export function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) {
    const why = r.stderr.trim().split('\n').filter(Boolean).pop() ?? `exit status ${r.status}`;
    throw new LxrError(`${cmd} ${args.join(' ')}: ${why}`);
  }
  return r.stdout;
}

/**
 * Rewrite a file in place (truncate + write + fsync). Used for files that are bind-mounted
 * into containers: a rename would leave the bind mount on the old inode.
 */
export function rewriteInPlace(path: string, data: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, mode);
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, data, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

