// cpuset controller (cgroup-v1/cpusets.rst). A new cpuset cgroup starts with empty
// cpus/mems and refuses tasks until both are set, so each level lxr creates inherits
// its parent's values first (runc does the same).
import { dirname } from 'node:path';
import type { Resources } from '../../../oci-spec/types.js';
import { readOptional, readUint, writeCgroupFile } from '../fs.js';
import { parseCpuList, setIfNonZero, type Stats } from '../stats.js';
import { firstSet, type V1Controller } from './controller.js';
import { writeCpusetFile } from '../values.js';

const F = 'linux.resources.cpu';

/** Fill empty cpuset.cpus/mems of a freshly made dir from its parent. */
export function inheritCpuset(dir: string): void {
  const parent = dirname(dir);
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if ((readOptional(dir, file) ?? '') !== '') continue;
    const value = readOptional(parent, file) ?? '';
    if (value !== '') writeCgroupFile(dir, file, value, `cgroup ${dir}`);
  }
}

/** Write a cpuset file; a refusal says which CPUs/nodes the parent offers. */
export function setCpuset(dir: string, r: Resources): void {
  if (r.cpu?.cpus) writeCpusetFile(dir, 'cpuset.cpus', r.cpu.cpus, `${F}.cpus`);
  if (r.cpu?.mems) writeCpusetFile(dir, 'cpuset.mems', r.cpu.mems, `${F}.mems`);
}

export function cpusetStats(dir: string, s: Stats): void {
  const c = s.cpuset;
  setIfNonZero(c, 'cpus', parseCpuList(readOptional(dir, 'cpuset.cpus')));
  setIfNonZero(c, 'mems', parseCpuList(readOptional(dir, 'cpuset.mems')));
  c.cpu_exclusive = readUint(dir, 'cpuset.cpu_exclusive');
  c.mem_hardwall = readUint(dir, 'cpuset.mem_hardwall');
  c.mem_exclusive = readUint(dir, 'cpuset.mem_exclusive');
  c.memory_migrate = readUint(dir, 'cpuset.memory_migrate');
  c.memory_spread_page = readUint(dir, 'cpuset.memory_spread_page');
  c.memory_spread_slab = readUint(dir, 'cpuset.memory_spread_slab');
  c.memory_pressure = readUint(dir, 'cpuset.memory_pressure');
  c.sched_load_balance = readUint(dir, 'cpuset.sched_load_balance');
  c.sched_relax_domain_level = Number(readOptional(dir, 'cpuset.sched_relax_domain_level') ?? 0);
}

export const cpuset: V1Controller = {
  name: 'cpuset',
  needed: (r) => firstSet(F, r.cpu, ['cpus', 'mems']),
  set: setCpuset,
  stats: cpusetStats,
};
