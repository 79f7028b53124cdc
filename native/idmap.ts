// Writing a new user namespace's maps: /proc/PID/uid_map and gid_map directly, or through
// the setuid newuidmap/newgidmap for an ordinary user's /etc/subuid ranges. Shared by the
// runtime (linux.uidMappings) and by every rootless user namespace of lxr and lxr-image.
import { accessSync, constants, writeFileSync } from 'node:fs';
import { builtin } from '../common/lazy.js';
import type { IdMapping } from '../oci-spec/types.js';
import { LxrError } from '../common/errors.js';

export const CLONE = {
  NEWTIME: 0x80, NEWNS: 0x20000, NEWCGROUP: 0x2000000, NEWUTS: 0x4000000, NEWIPC: 0x8000000,
  NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000,
} as const;

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
    builtin<typeof import('node:child_process')>('node:child_process').execFileSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
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
