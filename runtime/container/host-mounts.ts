// A container without a mount namespace of its own makes its mounts in the runtime's
// (config-linux.md: it inherits it). Remove them again when the container goes.
import { readFileSync } from 'node:fs';
import type { Spec } from '../../oci-spec/types.js';
import { native } from '../../native/index.js';

const MNT_DETACH = 2;

function unescape(p: string): string {
  return p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function sharesHostMountNamespace(spec: Spec): boolean {
  return !(spec.linux?.namespaces ?? []).some((n) => n.type === 'mount');
}

/** Lazily unmount every mount at or below `dir`, deepest first. */
export function unmountUnder(dir: string): void {
  const prefix = dir.replace(/\/+$/, '');
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescape)
    .filter((p) => p.startsWith(prefix + '/'));
  for (const p of [...new Set(points)].sort((a, b) => b.length - a.length)) native().umount(p, MNT_DETACH);
}
