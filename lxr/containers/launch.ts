// Running a container's init and waiting for it. The process that creates the container
// through the runtime library is the init's parent, so it is the one that learns the exit
// code: lxr-monitor (native/monitor.c, a small detached C process like podman's conmon) for
// background containers, or the foreground `lxr run` itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createContainer as rtCreate, startContainer as rtStart, deleteContainer as rtDelete } from '../../runtime/index.js';
import { exitCodeOf } from '../../common/proc.js';
import type { PlanChild } from '../../native/spawn.js';
import { MONITOR_RESTART_EXIT } from '../../native/plan.js';
import { native } from '../../native/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { lxrBin, nativeBuildPath } from '../../native/paths.js';
import { contextEnv, failPoint, trace, type LxrContext } from '../core/context.js';
import { IDE_CONTAINER_PORT, containerDir, logPath, readRecordById, updateRecord, withStoreLock } from './store.js';
import { mountOverlay, unmountOverlay } from '../snapshots/overlay.js';
import { setupNetwork, teardownNetwork } from './network.js';
import { buildSpec, writeBundle } from './spec.js';
import { findRecord } from './store.js';
import { liveState } from './status.js';
import type { NamespaceOf } from './run-flags.js';
import { readImageConfig, readManifest, resolveUser } from '../../image-tool/index.js';
import type { Process } from '../../oci-spec/types.js';
import { devcontainerRemoteUser } from './devcontainer-user.js';
import { mergeEnv } from './options.js';
import { procStat } from '../../common/proc.js';
import type { ContainerRecord } from '../core/types.js';

export { logPath };

/** Mount the rootfs, set up the network and write bundle/config.json: everything before create. */
export async function prepareContainer(ctx: LxrContext, rec: ContainerRecord): Promise<string> {
  const dir = containerDir(ctx, rec.id);
  failPoint('mount');
  // rootless: the container's own plan mounts the overlay, inside its user namespace
  const rootless = ctx.rootless ? await import('../rootless/index.js') : undefined;
  if (rootless) await rootless.checkRootfsDriver(ctx);
  const rootfs = rootless ? join(dir, 'merged') : mountOverlay(dir, rec.layers, rec.settings.autoRemove);
  trace('prepare: overlay mounted');
  failPoint('network');
  const net = await setupNetwork(ctx, rec);
  trace('prepare: network set up');
  const manifest = await readManifest(ctx.imageStore, rec.imageDigest);
  const image = await readImageConfig(ctx.imageStore, manifest);
  const extraMounts = [...net.mounts];
  if (rec.settings.ide) {
    // code-server and its Node come from the host (installed once, bind-mounted read-only)
    const ide = await import('../ide/index.js');
    const problem = ide.ideRootfsProblem(rootless ? rootless.filesRoot(dir, rec.layers, '/lib') : rootfs, rec.imageRef);
    if (problem) throw new LxrError(problem);
    const dataDir = ctx.ideDir;
    const install = await ide.ensureCodeServer(dataDir, { onProgress: (p) => process.stderr.write(`lxr: --ide: ${p.message}\n`) });
    extraMounts.push(...ide.ideMounts(install));
    // login shells (code-server's terminals) keep the image's PATH; in this container's upper layer
    const { patchEtcProfile } = await import('../ide/profile.js');
    patchEtcProfile(rootfs);
  }
  failPoint('spec');
  const spec = buildSpec({
    id: rec.id, name: rec.name, image, rootfs, settings: rec.settings, dir, volumesRoot: ctx.volumes,
    ...(net.netnsPath ? { netnsPath: net.netnsPath } : {}), extraMounts, nsOf: namespaceOf(ctx), cgroupParent: ctx.cgroupParent,
    ...(rootless ? { filesRoot: rootless.filesRoot(dir, rec.layers) } : {}),
  });
  if (rootless) rootless.rootlessSpec(spec, dir, rec.layers.length, rec.settings.network, rootless.userIdMaps(), net.usernsPath);
  if (rec.settings.ide) {
    // code-server's settings and extensions outlive the container, in a volume of its user's
    const { ideDataVolume, IDE_DATA_MOUNT } = await import('../ide/profile.js');
    const u = ideUser(rec, spec.process!, rootfs);
    const vol = ideDataVolume(ctx.volumes, u.user.uid, u.user.gid);
    spec.mounts = [...(spec.mounts ?? []), { destination: IDE_DATA_MOUNT, type: 'bind', source: vol.dir, options: ['rbind', 'rprivate'] }];
  }
  const bundle = writeBundle(dir, spec);
  await updateRecord(ctx, rec.id, (r) => {
    if (net.ip) r.ip = net.ip;
    else delete r.ip;
    if (net.netnsPath) r.netnsPath = net.netnsPath;
  });
  return bundle;
}

