// linux.namespaces (config-linux.md "Namespaces"): which to create, which to join by path.
import { openSync, closeSync, constants } from 'node:fs';
import type { Namespace, NamespaceType } from '../spec/types.js';
import { LxrError } from '../errors.js';

export const CLONE = {
  NEWTIME: 0x80, NEWNS: 0x20000, NEWCGROUP: 0x2000000, NEWUTS: 0x4000000, NEWIPC: 0x8000000,
  NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000,
} as const;

export const NS_FLAG: Record<NamespaceType, number> = {
  pid: CLONE.NEWPID, network: CLONE.NEWNET, mount: CLONE.NEWNS, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS,
  user: CLONE.NEWUSER, cgroup: CLONE.NEWCGROUP, time: CLONE.NEWTIME,
};

/** The names under /proc/PID/ns/. */
export const NS_PROC_NAME: Record<NamespaceType, string> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

// setns order: the user namespace first, so that the others are joined with its rights.
const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'mount', 'cgroup', 'time'];

export interface NamespacePlan {
  /** namespaces to create */
  create: Set<NamespaceType>;
  /** namespaces to join: open O_RDONLY fds (close-on-exec) in join order */
  join: { type: NamespaceType; fd: number; path: string; where: string }[];
}

export function planNamespaces(namespaces: Namespace[] | undefined): NamespacePlan {
  const create = new Set<NamespaceType>();
  const join: NamespacePlan['join'] = [];
  const seen = new Set<string>();
  try {
    (namespaces ?? []).forEach((ns, i) => {
      const where = `linux.namespaces[${i}]`;
      if (!(ns.type in NS_FLAG)) throw new LxrError(`${where}.type: unknown namespace type "${ns.type}"`);
      if (seen.has(ns.type)) throw new LxrError(`${where}.type: namespace "${ns.type}" is listed twice`);
      seen.add(ns.type);
      if (!ns.path) {
        create.add(ns.type);
        return;
      }
      let fd: number;
      try {
        fd = openSync(ns.path, constants.O_RDONLY);
      } catch (e) {
        throw new LxrError(`${where}.path: cannot open ${ns.type} namespace "${ns.path}": ${(e as NodeJS.ErrnoException).code}`);
      }
      join.push({ type: ns.type, fd, path: ns.path, where });
    });
  } catch (e) {
    for (const j of join) closeQuietly(j.fd);
    throw e;
  }
  join.sort((a, b) => JOIN_ORDER.indexOf(a.type) - JOIN_ORDER.indexOf(b.type));
  return { create, join };
}

export function closeNamespaceFds(p: NamespacePlan): void {
  for (const j of p.join) closeQuietly(j.fd);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
