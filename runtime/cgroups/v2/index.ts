// The cgroup v2 manager: one directory in the unified hierarchy. Controllers are enabled
// in every ancestor's cgroup.subtree_control on the way down (runc 1.1 enables all the
// available ones, so stats work too), then the resources are written and the process
// moved in.
import { posix } from 'node:path';
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readKeyValues, readOptional, sleepSync, writeCgroupFile } from '../fs.js';
import { readMounts } from '../layout.js';
import type { CgroupPaths } from '../paths.js';
import { emptyStats, parseCpuList, setIfNonZero, type Stats } from '../stats.js';
import { mkdirTracked, pidsInTree, removeCreated, signalPids } from '../tree.js';
import { attachDeviceProgram } from './bpf.js';
import { cpuStatsV2, setCpusetV2, setCpuV2 } from './cpu.js';
import { deviceFilterProgram } from './devices.js';
import { setFrozenV2 } from './freezer.js';
import { hugetlbStatsV2, setHugetlbV2 } from './hugetlb.js';
import { ioStatsV2, setIoV2 } from './io.js';
import { memoryStatsV2, oomKillsV2, setMemoryV2 } from './memory.js';
import { pidsStatsV2, setPidsV2 } from './pids.js';
import { setUnified } from './unified.js';
import { rdmaLines } from '../values.js';
import { V2_CONTROLLERS } from './controllers.js';

/** [spec field, controller] for every field of r that needs a v2 controller. */
export function neededControllers(r: Resources | undefined): [string, string][] {
  if (!r) return [];
  const out: [string, string][] = [];
  const F = 'linux.resources';
  const m = r.memory;
  if (m && (m.limit || m.reservation || m.swap)) out.push([`${F}.memory`, 'memory']);
  const c = r.cpu;
  if (c && (c.shares || c.quota || c.period || c.burst !== undefined || c.idle !== undefined)) out.push([`${F}.cpu`, 'cpu']);
  if (c && (c.cpus || c.mems)) out.push([`${F}.cpu.${c.cpus ? 'cpus' : 'mems'}`, 'cpuset']);
  if (r.pids) out.push([`${F}.pids.limit`, 'pids']);
  const b = r.blockIO;
  if (b && (b.weight || b.weightDevice?.length || b.throttleReadBpsDevice?.length || b.throttleWriteBpsDevice?.length ||
    b.throttleReadIOPSDevice?.length || b.throttleWriteIOPSDevice?.length)) out.push([`${F}.blockIO`, 'io']);
  if (r.hugepageLimits?.length) out.push([`${F}.hugepageLimits`, 'hugetlb']);
  const rdma = rdmaLines(r)[0];
  if (rdma) out.push([rdma[0], 'rdma']);
  for (const key of Object.keys(r.unified ?? {})) {
    const ctrl = key.split('.')[0]!;
    // An unknown prefix is not a controller: setUnified reports the key as unknown.
    if (V2_CONTROLLERS.includes(ctrl)) out.push([`${F}.unified[${JSON.stringify(key)}]`, ctrl]);
  }
  return out;
}

function unifiedDir(paths: CgroupPaths): string {
  const dir = paths.dirs.unified;
  if (!dir) throw new CgroupError(`cgroup ${paths.path} has no directory in the cgroup v2 hierarchy`);
  return dir;
}

