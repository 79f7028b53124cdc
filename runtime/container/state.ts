// Container state on disk: <root>/<id>/state.json (written atomically) and exec.fifo
// (present from create until start). Live status is derived, never trusted from disk:
// the init pid must exist with the start time recorded at create, so a reused pid is
// never mistaken for the container.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Spec, State, Status } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { writeFileAtomic } from '../../common/atomic.js';
import { procStat } from '../../common/proc.js';
import { native, LOCK_EX, LOCK_NB, LOCK_SH } from '../../native/index.js';

export const DEFAULT_ROOT = '/run/lxr-runtime';

/**
 * The state dir to use when --root is not given: DEFAULT_ROOT for root; for anyone else
 * (rootless) $XDG_RUNTIME_DIR/lxr-runtime, or /run/user/UID/lxr-runtime, as runc does.
 */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env, euid: number = process.geteuid?.() ?? 0): string {
  if (euid === 0) return DEFAULT_ROOT;
  const xdg = env.XDG_RUNTIME_DIR;
  return join(xdg && xdg.startsWith('/') ? xdg : `/run/user/${euid}`, 'lxr-runtime');
}
export const OCI_VERSION = '1.3.0';

export interface ContainerRecord {
  ociVersion: string;
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** field 22 of /proc/PID/stat at create: together with pid it names the process */
  pidStartTime: string;
  created: string;
  annotations?: Record<string, string>;
  /** the spec as it was at create (hooks, cgroups and namespaces are read from it later) */
  config: Spec;
  /** cgroup paths chosen at create, for delete/pause/update (filled by the cgroup layer) */
  cgroup?: unknown;
  /** set by `start` once the user process was released */
  started?: string;
  rootless?: boolean;
  /** created with --no-new-keyring: exec keeps the runtime's session keyring too */
  noNewKeyring?: boolean;
}

const ID_RE = /^[\w+.-]+$/;

export function checkId(id: string): void {
  if (!id || !ID_RE.test(id) || id === '.' || id === '..') {
    throw new LxrError(`invalid container id "${id}": use letters, digits and "_+.-"`);
  }
}

export function containerDir(root: string, id: string): string {
  checkId(id);
  return join(root, id);
}

export function fifoPath(root: string, id: string): string {
  return join(containerDir(root, id), 'exec.fifo');
}

export function readRecord(root: string, id: string): ContainerRecord {
  const dir = containerDir(root, id);
  let text: string;
  try {
    text = readFileSync(join(dir, 'state.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      if (existsSync(dir)) throw new LxrError(`container "${id}" is still being created`);
      throw new LxrError(`container "${id}" does not exist`);
    }
    throw e;
  }
  return parseRecord(id, join(dir, 'state.json'), text);
}

/** The state file exists but cannot be read as a container's state (torn, truncated, edited). */
export class UnreadableState extends LxrError {
  constructor(readonly id: string, readonly file: string, readonly text: string, reason: string) {
    super(`container "${id}": its state file ${file} is unreadable: ${reason}`);
  }
}

function parseRecord(id: string, file: string, text: string): ContainerRecord {
  let rec: ContainerRecord;
  try {
    rec = JSON.parse(text) as ContainerRecord;
  } catch (e) {
    throw new UnreadableState(id, file, text, text.length ? (e as Error).message : 'it is empty');
  }
  const bad = (what: string): never => {
    throw new UnreadableState(id, file, text, what);
  };
  if (!rec || typeof rec !== 'object' || Array.isArray(rec)) bad('it is not a JSON object');
  if (rec.id !== id) bad(`it names container ${JSON.stringify(rec.id)}`);
  if (typeof rec.pid !== 'number' || typeof rec.pidStartTime !== 'string') bad('pid or pidStartTime is missing');
  if (!rec.config || typeof rec.config !== 'object') bad('config is missing');
  return rec;
}

export function writeRecord(root: string, rec: ContainerRecord): void {
  // Atomic, not durable (no fsync), as runc writes its state.json: the state describes
  // processes, which do not outlive a crash either, and it lives on a tmpfs (/run) anyway.
  writeFileAtomic(join(containerDir(root, rec.id), 'state.json'), JSON.stringify(rec), { mode: 0o600, durable: false });
}

/**
 * A create's note of what it is about to make, written before the container's cgroup and
 * removed once state.json is written. A create killed in between (SIGKILL, OOM) leaves a
 * state directory without state.json but with a cgroup: delete -f reads the note to find it.
 */
export const CREATING_NOTE = 'creating.json';

export interface CreatingNote {
  id: string;
  pid: number;
  pidStartTime: string;
  /** the cgroupsPath as resolved (absolute, so the torn-file fallback resolves it alike) */
  cgroupsPath?: string;
  cgroup?: ContainerRecord['cgroup'];
}

export function writeCreatingNote(dir: string, rec: ContainerRecord): void {
  const cg = rec.cgroup as { path?: string } | undefined;
  const note: CreatingNote = { id: rec.id, pid: rec.pid, pidStartTime: rec.pidStartTime, ...(cg?.path ? { cgroupsPath: cg.path } : {}), ...(rec.cgroup ? { cgroup: rec.cgroup } : {}) };
  writeFileAtomic(join(dir, CREATING_NOTE), JSON.stringify(note), { mode: 0o600, durable: false }); // atomic; a crash of the host empties the cgroups anyway
}

export function listIds(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && ID_RE.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Reserve the id: mkdir is atomic, so two creates of one id cannot both win. */
export function reserveDir(root: string, id: string): string {
  const dir = containerDir(root, id);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new LxrError(`container "${id}" already exists`);
    throw e;
  }
  return dir;
}

export function removeDir(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
}

/** Hold an flock on the container's directory for the duration of fn. */
export async function withLock<T>(root: string, id: string, fn: () => Promise<T> | T, shared = false): Promise<T> {
  const dir = containerDir(root, id);
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LxrError(`container "${id}" does not exist`);
    throw e;
  }
  try {
    const op = shared ? LOCK_SH : LOCK_EX;
    const n = native();
    // Uncontended (the usual case) the lock is taken at once, without a worker thread: the
    // first async call starts libuv's pool of four threads, which the exit then joins.
    if (n.flock(fd, op | LOCK_NB) !== 0) await n.flockAsync(fd, op);
    return await fn();
  } finally {
    closeSync(fd);
  }
}

/** Is the container's init still the process we started? */
export function initAlive(rec: ContainerRecord): boolean {
  if (!rec.pid) return false;
  const st = procStat(rec.pid);
  return !!st && st.startTime === rec.pidStartTime && st.state !== 'Z' && st.state !== 'X';
}

export type LiveStatus = Status | 'paused';

export function liveStatus(root: string, rec: ContainerRecord, isPaused?: (rec: ContainerRecord) => boolean): LiveStatus {
  if (!initAlive(rec)) return 'stopped';
  if (existsSync(fifoPath(root, rec.id))) return 'created';
  if (isPaused?.(rec)) return 'paused';
  return 'running';
}

/** The state document of runtime.md, as `state` prints and hooks receive on stdin. */
export function ociState(rec: ContainerRecord, status: Status | 'paused'): State {
  const s: State = {
    ociVersion: OCI_VERSION,
    id: rec.id,
    status: status as Status,
    bundle: rec.bundle,
  };
  if (status !== 'stopped') s.pid = rec.pid;
  if (rec.annotations && Object.keys(rec.annotations).length) s.annotations = rec.annotations;
  return s;
}
