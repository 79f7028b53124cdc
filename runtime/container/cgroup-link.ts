// Where the container lifecycle meets the cgroup library (runtime/cgroups/).
import type { ContainerRecord } from './state.js';

export interface CgroupDriver {
  paths: unknown;
  create(pid: number): void;
  destroy(): void;
}

export function cgroupDriver(_rec: ContainerRecord, _o: { id: string; systemdCgroup?: boolean }): CgroupDriver {
  return { paths: undefined, create() {}, destroy() {} };
}
