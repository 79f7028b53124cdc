// lxr's cgroup library: the one interface the runtime core calls, for cgroup v1, hybrid
// (v1 controllers + an empty cgroup2 hierarchy) and v2 hosts.
import type { Resources } from '../../../oci-spec/types.js';
import type { CgroupPaths } from '../paths.js';
import type { Stats } from '../stats.js';
import { readOptional } from '../fs.js';
import { pidsInTree, removeCgroupDir } from '../tree.js';
import { validateResources } from '../validate.js';
import { createV1, freezeV1, killV1, oomEventsV1, pidsDirV1, statsV1, updateV1 } from '../v1/index.js';
import { createV2, freezeV2, killV2, oomEventsV2, statsV2, updateV2 } from '../v2/index.js';

export { CgroupError } from '../errors.js';
export { detectLayout, type CgroupLayout } from '../layout.js';
export { resolveCgroupPaths, type CgroupPaths, type ResolveOptions } from '../paths.js';
export type { Stats } from '../stats.js';
export { validateResources } from '../validate.js';
export { deviceFilterProgram } from '../v2/devices.js';
export { reduceDeviceRules } from '../device-rules.js';
export { attachDeviceProgram, deviceProgramIds } from '../v2/bpf.js';
export { sharesToWeight, cpuMaxValue } from '../v2/cpu.js';
export { swapToV2 } from '../v2/memory.js';
export { blkioWeightToIoWeight } from '../v2/io.js';

export interface CgroupOptions {
  /** Non-fatal notices (fields that are ignored, as runc ignores them). Default: a line on stderr. */
  warn?: (message: string) => void;
}

const defaultWarn = (m: string): void => {
  process.stderr.write(`lxr-runtime: warning: ${m}\n`);
};

/**
 * Make the container's cgroup in every hierarchy, apply resources, then move pid in.
 * On any failure, removes what it made and throws a CgroupError naming the spec field.
 */
export function createCgroup(paths: CgroupPaths, resources: Resources | undefined, pid: number, opts: CgroupOptions = {}): void {
  validateResources(resources, paths.layout);
  const warn = opts.warn ?? defaultWarn;
  if (paths.layout === 'v2') createV2(paths, resources, pid, warn);
  else createV1(paths, resources, pid, warn);
}

/** `update`: write the given resources to an existing cgroup (fields left out are untouched). */
export function updateCgroup(paths: CgroupPaths, resources: Resources, opts: CgroupOptions = {}): void {
  validateResources(resources, paths.layout);
  const warn = opts.warn ?? defaultWarn;
  if (paths.layout === 'v2') updateV2(paths, resources, warn);
  else updateV1(paths, resources, warn);
}

/** rmdir the container's cgroup in every hierarchy (after its processes are gone); missing dirs are fine. */
export function destroyCgroup(paths: CgroupPaths): void {
  const dirs = [...new Set(Object.values(paths.dirs))];
  let first: unknown;
  for (const dir of dirs) {
    try {
      removeCgroupDir(dir);
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}

/** pause/resume: v1 freezer.state, v2 cgroup.freeze; resolves once the state is reached. */
export function freezeCgroup(paths: CgroupPaths, frozen: boolean): Promise<void> {
  return paths.layout === 'v2' ? freezeV2(paths, frozen) : freezeV1(paths, frozen);
}

/** Is the cgroup frozen (paused)? v1: freezer.state is not THAWED; v2: cgroup.freeze is 1. False when gone. */
export function cgroupFrozen(paths: CgroupPaths): boolean {
  if (paths.layout === 'v2') return !!paths.dirs.unified && readOptional(paths.dirs.unified, 'cgroup.freeze') === '1';
  const state = paths.dirs.freezer ? readOptional(paths.dirs.freezer, 'freezer.state') : undefined;
  return state !== undefined && state !== 'THAWED';
}

/** Every pid in the container's cgroup and its sub-cgroups. */
export function cgroupPids(paths: CgroupPaths): number[] {
  const dir = paths.layout === 'v2' ? paths.dirs.unified : pidsDirV1(paths);
  return dir ? pidsInTree(dir) : [];
}

/** Signal every process of the cgroup (v2 SIGKILL: cgroup.kill). */
export function killCgroup(paths: CgroupPaths, signal: number): void {
  if (paths.layout === 'v2') killV2(paths, signal);
  else killV1(paths, signal);
}

/** The "data" of `runc events --stats`. */
export function cgroupStats(paths: CgroupPaths): Stats {
  return paths.layout === 'v2' ? statsV2(paths) : statsV1(paths);
}

/** How many processes the OOM killer killed in the cgroup. */
export function cgroupOomEvents(paths: CgroupPaths): number {
  return paths.layout === 'v2' ? oomEventsV2(paths) : oomEventsV1(paths);
}
