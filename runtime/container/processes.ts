// The processes of a container. With a cgroup they are its members; without one (the
// cgroup layer not configured), every process in the init's pid namespace.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { ContainerRecord } from './state.js';
import { initAlive } from './state.js';
import { cgroupMembers } from './cgroup-link.js';

export function containerPids(rec: ContainerRecord): number[] {
  const members = cgroupMembers(rec);
  if (members && members.length) return members;
  if (!initAlive(rec)) return [];
  let pidns: string;
  try {
    pidns = readlinkSync(`/proc/${rec.pid}/ns/pid`);
  } catch {
    return [rec.pid];
  }
  const ownNs = readlinkSync('/proc/self/ns/pid');
  if (pidns === ownNs) return [rec.pid];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/pid`) === pidns) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out.sort((a, b) => a - b);
}

export function isZombieOrGone(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}
