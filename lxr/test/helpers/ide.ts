// The code-server install the --ide tests share: the one in LXR_IDE_DIR (default
// /var/lib/lxr/ide, lxr's own), made by the first test that needs it. ensureCodeServer's lock
// makes concurrent test files wait for one install instead of each making its own.
import { DEFAULT_IDE_DIR, checkBuildTools, ensureCodeServer, findCodeServer, type IdeInstall } from '../../ide/index.js';

export const IDE_DIR = process.env.LXR_IDE_DIR || DEFAULT_IDE_DIR;

/** Why the install cannot be had here (a reason to skip), or false. */
export function ideInstallSkipReason(): string | false {
  if (process.env.LXR_IDE_TEST === '0') return 'LXR_IDE_TEST=0';
  if (!findCodeServer(IDE_DIR)) {
    const missing = checkBuildTools();
    if (missing.length) return `code-server is not installed in ${IDE_DIR} and cannot be: ${missing[0]}`;
  }
  return false;
}

/** The install, made first when missing (minutes, from the npm registry), its steps as test comments. */
export function ideInstall(t: { comment(message: string): void }): Promise<IdeInstall> {
  return ensureCodeServer(IDE_DIR, { onProgress: (p) => t.comment(`install ${p.step}: ${p.message}`) });
}
