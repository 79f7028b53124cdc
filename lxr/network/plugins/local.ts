// lxr's own CNI plugins, run in the calling process. The lxr library executes a network's
// plugin chain through the CNI protocol (cni/invoke.ts); when the plugin a CNI path resolves
// to is one of the executables in lxr's own plugin directory, the same handlers run here
// instead, with the same request and reply, and without a Node start-up per plugin.
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalPlugins, Plugin } from '../cni/skel.js';
import { plugin as bridge } from './bridge.js';
import { plugin as ipam } from './ipam.js';
import { plugin as portmap } from './portmap.js';

export const LXR_PLUGINS: Record<string, Plugin> = { 'lxr-bridge': bridge, 'lxr-ipam': ipam, 'lxr-portmap': portmap };

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** In-process plugins for executables found in `ownDir` (lxr's dist/cni). */
export function localPlugins(ownDir: string | undefined): LocalPlugins {
  if (!ownDir) return () => undefined;
  const own = real(ownDir);
  return (type, path) => {
    const p = LXR_PLUGINS[type];
    if (!p) return undefined;
    // the first directory of the CNI path that has `type` decides, as for an executable
    const dir = path.find((d) => existsSync(join(d, type)));
    return dir !== undefined && real(dir) === own ? p : undefined;
  };
}