/** --pid/--ipc container:NAME: the namespace of that container's running init. */
function namespaceOf(ctx: LxrContext): NamespaceOf {
  return (c, type) => {
    const r = findRecord(ctx, c);
    if (!r) throw new LxrError(`--${type} container:${c}: no such container`, { exitCode: 125 });
    if (liveState(ctx, r).status !== 'running' || !r.pid) throw new LxrError(`--${type} container:${c}: the container is not running`, { exitCode: 125 });
    return `/proc/${r.pid}/ns/${type}`;
  };
}

/**
 * Undo prepareContainer and forget the runtime's container. Safe to call more than once.
 * strict (rm): if the runtime could not remove its container (a process that outlived
 * SIGKILL, a cgroup that would not go), throw that after the rest is released, so that the
 * caller keeps the record and says what is left.
 */
export async function releaseContainer(ctx: LxrContext, rec: ContainerRecord, o: { strict?: boolean } = {}): Promise<void> {
  let left: unknown;
  try {
    await rtDelete(ctx.runtimeRoot, rec.id, true);
  } catch (e) {
    if (!/does not exist/.test(errorMessage(e))) left = e; // else: already gone
  }
  await teardownNetwork(ctx, rec);
  unmountOverlay(containerDir(ctx, rec.id));
  if (left && o.strict) throw new LxrError(`container ${rec.name}: ${errorMessage(left).replace(/^container "[0-9a-f]+": /, '')}`);
}

export interface Launched {
  pid: number;
  child: PlanChild;
}

/** Create and start the container through the runtime library; this process is the init's parent. */
export async function launch(
  ctx: LxrContext,
  id: string,
  stdio: [number, number, number],
  consoleFd?: number,
  monitorPid: number = process.pid,
): Promise<Launched> {
  const bundle = join(containerDir(ctx, id), 'bundle');
  failPoint('create');
  trace('launch: runtime create');
  const { record, child } = await rtCreate({ root: ctx.runtimeRoot, id, bundle, stdio, ...(consoleFd !== undefined ? { consoleFd } : {}) });
  try {
    failPoint('start');
    trace('launch: runtime start');
    await rtStart(ctx.runtimeRoot, id);
    trace('launch: started');
  } catch (e) {
    child.detach();
    await rtDelete(ctx.runtimeRoot, id, true).catch(() => {});
    throw e;
  }
  const monitorStart = procStat(monitorPid)?.startTime ?? '';
  const startedAt = new Date().toISOString();
  const after = await updateRecord(ctx, id, (r) => {
    r.status = 'running';
    r.pid = record.pid;
    r.startedAt = startedAt;
    r.monitorPid = monitorPid;
    r.monitorStart = monitorStart;
    delete r.exitCode;
    delete r.finishedAt;
  });
  // health checks: lxr's own runner, detached (it outlives this command)
  if (after?.settings.flags?.healthcheck) {
    const { startHealthRunner } = await import('./health.js');
    startHealthRunner(ctx, id, startedAt, lxrBin());
  }
  return { pid: record.pid, child };
}

/** Wait for the init, record its exit code. Returns the code. */
export async function waitExit(ctx: LxrContext, id: string, l: Launched): Promise<number> {
  const [, status] = await native().wait(l.pid);
  l.child.detach();
  trace('wait: exited');
  return recordExit(ctx, id, status);
}

/** The init exited with raw wait status `status`: forget the runtime's container, record the code. */
async function recordExit(ctx: LxrContext, id: string, status: number): Promise<number> {
  const code = exitCodeOf(status);
  // what this fails to remove, a restart removes before it creates again (launchMain)
  await rtDelete(ctx.runtimeRoot, id, true).catch((e: unknown) => process.stderr.write(`lxr monitor ${id}: removing the runtime's state after the exit: ${errorMessage(e)}\n`));
  await updateRecord(ctx, id, (r) => {
    r.exitCode = code;
    r.finishedAt = new Date().toISOString();
    delete r.pid;
  });
  return code;
}

