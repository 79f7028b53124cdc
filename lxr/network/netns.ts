// Named network namespaces for containers, made with `ip netns` (so they live at
// /run/netns/NAME, which is also /var/run/netns/NAME on Debian). The front end puts
// { "type": "network", "path": <path> } into the container's config.json.
import { existsSync } from 'node:fs';
import { LxrError } from '../../runtime/errors.js';
import { run } from './sys.js';

export const NETNS_DIR = '/run/netns';

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(name)) throw new LxrError(`invalid network namespace name "${name}"`);
}

export function netnsPath(name: string): string {
  checkName(name);
  return `${NETNS_DIR}/${name}`;
}

/** Create the named netns with loopback up; returns its path. An existing one is an error. */
export function createNetns(name: string): string {
  const path = netnsPath(name);
  if (existsSync(path)) throw new LxrError(`network namespace ${path} already exists`);
  const r = run('ip', ['netns', 'add', name]);
  if (r.status !== 0) throw new LxrError(`creating network namespace ${path}: ${r.stderr.trim()}`);
  const lo = run('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
  if (lo.status !== 0) {
    run('ip', ['netns', 'del', name]);
    throw new LxrError(`bringing up loopback in ${path}: ${lo.stderr.trim()}`);
  }
  return path;
}

/** Remove the named netns (and with it any interfaces left in it). Missing is fine. */
export function removeNetns(name: string): void {
  const path = netnsPath(name);
  if (!existsSync(path)) return;
  const r = run('ip', ['netns', 'del', name]);
  if (r.status !== 0 && existsSync(path)) throw new LxrError(`removing network namespace ${path}: ${r.stderr.trim()}`);
}
