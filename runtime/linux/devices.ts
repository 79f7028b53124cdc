// linux.devices and the default devices (config-linux.md "Devices", "Default Devices").
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import type { Device } from '../../oci-spec/types.js';
import { Op, type Plan } from '../../native/plan.js';
import { LxrError } from '../../common/errors.js';
import { MS } from './mounts.js';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

export const DEFAULT_DEVICES: Device[] = [
  { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/zero', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/full', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/random', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/urandom', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/tty', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

const DEV_SYMLINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

/**
 * Add the steps that create devices inside the rootfs. With `bindDevices` (in a user
 * namespace, where mknod is not allowed) the host's node is bind-mounted instead.
 */
export function planDevices(
  plan: Plan,
  devices: Device[] | undefined,
  opts: { defaults: boolean; bindDevices: boolean; rootReg: number },
): void {
  const list: { dev: Device; where: string }[] = [];
  const byPath = new Map<string, number>();
  if (opts.defaults) DEFAULT_DEVICES.forEach((d) => list.push({ dev: d, where: `default device ${d.path}` }));
  (devices ?? []).forEach((d, i) => {
    const where = `linux.devices[${i}]`;
    if (!d.path.startsWith('/')) throw new LxrError(`${where}.path: "${d.path}" must be an absolute path`);
    // cleaned as runc does (filepath.Clean): "/mnt/" and "/dev/./x" are "/mnt" and "/dev/x"
    const path = posix.normalize(d.path).replace(/(.)\/+$/, '$1');
    if (path === '/') throw new LxrError(`${where}.path: "${d.path}" is not a file`);
    if (path !== d.path) d = { ...d, path };
    if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new LxrError(`${where}: a "${d.type}" device needs major and minor numbers`);
    }
    list.push({ dev: d, where });
  });
  // a configured device replaces a default one at the same path
  list.forEach((e, i) => byPath.set(e.dev.path, i));
  list.forEach((e, i) => {
    if (byPath.get(e.dev.path) !== i) return;
    const d = e.dev;
    const what = `create device "${d.path}" (${e.where})`;
    if (opts.bindDevices) {
      try {
        statSync(d.path);
      } catch {
        throw new LxrError(`${e.where}: cannot bind-mount "${d.path}" from the host in a user namespace: it does not exist there`);
      }
      plan.add(Op.MOUNT, what, plan.str(d.path), plan.str(d.path), null, MS.BIND, null, 2, opts.rootReg);
      return;
    }
    const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
    const mode = kind | ((d.fileMode ?? 0o666) & 0o7777);
    const dev = d.type === 'p' ? 0n : makedev(d.major!, d.minor!);
    plan.add(Op.MKNOD, what, plan.str(d.path), mode, dev, d.uid ?? 0, d.gid ?? 0, opts.rootReg);
  });
  if (opts.defaults) {
    for (const [target, link] of DEV_SYMLINKS) {
      plan.add(Op.SYMLINK, `symlink "${link}" -> "${target}"`, plan.str(target), plan.str(link), opts.rootReg);
    }
  }
}
