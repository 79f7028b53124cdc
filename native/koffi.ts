// The one way the project loads koffi. koffi's own entry point (index.js) loads node:https,
// node:crypto and node:zlib on the way (its build tools share the file), which costs ~15-30
// ms of every command's start; the native module it then picks holds all of koffi's API.
// So load that module directly when it is where koffi's package puts it and is the same
// version, and koffi's entry point otherwise (another platform, another layout).
import { createRequire } from 'node:module';

/** koffi's API, as much of it as the project uses. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Koffi = any;

/** process.arch -> the directory name under koffi/build/koffi/ (koffi's determine_arch). */
const ARCH: Record<string, string> = { x64: 'x64', arm64: 'arm64', ia32: 'ia32', riscv64: 'riscv64d', loong64: 'loong64', arm: 'armhf' };

let cached: Koffi | undefined;

export function loadKoffi(): Koffi {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const arch = ARCH[process.arch];
  if (process.platform === 'linux' && arch) {
    try {
      const mod = require(`koffi/build/koffi/linux_${arch}/koffi.node`);
      if (mod?.version === require('koffi/package.json').version && typeof mod.load === 'function') return (cached = mod);
    } catch {
      /* not there, or not loadable here: koffi's entry point will say why */
    }
  }
  return (cached = require('koffi'));
}
