// devices controller (cgroup-v1/devices.rst). The rules apply in order on top of "deny
// everything", which is what runc's (older) writer did: write "a" to devices.deny, then
// each rule to devices.allow or devices.deny. During an update the container briefly sees
// all devices denied; runc 1.1 avoids that with a rules emulator, lxr does not (yet).
import type { DeviceCgroup, Resources } from '../../spec/types.js';
import { writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';

/** "c 1:5 rwm" as the kernel wants it; a type "a" rule is just "a". */
export function deviceRuleString(d: DeviceCgroup): string {
  const type = d.type ?? 'a';
  if (type === 'a') return 'a';
  const num = (n: number | undefined): string => (n === undefined || n === -1 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${d.access || 'rwm'}`;
}

export function setDevices(dir: string, r: Resources): void {
  if (!r.devices) return;
  writeCgroupFile(dir, 'devices.deny', 'a', 'linux.resources.devices (deny all first)');
  r.devices.forEach((d, i) => {
    writeCgroupFile(dir, d.allow ? 'devices.allow' : 'devices.deny', deviceRuleString(d), `linux.resources.devices[${i}]`);
  });
}

export const devices: V1Controller = {
  name: 'devices',
  needed: (r) => (r.devices ? 'linux.resources.devices' : undefined),
  set: setDevices,
};
