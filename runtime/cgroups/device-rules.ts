// linux.resources.devices reduced with cgroup v1's semantics, so that a config means the same
// on both versions (runc does this too, with its "devices emulator"): a type "a" rule resets
// the default (allow or deny everything) and drops all exceptions; any other rule either adds
// an exception to the default or, when it agrees with the default, takes access away from an
// exception with the same type/major/minor. v1 writes the result to devices.allow/deny, v2
// compiles it into a BPF program.
import type { DeviceCgroup } from '../../oci-spec/types.js';

export interface DeviceException {
  type: 'b' | 'c';
  major: number; // -1 = any
  minor: number; // -1 = any
  access: number; // BPF_DEVCG_ACC_* bits
}

export interface ReducedDeviceRules {
  defaultAllow: boolean;
  exceptions: DeviceException[];
}

// include/uapi/linux/bpf.h
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;

export function accessBits(access: string | undefined): number {
  const a = access || 'rwm';
  return (a.includes('r') ? BPF_DEVCG_ACC_READ : 0) | (a.includes('w') ? BPF_DEVCG_ACC_WRITE : 0) | (a.includes('m') ? BPF_DEVCG_ACC_MKNOD : 0);
}

export function reduceDeviceRules(rules: DeviceCgroup[]): ReducedDeviceRules {
  let defaultAllow = false;
  let exceptions: DeviceException[] = [];
  for (const r of rules) {
    const type = r.type ?? 'a';
    if (type === 'a') {
      defaultAllow = r.allow;
      exceptions = [];
      continue;
    }
    const major = r.major ?? -1;
    const minor = r.minor ?? -1;
    const access = accessBits(r.access);
    const same = exceptions.find((e) => e.type === type && e.major === major && e.minor === minor);
    if (r.allow === defaultAllow) {
      if (same) {
        same.access &= ~access;
        if (same.access === 0) exceptions = exceptions.filter((e) => e !== same);
      }
    } else if (same) {
      same.access |= access;
    } else {
      exceptions.push({ type, major, minor, access });
    }
  }
  return { defaultAllow, exceptions };
}
