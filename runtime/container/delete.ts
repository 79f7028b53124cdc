// runtime.md "delete": remove what create made, then run the poststop hooks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CREATING_NOTE, containerDir, initAlive, liveStatus, ociState, readRecord, removeDir, withLock, UnreadableState, type ContainerRecord, type CreatingNote } from './state.js';
import { cgroupPids, destroyCgroup, resolveCgroupPaths, type CgroupPaths } from '../cgroups/manager/index.js';
import { containerPids, isZombieOrGone } from './processes.js';
import { runHooks } from './run-hooks.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { cgroupDriver, cgroupMembers, recordCgroup } from './cgroup-link.js';
import { killCgroup } from '../cgroups/manager/index.js';
import { sharesHostMountNamespace, unmountUnder } from './host-mounts.js';

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (pids.every(isZombieOrGone)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function deleteContainer(root: string, id: string, force = false): Promise<void> {
  if (!existsSync(containerDir(root, id))) {
    if (force) return;
    throw new LxrError(`container "${id}" does not exist`);
  }
  await withLock(root, id, async () => {
    let rec;
    try {
      rec = readRecord(root, id);
    } catch (e) {
      if (force && e instanceof UnreadableState) return deleteUnreadable(root, id, e);
      // a create that died half-way (no state.json): what it made is in its note
      if (force) return deleteHalfCreated(root, id);
      throw e;
    }
    const status = liveStatus(root, rec);
    if ((status === 'running' || status === 'paused') && !force) {
      throw new LxrError(`cannot delete container "${id}": it is ${status} (stop it first, or use --force)`);
    }
    // A stopped container's cgroup can still hold processes: children of an init that
    // exited, when the pid namespace is shared (runc's destroy kills them too). They go
    // with the container, or its cgroup could not be removed.
    const leftovers = status === 'stopped' ? (cgroupMembers(rec) ?? []) : [];
    if (status !== 'stopped' || leftovers.length) {
      const paths = recordCgroup(rec);
      if (leftovers.length && paths) {
        try {
          killCgroup(paths, 9); // frozen first: nothing forks past the list
        } catch {
          /* the signals below */
        }
      }
      const pids = status === 'stopped' ? (cgroupMembers(rec) ?? leftovers) : containerPids(rec);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (!(await waitGone(pids, 5000))) throw new LxrError(`container "${id}": processes did not die after SIGKILL`);
    }
    try {
      cgroupDriver(rec, { id }).destroy();
    } catch (e) {
      throw new LxrError(`container "${id}": removing its cgroup: ${errorMessage(e)}`);
    }
    if (sharesHostMountNamespace(rec.config)) unmountUnder(rec.rootfs);
    removeDir(root, id);
    try {
      await runHooks('poststop', rec.config.hooks?.poststop, ociState(rec, 'stopped'));
    } catch (e) {
      log.warn(`container "${id}": ${errorMessage(e)}`);
    }
  });
}

/** A string field of a torn state file, if its text still holds it whole. */
function field(text: string, name: string, re: string): string | undefined {
  return new RegExp(`"${name}":(${re})[,}]`).exec(text)?.[1];
}

/** Where the container's cgroup may be: what the torn file still says, then the paths its id implies. */
function candidateCgroups(id: string, text: string): CgroupPaths[] {
  const out: CgroupPaths[] = [];
  const seen = new Set<string>();
  const add = (f: () => CgroupPaths) => {
    try {
      const p = f();
      const key = JSON.stringify(p.dirs);
      if (!seen.has(key)) (seen.add(key), out.push(p));
    } catch {
      /* not a path on this host */
    }
  };
  const cgroupsPath = field(text, 'cgroupsPath', '"(?:[^"\\\\]|\\\\.)*"');
  const given = cgroupsPath === undefined ? undefined : (JSON.parse(cgroupsPath) as string);
  for (const systemd of [false, true]) {
    if (given !== undefined) add(() => resolveCgroupPaths({ id, cgroupsPath: given, systemd }));
    add(() => resolveCgroupPaths({ id, systemd }));
  }
  return out;
}

function existingDirs(p: CgroupPaths): string[] {
  return [...new Set(Object.values(p.dirs))].filter((d) => existsSync(d));
}

/**
 * The cgroup the live init is in, if it is the container's own: its name holds the id
 * (runc's "/lxr/ID", containerd's "/k8s.io/ID", podman's "libpod-ID.scope"). Never a
 * cgroup the container merely shares (a rootless container stays in its caller's).
 */
function initCgroup(id: string, pid: number): CgroupPaths | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').map((l) => l.split(':'));
  const line = lines.find((l) => l[0] === '0' && l[1] === '') ?? lines.find((l) => l[1]?.split(',').includes('pids'));
  const path = line?.slice(2).join(':');
  if (!path || path === '/' || !path.split('/').pop()!.includes(id)) return undefined;
  try {
    return resolveCgroupPaths({ id, cgroupsPath: path });
  } catch {
    return undefined;
  }
}

