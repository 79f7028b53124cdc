// Where the cgroup hierarchies are: parsed from /proc/self/mountinfo (proc(5)) and
// /proc/self/cgroup, never assumed from /sys/fs/cgroup names, because co-mounted
// controllers ("cpu,cpuacct") and cgroup namespaces change both.
import { readFileSync } from 'node:fs';
import { CgroupError } from './errors.js';

export type CgroupLayout = 'v1' | 'hybrid' | 'v2';

/** The v1 controllers lxr manages (runc's list), plus the name=systemd hierarchy it joins. */
export const V1_HIERARCHIES = [
  'cpuset', 'devices', 'memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'hugetlb', 'net_cls', 'net_prio',
  'perf_event', 'freezer', 'rdma', 'misc', 'name=systemd',
] as const;

export interface CgroupMount {
  mountPoint: string;
  /** The path inside the hierarchy that is mounted there ("/" unless bind-mounted or in a cgroupns). */
  root: string;
}

export interface CgroupMounts {
  /** key: controller name or "name=systemd" */
  v1: Map<string, CgroupMount>;
  unified?: CgroupMount;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): CgroupMounts {
  const v1 = new Map<string, CgroupMount>();
  let unified: CgroupMount | undefined;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 0 || parts.length < sep + 4) continue;
    const fstype = parts[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mount: CgroupMount = { root: unescapeMountinfo(parts[3]!), mountPoint: unescapeMountinfo(parts[4]!) };
    if (fstype === 'cgroup2') {
      // Prefer the canonical places if the hierarchy is mounted more than once.
      if (!unified || mount.mountPoint === '/sys/fs/cgroup' || mount.mountPoint === '/sys/fs/cgroup/unified') unified = mount;
      continue;
    }
    for (const opt of parts[sep + 3]!.split(',')) {
      if ((V1_HIERARCHIES as readonly string[]).includes(opt) && !v1.has(opt)) v1.set(opt, mount);
    }
  }
  return unified ? { v1, unified } : { v1 };
}

export function readMounts(): CgroupMounts {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function layoutOf(mounts: CgroupMounts): CgroupLayout {
  if (mounts.v1.size === 0) {
    if (mounts.unified) return 'v2';
    throw new CgroupError('no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)');
  }
  return mounts.unified ? 'hybrid' : 'v1';
}

/** Read at run time: v2 = only cgroup2; hybrid = v1 controllers plus a cgroup2 (usually /sys/fs/cgroup/unified); v1 = no cgroup2. */
export function detectLayout(): CgroupLayout {
  return layoutOf(readMounts());
}

/** /proc/self/cgroup as controller -> path; the v2 line ("0::/x") is under "unified". */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') {
      out.set('unified', m[3]!);
      continue;
    }
    for (const c of m[2]!.split(',')) out.set(c, m[3]!);
  }
  return out;
}

export function ownCgroups(): Map<string, string> {
  return parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
}
