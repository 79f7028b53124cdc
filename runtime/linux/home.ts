// HOME for a process whose env has none, as runc sets it: the home directory of the
// process's uid in the container's /etc/passwd, "/" when the uid is not there (or there
// is no /etc/passwd). For create and for exec.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Mount, Process } from '../../oci-spec/types.js';
import { readFileInRoot } from './read-in-root.js';
import { log } from '../../common/log.js';

/** The home directory of `uid` in a passwd file's text, or undefined. */
export function homeOf(passwd: string | null, uid: number): string | undefined {
  for (const line of (passwd ?? '').split('\n')) {
    if (line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    if (f[2] !== String(uid)) continue;
    return f[5] || undefined;
  }
  return undefined;
}

/**
 * The container's /etc/passwd: a bind mount of the config on /etc/passwd (a host file the
 * config's author chose), else the file in the root (`root`: the rootfs, or
 * /proc/PID/root of a running container), resolved inside it.
 */
function passwdText(root: string, mounts: Mount[] | undefined, bundle: string | undefined): string | null {
  const bind = [...(mounts ?? [])].reverse().find((m) => m.destination.replace(/\/+$/, '') === '/etc/passwd' && m.source
    && (m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')));
  try {
    if (bind && bundle) {
      const src = resolve(bundle, bind.source!);
      if (!statSync(src).isFile()) return null;
      return readFileSync(src, 'utf8');
    }
    return readFileInRoot(root, '/etc/passwd');
  } catch (e) {
    log.debug(`HOME: cannot read the container's /etc/passwd: ${(e as Error).message}`);
    return null;
  }
}

/** `proc.env`, with HOME added when it has none. */
export function envWithHome(proc: Process, root: string, opts: { mounts?: Mount[]; bundle?: string } = {}): string[] {
  const env = proc.env ?? [];
  if (env.some((e) => e.startsWith('HOME='))) return env;
  const home = homeOf(passwdText(root, opts.mounts, opts.bundle), proc.user.uid) ?? '/';
  return [...env, `HOME=${home}`];
}