/** What a delete without a readable state.json could find of the container. */
interface Recovered {
  /** the init's pid and start time, or 0 and '' */
  pid: number;
  start: string;
  /** the cgroups that exist among those it may have */
  cgroups: CgroupPaths[];
}

/** The init (when its pid and start time are known and it lives) and the container's cgroups, from a torn file's text. */
function recoverFromText(id: string, text: string): Recovered {
  const pid = Number(field(text, 'pid', '\\d+') ?? 0);
  const start = field(text, 'pidStartTime', '"\\d+"');
  return { pid, start: start ? (JSON.parse(start) as string) : '', cgroups: candidateCgroups(id, text).filter((p) => existingDirs(p).length > 0) };
}

/**
 * Kill every process of what was recovered and remove its cgroups: SIGKILL to the cgroups'
 * members (again, as long as any lives: a process may be half-way through a fork) until
 * none is left, within `ms`. Returns the pids killed. Throws, naming what is left, if a
 * process outlives the bound or a cgroup cannot be removed.
 */
async function killAndRemove(id: string, r: Recovered, what: string, ms = 5000): Promise<Set<number>> {
  const partial = { id, pid: r.pid, pidStartTime: r.start, config: {} } as ContainerRecord;
  const killed = new Set<number>();
  if (r.pid > 0 && r.start && initAlive(partial)) {
    for (const x of containerPids(partial)) killed.add(x);
    const own = initCgroup(id, r.pid);
    if (own && !r.cgroups.some((p) => p.path === own.path)) r.cgroups.push(own);
  }
  const end = Date.now() + ms;
  for (;;) {
    const live = new Set<number>([...killed].filter((x) => !isZombieOrGone(x)));
    for (const p of r.cgroups) for (const x of cgroupPids(p)) if (!isZombieOrGone(x)) live.add(x);
    if (live.size === 0) break;
    if (Date.now() > end) throw new LxrError(`${what}; its processes ${[...live].join(' ')} did not die after SIGKILL`);
    for (const x of live) {
      killed.add(x);
      try {
        process.kill(x, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await new Promise((res) => setTimeout(res, 5));
  }
  for (const p of r.cgroups) {
    try {
      destroyCgroup(p); // retries while the kernel still counts a dying process in it
    } catch (e) {
      throw new LxrError(`${what}; removing its cgroup: ${errorMessage(e)}`);
    }
  }
  return killed;
}

/**
 * `delete --force` of a state directory without state.json: a create that was killed (or
 * is still running, which force overrides, as it always did). The create's note names
 * the init and the cgroup it was about to make; without a note nothing was made yet but,
 * to be sure, the cgroups the id implies are looked for too. If what was made cannot be
 * removed, the directory stays (with the note) and the error says what is left.
 */
async function deleteHalfCreated(root: string, id: string): Promise<void> {
  let text = '';
  try {
    text = readFileSync(join(containerDir(root, id), CREATING_NOTE), 'utf8');
  } catch {
    /* no note: the create died before it made a cgroup */
  }
  const r = recoverFromText(id, text);
  try {
    const note = JSON.parse(text) as CreatingNote;
    const paths = note.cgroup as CgroupPaths | undefined;
    if (paths?.dirs && !r.cgroups.some((p) => JSON.stringify(p.dirs) === JSON.stringify(paths.dirs)) && existingDirs(paths).length) r.cgroups.unshift(paths);
  } catch {
    /* torn or absent: what recoverFromText found */
  }
  const what = `container "${id}": its create was interrupted (no state.json)`;
  try {
    await killAndRemove(id, r, what);
  } catch (e) {
    throw new LxrError(`${errorMessage(e)}; its state directory ${containerDir(root, id)} was left in place for another delete -f`);
  }
  removeDir(root, id);
}

/**
 * `delete --force` of a container whose state file is torn: find it through what can be
 * recovered (the init pid and start time if the text still holds them, the cgroup its
 * cgroupsPath or id implies), kill what runs there and remove it. If nothing can be found
 * the container may still run: fail, and say what is left.
 */
async function deleteUnreadable(root: string, id: string, err: UnreadableState): Promise<void> {
  const text = err.text;
  const r = recoverFromText(id, text);
  const initKnown = r.pid > 0 && !!r.start;
  if (!initKnown && r.cgroups.length === 0) {
    throw new LxrError(
      `${err.message}; neither its init pid nor a cgroup could be recovered (looked for ${candidateCgroups(id, text).flatMap((p) => [...new Set(Object.values(p.dirs))].slice(0, 1)).join(', ') || 'no cgroup path'}), ` +
        `so processes of it may still run; its state directory ${containerDir(root, id)} was left in place: remove it once nothing of the container runs`,
    );
  }
  const killed = await killAndRemove(id, r, err.message);
  removeDir(root, id);
  log.warn(`${err.message}: removed what could be recovered (${killed.size} process(es)${r.cgroups.length ? `, cgroup ${r.cgroups.map((p) => p.path).join(' ')}` : ''}); its poststop hooks were not run`);
}
