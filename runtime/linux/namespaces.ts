// linux.namespaces (config-linux.md "Namespaces"): which to create, which to join by path.
import { openSync, closeSync, constants } from 'node:fs';
import type { IdMapping, Namespace, NamespaceType, Spec } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { SUBID_FILE, subIdRanges, userName, type IdKind } from '../../common/subid.js';
import { CLONE, findTool, type UsernsPlan } from '../../native/idmap.js';

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

// ---- user namespaces: linux.uidMappings / linux.gidMappings (config-linux.md "User namespace mappings") ----

const TOOL: Record<IdKind, string> = { uid: 'newuidmap', gid: 'newgidmap' };

function range(start: number, size: number): string {
  return size === 1 ? String(start) : `${start}-${start + size - 1}`;
}

/** Check one mapping list: whole numbers, a size of at least 1, no overlaps on either side. */
export function checkIdMappings(maps: IdMapping[] | undefined, where: string): IdMapping[] {
  if (!maps?.length) throw new LxrError(`${where}: a new user namespace needs at least one mapping`);
  maps.forEach((m, i) => {
    for (const k of ['containerID', 'hostID', 'size'] as const) {
      const v = m[k];
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new LxrError(`${where}[${i}].${k}: ${JSON.stringify(v)} is not a valid id`);
    }
    if (m.size < 1) throw new LxrError(`${where}[${i}].size: must be at least 1`);
    for (let j = 0; j < i; j++) {
      const o = maps[j]!;
      if (m.containerID < o.containerID + o.size && o.containerID < m.containerID + m.size) {
        throw new LxrError(`${where}[${i}]: container IDs ${range(m.containerID, m.size)} overlap ${where}[${j}] (${range(o.containerID, o.size)})`);
      }
      if (m.hostID < o.hostID + o.size && o.hostID < m.hostID + m.size) {
        throw new LxrError(`${where}[${i}]: host IDs ${range(m.hostID, m.size)} overlap ${where}[${j}] (${range(o.hostID, o.size)})`);
      }
    }
  });
  return maps;
}

/** Is `id` a container id that `maps` maps? */
export function isMapped(maps: IdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * Decide how the maps of a new user namespace are written, and refuse configs that
 * cannot work, naming the field: bad or overlapping mappings, a process.user that is
 * not mapped, and (rootless) host ids that are not the caller's.
 */
export function planUserns(spec: Spec, opts: { rootless: boolean }): UsernsPlan {
  const linux = spec.linux ?? {};
  const uidMappings = checkIdMappings(linux.uidMappings, 'linux.uidMappings');
  const gidMappings = checkIdMappings(linux.gidMappings, 'linux.gidMappings');
  const user = spec.process?.user;
  if (user) {
    if (!isMapped(uidMappings, user.uid)) throw new LxrError(`process.user.uid: ${user.uid} is not mapped by linux.uidMappings, so the process cannot run as it`);
    if (!isMapped(gidMappings, user.gid)) throw new LxrError(`process.user.gid: ${user.gid} is not mapped by linux.gidMappings, so the process cannot run as it`);
    (user.additionalGids ?? []).forEach((g, i) => {
      if (!isMapped(gidMappings, g)) throw new LxrError(`process.user.additionalGids[${i}]: ${g} is not mapped by linux.gidMappings`);
    });
  }
  const plan: UsernsPlan = { uidMappings, gidMappings, denySetgroups: false };
  if (!opts.rootless) return plan;
  const uid = process.geteuid!();
  const gid = process.getegid!();
  const name = userName(uid);
  const decide = (kind: IdKind, maps: IdMapping[], own: number): string | undefined => {
    const where = `linux.${kind}Mappings`;
    // A single mapping of the caller's own id can be written without help.
    if (maps.length === 1 && maps[0]!.hostID === own && maps[0]!.size === 1) return undefined;
    const ranges = subIdRanges(kind, { name, id: kind === 'uid' ? uid : own });
    maps.forEach((m, i) => {
      if (m.hostID === own && m.size === 1) return;
      if (!ranges.length) {
        throw new LxrError(`${where}[${i}]: host ${kind}s ${range(m.hostID, m.size)} are not yours: ${SUBID_FILE[kind]} has no range for user "${name}" (only your own ${kind} ${own} can be mapped)`);
      }
      if (!ranges.some((r) => m.hostID >= r.start && m.hostID + m.size <= r.start + r.size)) {
        const have = ranges.map((r) => range(r.start, r.size)).join(', ');
        throw new LxrError(`${where}[${i}]: host ${kind}s ${range(m.hostID, m.size)} are outside the ranges of user "${name}" in ${SUBID_FILE[kind]} (${have})`);
      }
    });
    const tool = findTool(TOOL[kind]);
    if (!tool) throw new LxrError(`${where}: mapping more than your own ${kind} needs ${TOOL[kind]} (Debian package uidmap), which is not installed`);
    return tool;
  };
  const uidTool = decide('uid', uidMappings, uid);
  const gidTool = decide('gid', gidMappings, gid);
  if (uidTool) plan.uidTool = uidTool;
  if (gidTool) plan.gidTool = gidTool;
  else {
    plan.denySetgroups = true;
    if (user?.additionalGids?.length) {
      throw new LxrError('process.user.additionalGids: a rootless container that maps only your own gid cannot set supplementary groups (setgroups is denied); map /etc/subgid ranges in linux.gidMappings');
    }
  }
  return plan;
}

