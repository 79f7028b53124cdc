// devices controller (cgroup-v1/devices.rst). At create, the rules apply in order on top
// of "deny everything": write "a" to devices.deny, then each rule to devices.allow or
// devices.deny. At update, a running container must not see all devices vanish for a
// moment, so when both the old and the new rule sets are allow-lists lxr writes only the
// difference (the idea of runc 1.1's devices emulator); to allow-all it writes "allow a"
// and the denied exceptions; only a change from allow-all to an allow-list starts with
// "deny a", as at create.
import type { DeviceCgroup, Resources } from '../../../oci-spec/types.js';
import { readOptional, writeCgroupFile } from '../fs.js';
import { BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE, accessBits, reduceDeviceRules, type DeviceException } from '../device-rules.js';
import type { SetContext, V1Controller } from './controller.js';

/** "c 1:5 rwm" as the kernel wants it; a type "a" rule is just "a". */
export function deviceRuleString(d: DeviceCgroup): string {
  const type = d.type ?? 'a';
  if (type === 'a') return 'a';
  const num = (n: number | undefined): string => (n === undefined || n === -1 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${d.access || 'rwm'}`;
}

function accessString(bits: number): string {
  return (bits & BPF_DEVCG_ACC_READ ? 'r' : '') + (bits & BPF_DEVCG_ACC_WRITE ? 'w' : '') + (bits & BPF_DEVCG_ACC_MKNOD ? 'm' : '');
}

function exceptionString(e: DeviceException, access: number): string {
  const num = (n: number): string => (n === -1 ? '*' : String(n));
  return `${e.type} ${num(e.major)}:${num(e.minor)} ${accessString(access)}`;
}

/** devices.list as an allow-list, or undefined when it allows everything ("a *:* rwm"). */
export function parseDevicesList(text: string): DeviceException[] | undefined {
  const out: DeviceException[] = [];
  for (const line of text.split('\n')) {
    const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === 'a') return undefined;
    out.push({ type: m[1] as 'b' | 'c', major: m[2] === '*' ? -1 : Number(m[2]), minor: m[3] === '*' ? -1 : Number(m[3]), access: accessBits(m[4]) });
  }
  return out;
}

/** Update an allow-list in place: take away what the new rules lack, then add what they grant. */
function updateAllowList(dir: string, current: DeviceException[], target: DeviceException[]): void {
  const field = 'linux.resources.devices';
  const key = (e: DeviceException): string => `${e.type} ${e.major}:${e.minor}`;
  const wanted = new Map(target.map((e) => [key(e), e]));
  for (const e of current) {
    const extra = e.access & ~(wanted.get(key(e))?.access ?? 0);
    if (extra) writeCgroupFile(dir, 'devices.deny', exceptionString(e, extra), field);
  }
  for (const e of target) writeCgroupFile(dir, 'devices.allow', exceptionString(e, e.access), field);
}

export function setDevices(dir: string, r: Resources, ctx?: SetContext): void {
  if (!r.devices) return;
  if (ctx && !ctx.creating) {
    const target = reduceDeviceRules(r.devices);
    const current = parseDevicesList(readOptional(dir, 'devices.list') ?? '');
    if (!target.defaultAllow && current) {
      updateAllowList(dir, current, target.exceptions);
      return;
    }
    if (target.defaultAllow) {
      // To allow-all (plus denied exceptions): "a" to devices.allow resets to allow-all and
      // drops the old exceptions, then the new ones are denied. Never "deny a" first: that
      // would take every device away from the running processes for a moment (runc's
      // emulator does the same; devices.list cannot show a deny-list's exceptions).
      const field = 'linux.resources.devices';
      writeCgroupFile(dir, 'devices.allow', 'a', field);
      for (const e of target.exceptions) writeCgroupFile(dir, 'devices.deny', exceptionString(e, e.access), field);
      return;
    }
    // allow-all to an allow-list: a real change of policy, which can only start with "deny a"
  }
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
