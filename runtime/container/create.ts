// runtime.md "create": set the container up and leave its init waiting for `start`.
// A create that fails at any step leaves nothing behind: no process, state dir or cgroup.
import { accessSync, closeSync, constants, existsSync, fstatSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadSpec } from '../spec/load.js';
import type { Spec, State } from '../../oci-spec/types.js';
import { buildInitPlan, Sync } from '../process/init.js';
import { openChannel, spawnPlan, type PlanChild } from '../../native/spawn.js';
import { runHooks } from './hooks.js';
import { native } from '../../native/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { closeNamespaceFds, planUserns } from '../linux/namespaces.js';
import { cgroupDriver, planCgroupPaths } from './cgroup-link.js';
import type { CgroupPaths } from '../cgroups/manager/index.js';
import {
  type ContainerRecord, CREATING_NOTE, OCI_VERSION, ociState, removeDir, reserveDir, writeCreatingNote, writeRecord,
} from './state.js';
import { log } from '../../common/log.js';
import { seccompCacheDir } from '../linux/seccomp-cache.js';
import { sendIdmappedMounts } from '../linux/mounts.js';
import { sharesHostMountNamespace, unmountUnder } from './host-mounts.js';
import { writeFileAtomic } from '../../common/atomic.js';
import { procStat } from '../../common/proc.js';
import { writeIdMaps, type UsernsPlan } from '../../native/idmap.js';

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  systemdCgroup?: boolean;
  /** an fd the caller already connected as the console socket (run uses this) */
  consoleFd?: number;
  /**
   * fds to give the container as its 0, 1 and 2 (for example log files opened by a
   * front end). Default: this process's own stdio. The caller keeps ownership.
   */
  stdio?: [number, number, number];
}

export interface Created {
  record: ContainerRecord;
  /** the init; its parent is this process */
  child: PlanChild;
}

/**
 * Give the container its own descriptors for 0, 1 and 2. Pipes, fifos and terminals are
 * reopened through /proc, so clearing O_NONBLOCK in the container cannot affect us;
 * regular files and sockets are shared (reopening a file would lose its offset).
 */
function containerStdio(): [number, number, number] {
  return [0, 1, 2].map((fd) => {
    let st;
    try {
      st = fstatSync(fd);
    } catch {
      return openSync('/dev/null', fd === 0 ? 'r' : 'w');
    }
    if (st.isFIFO() || st.isCharacterDevice()) {
      try {
        return openSync(`/proc/self/fd/${fd}`, fd === 0 ? constants.O_RDONLY : constants.O_WRONLY);
      } catch {
        /* fall through */
      }
    }
    const dup = native().dupCloexec(fd);
    if (dup < 0) return openSync('/dev/null', fd === 0 ? 'r' : 'w');
    return dup;
  }) as [number, number, number];
}

/**
 * The user-namespace side of create, checked before anything is made: a non-root caller
 * (rootless) needs a user namespace; a new one needs maps that the caller can write.
 */
function planUsernsFor(spec: ReturnType<typeof loadSpec>['spec'], rootless: boolean): UsernsPlan | undefined {
  const nss = spec.linux?.namespaces ?? [];
  const user = nss.find((n) => n.type === 'user');
  if (rootless && !user) {
    throw new LxrError('linux.namespaces: lxr-runtime is not running as root (rootless), so the container needs a user namespace (make the bundle with `lxr-runtime spec --rootless`)');
  }
  if (!user || user.path) return undefined;
  return planUserns(spec, { rootless });
}

/**
 * Rootless: the container's cgroup paths if it can have a cgroup, which is only on a
 * cgroup v2 host where the caller may write the tree it would be made in (a delegated
 * subtree); on v1 and hybrid hosts never.
 */
function rootlessCgroupPaths(record: ContainerRecord, o: CreateOptions): CgroupPaths | undefined {
  let paths: CgroupPaths;
  try {
    paths = planCgroupPaths(record, o);
  } catch {
    return undefined;
  }
  const dir = paths.layout === 'v2' ? paths.dirs.unified : undefined;
  if (!dir) return undefined;
  let d = dir;
  while (!existsSync(d) && d !== dirname(d)) d = dirname(d);
  try {
    accessSync(d, constants.W_OK);
    accessSync(join(d, 'cgroup.procs'), constants.W_OK);
    return paths;
  } catch {
    return undefined;
  }
}

/** Write the maps of the new user namespace of `pid` (at Sync.USERNS). */
function writeIdMap(pid: number, plan: UsernsPlan | undefined): void {
  if (!plan) throw new LxrError('linux.namespaces: the init asked for user namespace maps, but no user namespace is created');
  writeIdMaps(pid, plan);
}

