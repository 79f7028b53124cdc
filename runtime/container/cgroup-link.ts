// Where the container lifecycle meets the cgroup library (runtime/cgroups/).
import type { ContainerRecord } from './state.js';
import type { Device, DeviceCgroup, Resources } from '../../oci-spec/types.js';
import { createCgroup, destroyCgroup, resolveCgroupPaths, cgroupPids, cgroupFrozen, type CgroupPaths } from '../cgroups/manager/index.js';
import { log } from '../../common/log.js';

export interface CgroupDriver {
  paths: CgroupPaths | undefined;
  create(pid: number): void;
  destroy(): void;
}

/** The cgroup paths a new container will get (validated: a bad cgroupsPath fails here, before anything is made). */
export function planCgroupPaths(rec: ContainerRecord, o: { id: string; systemdCgroup?: boolean }): CgroupPaths {
  return resolveCgroupPaths({ id: o.id, cgroupsPath: rec.config.linux?.cgroupsPath, systemd: !!o.systemdCgroup });
}

export function cgroupDriver(rec: ContainerRecord, o: { id: string; systemdCgroup?: boolean }): CgroupDriver {
  let paths = rec.cgroup as CgroupPaths | undefined;
  return {
    get paths() {
      return paths;
    },
    create(pid: number) {
      const linux = rec.config.linux ?? {};
      paths ??= planCgroupPaths(rec, o);
      // A rootless container cannot load a device program (no CAP_SYS_ADMIN/CAP_BPF on the
      // host): it gets device rules only if it asked for them, as before.
      const resources = rec.rootless && !linux.resources?.devices ? linux.resources : withDefaultDevices(linux.resources, linux.devices);
      createCgroup(paths, resources, pid, { warn: (m) => log.warn(m) });
    },
    destroy() {
      if (paths) destroyCgroup(paths);
    },
  };
}

// What every container may use whatever its device rules say, after them (as runc does):
// mknod of any node, the default devices (config-linux.md "Default Devices"), ptys and tun.
const ALWAYS_ALLOWED: DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

/**
 * linux.resources with the device rules the container needs to work appended. Without
 * linux.resources.devices the container still gets a device cgroup: everything denied but
 * these (runc does the same: its rules start from "deny all" whatever the spec says), so a
 * config that forgets the rules does not let the container open every device on the host.
 */
export function withDefaultDevices(resources: Resources | undefined, devices: Device[] | undefined): Resources {
  // a node the config has a rule of its own for keeps that rule (docker's --device /dev/x:r)
  const ruled = (d: Device) => (resources?.devices ?? []).some((r) => r.allow && r.type === d.type && r.major === d.major && r.minor === d.minor);
  const fromDevices: DeviceCgroup[] = (devices ?? [])
    .filter((d) => (d.type === 'c' || d.type === 'b') && !ruled(d))
    .map((d) => ({ allow: true, type: d.type as 'c' | 'b', major: d.major!, minor: d.minor!, access: 'rwm' }));
  return { ...resources, devices: [...(resources?.devices ?? []), ...ALWAYS_ALLOWED, ...fromDevices] };
}

export function recordCgroup(rec: ContainerRecord): CgroupPaths | undefined {
  return rec.cgroup as CgroupPaths | undefined;
}

/** The container's processes according to its cgroup, or undefined without one. */
export function cgroupMembers(rec: ContainerRecord): number[] | undefined {
  return readCgroup(rec, cgroupPids, undefined);
}

/** Is the container frozen (`pause`)? */
export function isPaused(rec: ContainerRecord): boolean {
  return readCgroup(rec, cgroupFrozen, false);
}

/** `read` of the container's cgroup, or `otherwise` when it has none or it cannot be read. */
function readCgroup<T, U>(rec: ContainerRecord, read: (paths: CgroupPaths) => T, otherwise: U): T | U {
  const paths = recordCgroup(rec);
  if (!paths) return otherwise;
  try {
    return read(paths);
  } catch {
    return otherwise;
  }
}
