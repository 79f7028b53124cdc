// An ordinary user's user namespace, as rootless podman's: the user's own uid is root (0),
// and ids 1.. are the user's /etc/subuid and /etc/subgid ranges, one after the other. Every
// place that needs that namespace (unpacking layers so that files keep their owners, the
// containers, `lxr unshare`) gets it from a plan run by lxr-init: UNSHARE(NEWUSER), a SYNC
// at which this process writes the maps through newuidmap/newgidmap, then EXEC. Node itself
// never enters a namespace. Unlike podman there is no long-lived pause process: every user
// namespace made with the same maps sees the same owners, so none needs to be kept.
import { LxrError } from '../common/errors.js';
import { subIdRanges, userName } from '../common/subid.js';
import type { IdMapping } from '../oci-spec/types.js';
import { Op, Plan } from './plan.js';
import { openChannel, spawnPlan } from './spawn.js';
import { native } from './index.js';
import abi from './abi.json' with { type: 'json' };
import { findTool, writeIdMaps, CLONE, type UsernsPlan } from './idmap.js';

export interface UserIdMaps {
  user: string;
  uid: number;
  gid: number;
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** ids inside the namespace: 0 .. size-1 */
  uidCount: number;
  gidCount: number;
  /** the user has no /etc/subuid or /etc/subgid range: only their own ids are mapped */
  single: boolean;
}

/** The line to add to /etc/subuid and /etc/subgid, as podman's docs suggest it. */
export function subIdAdvice(user: string): string {
  return `add a range for "${user}" to /etc/subuid and /etc/subgid (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}, or a line "${user}:100000:65536" in each file; Debian package uidmap provides newuidmap)`;
}

/** The maps of the user's namespace: own uid to 0, then every subordinate range in file order. */
export function userIdMaps(): UserIdMaps {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  const user = userName(uid);
  const build = (own: number, ranges: { start: number; size: number }[]): IdMapping[] => {
    const maps: IdMapping[] = [{ containerID: 0, hostID: own, size: 1 }];
    let next = 1;
    for (const r of ranges) {
      maps.push({ containerID: next, hostID: r.start, size: r.size });
      next += r.size;
    }
    return maps;
  };
  const su = subIdRanges('uid', { name: user, id: uid });
  const sg = subIdRanges('gid', { name: user, id: uid });
  const single = su.length === 0 || sg.length === 0;
  const uidMappings = single ? build(uid, []) : build(uid, su);
  const gidMappings = single ? build(gid, []) : build(gid, sg);
  const count = (m: IdMapping[]) => m.reduce((n, x) => n + x.size, 0);
  return { user, uid, gid, uidMappings, gidMappings, uidCount: count(uidMappings), gidCount: count(gidMappings), single };
}

/** How the maps are written (newuidmap/newgidmap unless only the user's own ids are mapped). */
export function usernsPlan(m: UserIdMaps): UsernsPlan {
  if (m.single) return { uidMappings: m.uidMappings, gidMappings: m.gidMappings, denySetgroups: true };
  const uidTool = findTool('newuidmap');
  const gidTool = findTool('newgidmap');
  if (!uidTool || !gidTool) throw new LxrError('mapping your /etc/subuid and /etc/subgid ranges needs newuidmap and newgidmap (Debian package uidmap), which are not installed');
  return { uidMappings: m.uidMappings, gidMappings: m.gidMappings, uidTool, gidTool, denySetgroups: false };
}

/** What a file owner outside the namespace means, for error messages. */
export function idMapHint(m: UserIdMaps): string {
  if (m.single) return `/etc/subuid has no range for user "${m.user}", so only uid 0 (your own uid) exists in the user namespace: ${subIdAdvice(m.user)}`;
  const ranges = m.uidMappings.slice(1).map((r) => `${r.hostID}-${r.hostID + r.size - 1}`).join(', ');
  return `the user namespace maps uids 0-${m.uidCount - 1} (your uid, then /etc/subuid's ranges of user "${m.user}": ${ranges}); give "${m.user}" a larger range in /etc/subuid and /etc/subgid`;
}

export interface UsernsRunOptions {
  argv: string[];
  env: string[];
  /** fds that become 0, 1 and 2 */
  stdio: [number, number, number];
  /** also a mount namespace of its own (lxr unshare, as podman's) */
  mountNamespace?: boolean;
  maps?: UserIdMaps;
}

/**
 * Start argv as uid 0 of a new user namespace with the user's maps (plus the namespaces of
 * `extraFlags`). Resolves with its pid once it has exec'd; the caller reaps it.
 */
export async function spawnInUserns(o: UsernsRunOptions & { extraFlags?: number }): Promise<number> {
  const maps = o.maps ?? userIdMaps();
  const up = usernsPlan(maps);
  const chan = openChannel();
  const plan = new Plan();
  // newuidmap may write /proc/PID/uid_map only of a dumpable process
  plan.add(Op.DUMPABLE, 'let newuidmap write the user namespace maps', 1);
  plan.add(Op.UNSHARE, 'create a user namespace', CLONE.NEWUSER | (o.mountNamespace ? CLONE.NEWNS : 0) | (o.extraFlags ?? 0));
  plan.add(Op.SYNC, 'wait for the user namespace maps', chan.childFd, abi.sync.USERNS);
  plan.add(Op.SETRESGID, 'become root in the user namespace', 0);
  plan.add(Op.SETRESUID, 'become root in the user namespace', 0);
  o.stdio.forEach((fd, i) => plan.add(Op.DUP, `set up stdio fd ${i}`, fd, i));
  plan.add(Op.CLOEXEC_FROM, 'close inherited fds', 3);
  const exe = o.argv[0]!;
  const cands = exe.includes('/') ? [exe] : (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => d.startsWith('/')).map((d) => `${d}/${exe}`);
  plan.add(Op.EXEC, `exec "${exe}"`, plan.arr(cands), plan.arr(o.argv), plan.arr(o.env), 0);
  const child = spawnPlan(plan, 0n, chan);
  try {
    for (;;) {
      const msg = await child.next();
      if (msg.kind === 'error') throw child.failure(msg);
      if (msg.kind === 'exec') break;
      if (msg.kind === 'sync' && msg.id === abi.sync.USERNS) {
        writeIdMaps(child.pid, up);
        child.release();
      }
    }
  } catch (e) {
    child.detach();
    await native().wait(child.pid);
    throw e;
  }
  child.detach();
  return child.pid;
}

/** Run argv as uid 0 of a new user namespace with the user's maps, and wait: the raw wait status. */
export async function runInUserns(o: UsernsRunOptions): Promise<number> {
  const pid = await spawnInUserns(o);
  const [, status] = await native().wait(pid);
  return status;
}