/** After the last exit: release everything, mark the container exited (or remove it with --rm). */
export async function finish(ctx: LxrContext, id: string): Promise<void> {
  const rec = readRecordById(ctx, id);
  if (!rec) return;
  await releaseContainer(ctx, rec);
  trace('finish: released');
  await updateRecord(ctx, id, (r) => {
    r.status = 'exited';
    delete r.monitorPid;
    delete r.monitorStart;
    delete r.pid;
    delete r.ip; // the lease went back with the detach
  });
  if (rec.settings.autoRemove) await removeFiles(ctx, id);
  trace('finish: done');
}

/** Remove the container's directory (upper layer, logs, record). The snapshots stay. */
export async function removeFiles(ctx: LxrContext, id: string): Promise<void> {
  await withStoreLock(ctx, async () => {
    const dir = containerDir(ctx, id);
    // rootless: the upper layer holds files of the user's subordinate ids
    if (ctx.rootless) return (await import('../rootless/index.js')).removeTree(dir);
    unmountOverlay(dir);
    rmSync(dir, { recursive: true, force: true });
  });
}

export function shouldRestart(r: ContainerRecord): boolean {
  if (r.stopRequested) return false;
  if (r.settings.restart === 'always') return true;
  return r.settings.restart === 'on-failure' && (r.exitCode ?? 0) !== 0;
}

/** Exit status of `lxr __cleanup` that tells lxr-monitor to launch the container again. */
export const RESTART_STATUS = MONITOR_RESTART_EXIT;

/**
 * `lxr __launch ID [restart]`, run by lxr-monitor (native/monitor.c), the container's monitor:
 * create and start the container (this process is the init's parent until it exits, then the
 * monitor, a subreaper, is), write the init's pid and the log's rotation limits to fd 4
 * (native/abi.json monitor), and on the first launch report "ok"
 * or "error ..." to the creating lxr on fd 3, after waiting for its "go". Returns the exit status.
 */
/**
 * Remove a container directory that holds no record (one made for an early monitor): no
 * command knows it, since ps -a lists records. Returns false, leaving it, when a record is
 * there (then ps -a shows the container and rm -f removes what it made). No lock: nothing
 * else knows the directory, and taking the store's lock would make the state directory (and
 * its lock file) that a usage error must not leave behind.
 */
export async function removeUnrecordedDir(ctx: LxrContext, id: string): Promise<boolean> {
  const dir = containerDir(ctx, id);
  if (existsSync(join(dir, 'container.json'))) return false;
  try {
    if (!existsSync(dir)) return true;
    if (ctx.rootless) await (await import('../rootless/index.js')).removeTree(dir);
    else rmSync(dir, { recursive: true, force: true });
  } catch {
    /* lxr system check --repair finds it */
  }
  return true;
}

