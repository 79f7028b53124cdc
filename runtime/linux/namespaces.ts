// linux.namespaces (config-linux.md "Namespaces"): which to create, which to join by path.
import { openSync, closeSync, constants, accessSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { IdMapping, Namespace, NamespaceType, Spec } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { SUBID_FILE, subIdRanges, userName, type IdKind } from '../../common/subid.js';

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

// ---- user namespaces: linux.uidMappings / linux.gidMappings (config-linux.md "User namespace mappings") ----

/** How the runtime writes a new user namespace's maps, decided before anything is made. */
export interface UsernsPlan {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** newuidmap's path when the uid map needs it (rootless with more than the caller's own uid) */
  uidTool?: string;
  /** newgidmap's path when the gid map needs it */
  gidTool?: string;
  /** write "deny" to /proc/PID/setgroups before gid_map (rootless, the caller's own gid only) */
  denySetgroups: boolean;
}

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

/** Find a setuid helper (newuidmap, newgidmap) in PATH or the usual places. */
export function findTool(name: string): string | undefined {
  // PATH, as runc looks them up; the usual places only when there is no PATH at all
  const path = process.env.PATH;
  const dirs = path === undefined ? ['/usr/bin', '/bin', '/usr/sbin', '/sbin'] : path.split(':').filter((d) => d.startsWith('/'));
  for (const d of dirs) {
    const p = `${d.replace(/\/+$/, '')}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
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

function mapText(maps: IdMapping[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function writeProc(pid: number, file: string, text: string, where: string): void {
  try {
    writeFileSync(`/proc/${pid}/${file}`, text);
  } catch (e) {
    throw new LxrError(`${where}: writing /proc/${pid}/${file} failed: ${(e as NodeJS.ErrnoException).code}`);
  }
}

function runTool(tool: string, pid: number, maps: IdMapping[], where: string): void {
  const args = [String(pid), ...maps.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; status?: number | null; code?: string };
    const why = err.stderr?.toString().trim().split('\n').pop() || (err.code ?? `exit status ${err.status}`);
    throw new LxrError(`${where}: ${tool} ${args.join(' ')} failed: ${why}`);
  }
}

/** Write the maps of the user namespace of `pid` (the init waiting at Sync.USERNS). */
export function writeIdMaps(pid: number, p: UsernsPlan): void {
  if (p.uidTool) runTool(p.uidTool, pid, p.uidMappings, 'linux.uidMappings');
  else writeProc(pid, 'uid_map', mapText(p.uidMappings), 'linux.uidMappings');
  if (p.denySetgroups) writeProc(pid, 'setgroups', 'deny', 'linux.gidMappings');
  if (p.gidTool) runTool(p.gidTool, pid, p.gidMappings, 'linux.gidMappings');
  else writeProc(pid, 'gid_map', mapText(p.gidMappings), 'linux.gidMappings');
}
