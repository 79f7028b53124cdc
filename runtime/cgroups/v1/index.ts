// The cgroup v1 (and hybrid) manager: one directory per mounted hierarchy, plus the
// container's directory in the name=systemd hierarchy and, in hybrid mode, in the
// controller-less cgroup2 hierarchy (runc 1.1 joins both too, so tools find the container).
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { readOptional, sleepSync, writeCgroupFile } from '../fs.js';
import type { CgroupPaths } from '../paths.js';
import { emptyStats, type Stats } from '../stats.js';
import { mkdirTracked, pidsInTree, removeCreated, signalPids } from '../tree.js';
import { blkio } from './blkio.js';
import type { SetContext, V1Controller } from './controller.js';
import { cpu } from './cpu.js';
import { cpuacct } from './cpuacct.js';
import { cpuset, inheritCpuset } from './cpuset.js';
import { devices } from './devices.js';
import { freezer, setFrozen } from './freezer.js';
import { hugetlb } from './hugetlb.js';
import { memory, oomKills } from './memory.js';
import { netCls } from './net_cls.js';
import { netPrio } from './net_prio.js';
import { pids } from './pids.js';
import { rdma } from './rdma.js';

// Order matters only for cpuset (set before anything moves in) and devices (early, for safety).
export const V1_CONTROLLERS: V1Controller[] = [cpuset, devices, memory, cpu, cpuacct, pids, blkio, hugetlb, netCls, netPrio, rdma, freezer];

function uniqueDirs(paths: CgroupPaths): string[] {
  return [...new Set(Object.values(paths.dirs))];
}

/** A field for an unmounted controller is an error, never a silent success. */
function checkMounted(paths: CgroupPaths, r: Resources | undefined): void {
  if (!r) return;
  for (const c of V1_CONTROLLERS) {
    if (paths.dirs[c.name]) continue;
    const field = c.needed(r);
    if (field) throw new CgroupError(`${field}: the ${c.name} cgroup controller is not mounted on this host`);
  }
}

function apply(paths: CgroupPaths, r: Resources, ctx: SetContext): void {
  for (const c of V1_CONTROLLERS) {
    const dir = paths.dirs[c.name];
    if (dir && c.set) c.set(dir, r, ctx);
  }
}

export function createV1(paths: CgroupPaths, r: Resources | undefined, pid: number, warn: (m: string) => void): void {
  checkMounted(paths, r);
  const made: string[] = [];
  try {
    for (const dir of uniqueDirs(paths)) made.push(...mkdirTracked(dir));
    const cpusetDir = paths.dirs.cpuset;
    if (cpusetDir) {
      for (const d of made.filter((m) => cpusetDir === m || cpusetDir.startsWith(`${m}/`))) inheritCpuset(d);
      inheritCpuset(cpusetDir);
    }
    if (r) apply(paths, r, { creating: true, warn });
    for (const dir of uniqueDirs(paths)) writeCgroupFile(dir, 'cgroup.procs', String(pid), `moving process ${pid} into cgroup`);
  } catch (err) {
    removeCreated(made);
    throw err;
  }
}

export function updateV1(paths: CgroupPaths, r: Resources, warn: (m: string) => void): void {
  checkMounted(paths, r);
  apply(paths, r, { creating: false, warn });
}

function freezerDir(paths: CgroupPaths): string {
  const dir = paths.dirs.freezer;
  if (!dir) throw new CgroupError(`the freezer cgroup controller is not mounted on this host, so ${paths.path} cannot be paused`);
  return dir;
}

export function freezeV1(paths: CgroupPaths, frozen: boolean): Promise<void> {
  return setFrozen(freezerDir(paths), frozen);
}

/** The hierarchy whose tree lists the container's processes; runc uses devices, any will do. */
export function pidsDirV1(paths: CgroupPaths): string {
  for (const key of ['pids', 'freezer', 'devices', 'memory', 'cpu', 'name=systemd', 'unified']) {
    if (paths.dirs[key]) return paths.dirs[key]!;
  }
  const any = Object.values(paths.dirs)[0];
  if (!any) throw new CgroupError(`cgroup ${paths.path} has no directory in any hierarchy`);
  return any;
}

/**
 * Signal every process. With a freezer, freeze first so nothing forks past the list
 * (runc's signalAllProcesses does the same), then thaw so the signals are delivered.
 */
export function killV1(paths: CgroupPaths, signal: number): void {
  const fdir = paths.dirs.freezer;
  const list = (): number[] => pidsInTree(pidsDirV1(paths));
  if (!fdir || readOptional(fdir, 'freezer.state') === undefined) {
    signalPids(list(), signal);
    return;
  }
  const wasFrozen = readOptional(fdir, 'freezer.state') === 'FROZEN';
  writeCgroupFile(fdir, 'freezer.state', 'FROZEN', `kill ${paths.path}`);
  for (let i = 0; i < 200 && readOptional(fdir, 'freezer.state') !== 'FROZEN'; i++) sleepSync(2);
  try {
    signalPids(list(), signal);
  } finally {
    // SIGKILL thaws even a paused container, or the kill would wait for a resume.
    if (!wasFrozen || signal === 9) writeCgroupFile(fdir, 'freezer.state', 'THAWED', `kill ${paths.path}`);
  }
}

export function statsV1(paths: CgroupPaths): Stats {
  const s = emptyStats();
  for (const c of V1_CONTROLLERS) {
    const dir = paths.dirs[c.name];
    if (dir && c.stats && readOptional(dir, 'cgroup.procs') !== undefined) c.stats(dir, s);
  }
  return s;
}

export function oomEventsV1(paths: CgroupPaths): number {
  const dir = paths.dirs.memory;
  return dir ? oomKills(dir) : 0;
}
