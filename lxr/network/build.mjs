#!/usr/bin/env node
// Bundles lxr's CNI plugins into executables: dist/cni/lxr-bridge, dist/cni/lxr-ipam,
// dist/cni/lxr-portmap (or into the directory given as the first argument, which must be
// inside the package so that `koffi` and native/build resolve from it). Each executable is a
// two-line sh script running the bundle dist/cni/lib/<name>.mjs: an extensionless file would
// be loaded as ESM or CommonJS depending on loader hooks in NODE_OPTIONS, a .mjs file never.
// Called by scripts/build.mjs; importable (`buildCniPlugins(outDir?)`) and runnable.
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
export const CNI_PLUGINS = ['lxr-bridge', 'lxr-ipam', 'lxr-portmap'];

export async function buildCniPlugins(outDir = join(root, 'dist', 'cni')) {
  const { build } = await import('esbuild');
  mkdirSync(join(outDir, 'lib'), { recursive: true });
  await Promise.all(
    CNI_PLUGINS.map(async (name) => {
      const out = join(outDir, 'lib', `${name}.mjs`);
      // Built under a temporary name and renamed: plugins may be executing while we rebuild.
      const tmp = `${out}.tmp-${process.pid}`;
      await build({
        // the executable's main: the handlers of plugins/<name>.ts behind the CNI protocol
        stdin: {
          contents: `import { pluginMain } from './cni/skel.ts';\nimport { plugin } from './plugins/${name.slice(4)}.ts';\nawait pluginMain(plugin);\n`,
          resolveDir: here,
          sourcefile: `${name}-main.ts`,
          loader: 'ts',
        },
        outfile: tmp,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        external: ['koffi'],
        legalComments: 'none',
        logLevel: 'warning',
        banner: {
          js: "import { createRequire as __lxrCreateRequire } from 'node:module'; const require = __lxrCreateRequire(import.meta.url);",
        },
      });
      renameSync(tmp, out);
      const exe = join(outDir, name);
      // (readlink only for a symlink: two fewer processes per plugin call otherwise)
      const script = `#!/bin/sh\n# CNI plugin ${name} (lxr): runs the bundle next to it\np=$0; [ -L "$p" ] && p=$(readlink -f "$p")\nexec node "\${p%/*}/lib/${name}.mjs" "$@"\n`;
      writeFileSync(`${exe}.tmp-${process.pid}`, script);
      chmodSync(`${exe}.tmp-${process.pid}`, 0o755);
      renameSync(`${exe}.tmp-${process.pid}`, exe);
    }),
  );
  return outDir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildCniPlugins(process.argv[2]);
}