/** Turn on in parent's cgroup.subtree_control every controller it has; one by one if the batch fails. */
function enableControllers(parent: string): void {
  const available = (readOptional(parent, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
  const enabled = new Set((readOptional(parent, 'cgroup.subtree_control') ?? '').split(/\s+/));
  const missing = available.filter((c) => !enabled.has(c));
  if (missing.length === 0) return;
  try {
    writeCgroupFile(parent, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '), 'cgroup.subtree_control');
  } catch {
    for (const c of missing) {
      try {
        writeCgroupFile(parent, 'cgroup.subtree_control', `+${c}`, 'cgroup.subtree_control');
      } catch {
        // e.g. a threaded subtree or a parent with processes; checked per field below.
      }
    }
  }
}

function applyV2(dir: string, r: Resources, creating: boolean, warn: (m: string) => void): void {
  const have = new Set((readOptional(dir, 'cgroup.controllers') ?? '').split(/\s+/));
  for (const [field, ctrl] of neededControllers(r)) {
    if (!have.has(ctrl)) {
      throw new CgroupError(`${field}: the ${ctrl} controller is not available in ${dir} (cgroup.controllers: "${[...have].join(' ').trim()}")`);
    }
  }
  setPidsV2(dir, r);
  setMemoryV2(dir, r, creating, warn);
  setIoV2(dir, r);
  setCpuV2(dir, r);
  setCpusetV2(dir, r);
  setHugetlbV2(dir, r);
  if (r.devices) attachDeviceProgram(dir, deviceFilterProgram(r.devices));
  for (const [field, line] of rdmaLines(r)) writeCgroupFile(dir, 'rdma.max', line, field);
  // net_cls/net_prio exist only in v1; runc ignores them on v2 silently, lxr says so.
  if (r.network?.classID !== undefined || r.network?.priorities?.length) {
    warn('linux.resources.network is ignored: cgroup v2 has no net_cls/net_prio controllers');
  }
  if (r.memory?.useHierarchy === false) warn('linux.resources.memory.useHierarchy is ignored: cgroup v2 is always hierarchical');
  setUnified(dir, r);
}

export function createV2(paths: CgroupPaths, r: Resources | undefined, pid: number, warn: (m: string) => void): void {
  const dir = unifiedDir(paths);
  const mountPoint = readMounts().unified?.mountPoint ?? '/sys/fs/cgroup';
  const rel = posix.relative(mountPoint, dir);
  if (rel.startsWith('..') || rel === '') throw new CgroupError(`cgroup ${dir} is not inside the cgroup v2 mount ${mountPoint}`);
  const made: string[] = [];
  try {
    let current = mountPoint;
    for (const seg of rel.split('/')) {
      enableControllers(current);
      current = posix.join(current, seg);
      made.push(...mkdirTracked(current));
    }
    if (r) applyV2(dir, r, true, warn);
    writeCgroupFile(dir, 'cgroup.procs', String(pid), `moving process ${pid} into cgroup`);
  } catch (err) {
    removeCreated(made);
    throw err;
  }
}

export function updateV2(paths: CgroupPaths, r: Resources, warn: (m: string) => void): void {
  applyV2(unifiedDir(paths), r, false, warn);
}

export function freezeV2(paths: CgroupPaths, frozen: boolean): Promise<void> {
  return setFrozenV2(unifiedDir(paths), frozen);
}

/** SIGKILL via cgroup.kill (Linux 5.14+), which no fork can race; otherwise freeze, signal, thaw. */
export function killV2(paths: CgroupPaths, signal: number): void {
  const dir = unifiedDir(paths);
  if (signal === 9 && hasFile(dir, 'cgroup.kill')) {
    writeCgroupFile(dir, 'cgroup.kill', '1', `kill ${paths.path}`);
    return;
  }
  const canFreeze = hasFile(dir, 'cgroup.freeze');
  const wasFrozen = readKeyValues(dir, 'cgroup.events').frozen === 1;
  if (canFreeze && !wasFrozen) {
    writeCgroupFile(dir, 'cgroup.freeze', '1', `kill ${paths.path}`);
    for (let i = 0; i < 200 && readKeyValues(dir, 'cgroup.events').frozen !== 1; i++) sleepSync(2);
  }
  try {
    signalPids(pidsInTree(dir), signal);
  } finally {
    if (canFreeze && (!wasFrozen || signal === 9)) writeCgroupFile(dir, 'cgroup.freeze', '0', `kill ${paths.path}`);
  }
}

export function statsV2(paths: CgroupPaths): Stats {
  const dir = unifiedDir(paths);
  const s = emptyStats();
  if (readOptional(dir, 'cgroup.procs') === undefined) return s;
  cpuStatsV2(dir, s);
  memoryStatsV2(dir, s);
  pidsStatsV2(dir, s);
  ioStatsV2(dir, s);
  hugetlbStatsV2(dir, s);
  setIfNonZero(s.cpuset, 'cpus', parseCpuList(readOptional(dir, 'cpuset.cpus.effective')));
  setIfNonZero(s.cpuset, 'mems', parseCpuList(readOptional(dir, 'cpuset.mems.effective')));
  return s;
}

export function oomEventsV2(paths: CgroupPaths): number {
  return oomKillsV2(unifiedDir(paths));
}
