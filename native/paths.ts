// Where this package's own files are: bin/, and the programs and library that `npm install`
// builds into native/build/. Found from the sources (native/paths.ts) and from the bundles
// (dist/*.cjs) alike: the package root is the nearest ancestor holding bin/lxr.js.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here, i = 0; i < 5; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'lxr.js'))) return (root = dir);
  }
  throw new Error(`cannot find the lxr package (bin/lxr.js) above ${here}`);
}

/** native/build/NAME: liblxr.so, lxr-init, lxr-monitor, lxr-pid1 (built by `npm install`). */
export function nativeBuildPath(name: string): string {
  return join(packageRoot(), 'native', 'build', name);
}

/** bin/lxr.js: the entry script that lxr's helpers (the monitor, health checks, rootless unpacks) run. */
export function lxrBin(): string {
  return join(packageRoot(), 'bin', 'lxr.js');
}