export async function launchMain(ctx: LxrContext, id: string, restart: boolean): Promise<number> {
  let report = (_msg: string) => {};
  if (!restart) {
    // fd 3 is a socket to the lxr that started the monitor. It starts it early, so that our
    // start-up overlaps its preparation, and says "go" once the bundle is ready (or closes: give up).
    const sock = new Socket({ fd: 3, readable: true, writable: true });
    sock.on('error', () => {});
    const go = await new Promise<boolean>((resolve) => {
      let text = '';
      sock.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) resolve(text.startsWith('go\n'));
      });
      sock.on('end', () => resolve(false));
      sock.on('close', () => resolve(false));
    });
    if (!go) {
      sock.destroy();
      // the creating lxr went away (killed, or it gave up) before it wrote the record
      await removeUnrecordedDir(ctx, id);
      return 0;
    }
    report = (msg) => sock.end(`${msg}\n`);
  } else {
    // a stop that came during the monitor's back-off wins; only a real restart is counted
    const again = await updateRecord(ctx, id, (x) => {
      if (!x.stopRequested) x.restartCount++;
    });
    if (!again || again.stopRequested) {
      await finish(ctx, id);
      return 0;
    }
    // the last run's runtime state, if removing it after the exit failed (a process of the
    // container slow to die under load): the create below would find the id taken
    await rtDelete(ctx.runtimeRoot, id, true).catch((e: unknown) => {
      if (!/does not exist/.test(errorMessage(e))) throw e;
    });
  }
  // lxr-monitor passes the pipes its log thread reads on fds 5 and 6 (stdout, stderr), which
  // keeps the two streams apart in the log; without them, both go to the log file as they are.
  // --log-driver none: the output goes nowhere
  const noLog = readRecordById(ctx, id)?.settings.flags?.log?.driver === 'none';
  const logFd = noLog ? openSync('/dev/null', 'w') : openSync(logPath(ctx, id), 'a', 0o640);
  const nullFd = openSync('/dev/null', 'r');
  const piped = !noLog && isFifo(5) && isFifo(6);
  const [outFd, errFd] = piped ? [5, 6] : [logFd, logFd];
  try {
    let l: Launched;
    try {
      l = await launch(ctx, id, [nullFd, outFd, errFd], undefined, process.ppid);
    } catch (e) {
      report(`error ${errorMessage(e)}`);
      if (restart) process.stderr.write(`lxr monitor ${id}: restart failed: ${errorMessage(e)}\n`);
      await updateRecord(ctx, id, (r) => {
        r.exitCode = 127;
        r.finishedAt = new Date().toISOString();
      });
      await finish(ctx, id);
      return 1;
    }
    l.child.detach();
    // the report lxr-monitor reads: the init's pid, and the limits its log thread rotates by
    // (--log-opt max-size, max-file: docker's json-file driver keeps one file without max-file)
    const log = readRecordById(ctx, id)?.settings.flags?.log;
    writeSync(4, `${l.pid} ${log?.maxSize ?? 0} ${log?.maxFile ?? 1}\n`);
    closeSync(4);
    try {
      if (readRecordById(ctx, id)?.settings.ide) await startIdeIn(ctx, id, outFd, errFd);
    } catch (e) {
      if (!restart) {
        // the init is the monitor's now: stopping it ends in __cleanup, which releases everything
        await updateRecord(ctx, id, (r) => {
          r.stopRequested = true;
        });
        await rtDelete(ctx.runtimeRoot, id, true).catch(() => {});
        report(`error --ide: starting code-server: ${errorMessage(e)}`);
        return 1;
      }
      process.stderr.write(`lxr monitor ${id}: --ide: ${errorMessage(e)}\n`);
    }
    report('ok');
    return 0;
  } finally {
    closeSync(logFd);
    closeSync(nullFd);
    if (piped) {
      closeSync(5);
      closeSync(6);
    }
  }
}

function isFifo(fd: number): boolean {
  try {
    return fstatSync(fd).isFIFO();
  } catch {
    return false;
  }
}

/**
 * `lxr __cleanup ID STATUS`, run by lxr-monitor once the init is reaped: record the exit and
 * either ask for a restart (RESTART_STATUS) or release what the container used.
 */
export async function cleanupMain(ctx: LxrContext, id: string, status: number): Promise<number> {
  await recordExit(ctx, id, status);
  const r = readRecordById(ctx, id);
  if (r && shouldRestart(r)) return RESTART_STATUS;
  await finish(ctx, id);
  return 0;
}

/** The address code-server listens on in the container's network namespace. */
export function ideListenAddress(s: Pick<ContainerRecord['settings'], 'network' | 'ideBind'>): string {
  return s.network === 'host' ? (s.ideBind ?? '127.0.0.1') : '0.0.0.0';
}

/** code-server in the running container (a detached exec; the monitor is its parent and reaps it). */
async function startIdeIn(ctx: LxrContext, id: string, outFd: number, errFd: number): Promise<void> {
  const rec = readRecordById(ctx, id)!;
  const { startIde } = await import('../ide/index.js');
  const spec = JSON.parse(readFileSync(join(containerDir(ctx, id), 'bundle', 'config.json'), 'utf8'));
  const nullFd = openSync('/dev/null', 'r');
  try {
    await startIde({
      root: ctx.runtimeRoot, id, process: { ...spec.process, ...ideUser(rec, spec.process, spec.root.path) },
      port: rec.settings.network === 'host' ? rec.settings.idePort! : IDE_CONTAINER_PORT, password: rec.settings.idePassword!, stdio: [nullFd, outFd, errFd],
      // in the host's network namespace code-server itself must listen on the chosen address;
      // in the container's own, on every address, for the published port's DNAT to reach it
      host: ideListenAddress(rec.settings),
      dataDir: (await import('../ide/profile.js')).IDE_DATA_MOUNT,
      ...devcontainerWorkspace(rec, spec.mounts ?? []),
    });
    // not waited for here: it outlives this launcher and lxr-monitor reaps it
  } finally {
    closeSync(nullFd);
  }
}