export async function createContainer(o: CreateOptions): Promise<Created> {
  const loaded = loadSpec(o.bundle);
  const { spec } = loaded;
  // Rootless: no cgroup (this host delegates no writable cgroup v2 tree to users), and
  // the id maps go through newuidmap/newgidmap unless only the caller's own ids are mapped.
  const rootless = (process.geteuid?.() ?? 0) !== 0;
  const userns = planUsernsFor(spec, rootless);
  const dir = reserveDir(o.root, o.id);
  const opened: number[] = [];
  let child: PlanChild | undefined;
  let cgroup: ReturnType<typeof cgroupDriver> | undefined;
  let nsToClose: Parameters<typeof closeNamespaceFds>[0] | undefined;
  try {
    const fifo = join(dir, 'exec.fifo');
    const r = native().mkfifo(fifo, 0o622);
    if (r < 0) throw new LxrError(`cannot make ${fifo}: errno ${-r}`);
    const fifoFd = openSync(fifo, constants.O_RDWR);
    opened.push(fifoFd);
    let consoleFd = o.consoleFd;
    if (spec.process?.terminal && consoleFd === undefined) {
      if (!o.consoleSocket) throw new LxrError('process.terminal is true in config.json, so --console-socket is required');
      const fd = native().unixConnect(o.consoleSocket);
      if (fd < 0) throw new LxrError(`cannot connect to the console socket "${o.consoleSocket}": errno ${-fd}`);
      consoleFd = fd;
      opened.push(fd);
    }
    const record: ContainerRecord = {
      ociVersion: OCI_VERSION,
      id: o.id,
      bundle: loaded.bundle,
      rootfs: loaded.rootfs,
      pid: 0,
      pidStartTime: '',
      created: new Date().toISOString(),
      config: spec,
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    if (rootless) record.rootless = true;
    if (o.noNewKeyring) record.noNewKeyring = true;
    // resolve the cgroup first: a bad linux.cgroupsPath fails before anything is made
    if (!rootless) record.cgroup = planCgroupPaths(record, o);
    else {
      const delegated = rootlessCgroupPaths(record, o);
      if (delegated) record.cgroup = delegated;
      else if (spec.linux?.resources && Object.keys(spec.linux.resources).length) {
        log.warn('linux.resources are ignored: a rootless container gets no cgroup here (no writable cgroup v2 tree is delegated to this user)');
      }
    }
    // With a terminal the init's stdio is the pty: opening our own stdio for it would
    // keep the caller's pipes open until the container starts (containerd's shim waits
    // for EOF on the pipe it gave `create`, and hangs).
    const ownStdio = !o.stdio && consoleFd === undefined;
    const stdio = o.stdio ?? (ownStdio ? containerStdio() : [0, 1, 2] as [number, number, number]);
    if (ownStdio) opened.push(...stdio);
    const chan = openChannel();
    // SCMP_ACT_NOTIFY: the init sends its listener fd over a socketpair of its own
    const seccompPair = usesSeccompNotify(spec) ? native().socketpair() : undefined;
    if (seccompPair) opened.push(...seccompPair);
    let built;
    try {
      built = buildInitPlan({
        ...(seccompPair ? { seccompSocketFd: seccompPair[1] } : {}),
        spec, id: o.id, noNewKeyring: !!o.noNewKeyring, bundle: loaded.bundle, rootfs: loaded.rootfs, chanFd: chan.childFd, fifoFd, stdio,
        noPivot: o.noPivot, preserveFds: o.preserveFds, rootless,
        seccompCacheDir: seccompCacheDir(o.root),
        ...(record.cgroup ? { cgroupDirs: record.cgroup as CgroupPaths } : {}),
        ...(consoleFd !== undefined ? { consoleFd } : {}),
      });
    } catch (e) {
      native().close(chan.parentFd);
      native().close(chan.childFd);
      throw e;
    }
    nsToClose = built.namespaces;
    child = spawnPlan(built.plan, built.cloneFlags, chan);
    closeNamespaceFds(built.namespaces);
    nsToClose = undefined;

    for (;;) {
      const msg = await child.next();
      if (msg.kind === 'error') throw child.failure(msg);
      if (msg.kind === 'exec') {
        // as runc says it: a memory limit too low for the init to get through its setup
        const limit = spec.linux?.resources?.memory?.limit;
        const hint = typeof limit === 'number' && limit >= 0 && record.cgroup ? ` (linux.resources.memory.limit is ${limit} bytes: too low?)` : '';
        throw new LxrError(`container init exited during setup${hint}`);
      }
      if (msg.kind === 'pid') {
        void native().wait(child.pids[child.pids.length - 2]!); // reap the intermediate
        continue;
      }
      if (msg.id === Sync.IDMAP) {
        // the init reads the mounts from the channel: it needs no release
        await sendIdmappedMounts(child.chan, child.pid, built.idmapped);
        continue;
      }
      if (msg.id === Sync.USERNS) {
        writeIdMap(child.pid, userns);
      } else if (msg.id === Sync.CGROUP) {
        record.pid = child.pid;
        record.pidStartTime = procStat(child.pid)?.startTime ?? '';
        if (record.cgroup) {
          // Before any cgroup is made: if this process is killed from here on, state.json
          // never comes, and delete -f finds the cgroup (and the init) through this note.
          writeCreatingNote(dir, record);
          cgroup = cgroupDriver(record, o);
          cgroup.create(child.pid);
          record.cgroup = cgroup.paths;
        }
        const oom = spec.process?.oomScoreAdj;
        if (oom !== undefined) {
          try {
            writeFileSync(`/proc/${child.pid}/oom_score_adj`, String(oom));
          } catch (e) {
            throw new LxrError(`process.oomScoreAdj: cannot set ${oom}: ${(e as NodeJS.ErrnoException).code}`);
          }
        }
      } else if (msg.id === Sync.HOOKS) {
        const state = ociState(record, 'creating');
        await runHooks('prestart', spec.hooks?.prestart, state);
        await runHooks('createRuntime', spec.hooks?.createRuntime, state);
        await runHooks('createContainer', spec.hooks?.createContainer, state, child.pid);
      } else if (msg.id === Sync.SECCOMP) {
        await sendSeccompListener(seccompPair![0], spec, ociState(record, 'creating'), child.pid);
      } else if (msg.id === Sync.READY) {
        writeRecord(o.root, record);
        rmSync(join(dir, CREATING_NOTE), { force: true });
        if (o.pidFile) writeFileAtomic(o.pidFile, String(child.pid), { durable: false }); // a pid: atomic, never fsynced (runc neither)
        child.release();
        built.keepSeccomp?.();
        break;
      }
      child.release();
    }
    for (const fd of opened) closeQuiet(fd);
    return { record, child };
  } catch (e) {
    if (nsToClose) closeNamespaceFds(nsToClose);
    for (const fd of opened) closeQuiet(fd);
    if (child) {
      for (const pid of child.pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      child.detach();
      for (const pid of child.pids) await native().wait(pid);
    }
    try {
      cgroup?.destroy();
    } catch (ce) {
      log.warn(`cleaning up the cgroup of "${o.id}": ${errorMessage(ce)}`);
    }
    if (sharesHostMountNamespace(spec)) unmountUnder(loaded.rootfs);
    removeDir(o.root, o.id);
    throw e;
  }
}

function usesSeccompNotify(spec: Spec): boolean {
  const sc = spec.linux?.seccomp;
  return !!sc && (sc.defaultAction === 'SCMP_ACT_NOTIFY' || (sc.syscalls ?? []).some((r) => r.action === 'SCMP_ACT_NOTIFY'));
}

/**
 * config-linux.md "The Container Process State": one connection to listenerPath, the
 * state as JSON with the notify fd in SCM_RIGHTS, then close.
 */
async function sendSeccompListener(pairFd: number, spec: Spec, state: State, pid: number): Promise<void> {
  const sc = spec.linux!.seccomp!;
  const fd = await native().recvFdAsync(pairFd);
  if (fd < 0) throw new LxrError(`linux.seccomp: receiving the notify fd from the container failed: errno ${-fd}`);
  try {
    const sock = native().unixConnect(sc.listenerPath!);
    if (sock < 0) throw new LxrError(`linux.seccomp.listenerPath: cannot connect to "${sc.listenerPath}": errno ${-sock}`);
    try {
      const msg = JSON.stringify({
        ociVersion: state.ociVersion,
        fds: ['seccompFd'],
        pid,
        ...(sc.listenerMetadata !== undefined ? { metadata: sc.listenerMetadata } : {}),
        state,
      });
      const r = native().sendFd(sock, fd, msg);
      if (r < 0) throw new LxrError(`linux.seccomp.listenerPath: sending to "${sc.listenerPath}" failed: errno ${-r}`);
    } finally {
      native().close(sock);
    }
  } finally {
    native().close(fd);
  }
}

function closeQuiet(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