/**
 * Who code-server runs as: the container's user, or a dev container's remoteUser (the user
 * the Dev Containers CLI runs the developer's commands as), with that user's HOME.
 */
function ideUser(rec: ContainerRecord, proc: Process, rootfs: string): Pick<Process, 'user' | 'env'> {
  const name = devcontainerRemoteUser(rec);
  if (!name) return { user: proc.user, env: proc.env ?? [] };
  try {
    const u = resolveUser(rootfs, name);
    return { user: { uid: u.uid, gid: u.gid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) }, env: mergeEnv(proc.env ?? [], [`HOME=${u.home || '/'}`]) };
  } catch (e) {
    throw new LxrError(`--ide: the dev container's remoteUser "${name}": ${errorMessage(e)}`);
  }
}

/**
 * The folder code-server opens: a dev container's workspace (the mount of the folder the Dev
 * Containers CLI labelled it with), else the process's cwd (the image's WORKDIR or -w).
 */
function devcontainerWorkspace(rec: ContainerRecord, mounts: { source?: string; destination: string }[]): { workspace?: string } {
  const local = rec.settings.labels?.['devcontainer.local_folder'];
  const m = local ? mounts.find((x) => x.source === local) : undefined;
  return m ? { workspace: m.destination } : {};
}

/** native/build/lxr-monitor, built by `npm install` with the native library. */
function monitorExe(): string {
  const p = nativeBuildPath('lxr-monitor');
  if (!existsSync(p)) throw new LxrError(`${p} is missing: run "npm install" (it is built with the native library)`);
  return p;
}


export interface MonitorHandle {
  /** the bundle is ready: let the monitor create and start the container; resolves once it runs */
  go(): Promise<void>;
  /** preparation failed: the monitor exits without touching anything */
  abort(): Promise<void>;
}

/**
 * Start the monitor detached, before the container is prepared: node's start-up in the
 * monitor then overlaps the caller's preparation. Nothing happens until go().
 */
export function spawnMonitor(ctx: LxrContext, id: string): MonitorHandle {
  const errFd = openSync(join(containerDir(ctx, id), 'monitor.log'), 'a', 0o600);
  // fd 5: the container's log, which the monitor writes (stdout and stderr records)
  const logFd = openSync(logPath(ctx, id), 'a', 0o640);
  let child: ChildProcess;
  try {
    // the log's path too, for its rotation (in the log's directory)
    child = spawn(monitorExe(), [process.execPath, lxrBin(), id, logPath(ctx, id)], {
      detached: true,
      stdio: ['ignore', 'ignore', errFd, 'pipe', 'ignore', logFd],
      env: { ...process.env, ...contextEnv(ctx) },
    });
  } finally {
    closeSync(errFd);
    closeSync(logFd);
  }
  const sock = child.stdio[3] as Socket;
  sock.on('error', () => {});
  const exited = new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
    child.once('error', () => res());
  });
  let text = '';
  const line = new Promise<string>((res) => {
    sock.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) res(text.split('\n')[0]!);
    });
    sock.on('end', () => res(text.split('\n')[0] ?? ''));
    sock.on('close', () => res(text.split('\n')[0] ?? ''));
  });
  return {
    async go() {
      failPoint('monitor');
      sock.write('go\n');
      const l = await line;
      sock.destroy();
      if (l === 'ok') {
        child.unref();
        return;
      }
      // the monitor failed: it cleaned up after itself; wait for it so nothing is left when we return
      await exited;
      throw new LxrError(l.startsWith('error ') ? l.slice(6) : `the container monitor exited before starting the container (see ${join(containerDir(ctx, id), 'monitor.log')})`);
    },
    async abort() {
      sock.destroy();
      await exited;
    },
  };
}

/** Start the monitor detached and wait until it says the container runs (or why not). */
export async function startInBackground(ctx: LxrContext, id: string): Promise<void> {
  await spawnMonitor(ctx, id).go();
}
