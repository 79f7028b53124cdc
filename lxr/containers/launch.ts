// Running a container's init and waiting for it. The process that creates the container
// through the runtime library is the init's parent, so it is the one that learns the exit
// code: a detached monitor process (`lxr __monitor ID`, like podman's conmon) for
// background containers, or the foreground `lxr run` itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createContainer as rtCreate } from '../../runtime/container/create.js';
import { startContainer as rtStart } from '../../runtime/container/start.js';
import { deleteContainer as rtDelete } from '../../runtime/container/delete.js';
import { procStat } from '../../runtime/container/state.js';
import { exitCodeOf } from '../../runtime/container/run.js';
import type { PlanChild } from '../../runtime/process/spawn.js';
import { native } from '../../native/index.js';
import { LxrError, errorMessage } from '../../runtime/errors.js';
import { contextEnv, failPoint, trace, type LxrContext } from '../context.js';
import { IDE_CONTAINER_PORT, containerDir, logPath, readRecordById, updateRecord, withStoreLock, type ContainerRecord } from './store.js';
import { mountOverlay, unmountOverlay } from '../snapshots/overlay.js';
import { setupNetwork, teardownNetwork } from './network.js';
import { buildSpec, writeBundle } from './spec.js';
import { readImageConfig, readManifest } from '../../image-tool/unpack/layout.js';

export { logPath };

/** Mount the rootfs, set up the network and write bundle/config.json: everything before create. */
export async function prepareContainer(ctx: LxrContext, rec: ContainerRecord): Promise<string> {
  const dir = containerDir(ctx, rec.id);
  failPoint('mount');
  const rootfs = mountOverlay(dir, rec.layers);
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
    const problem = ide.ideRootfsProblem(rootfs, rec.imageRef);
    if (problem) throw new LxrError(problem);
    const dataDir = process.env.LXR_IDE_DIR || join(ctx.root, 'ide');
    const install = ide.findCodeServer(dataDir) ?? (await ide.ensureCodeServer(dataDir, { onProgress: (p) => process.stderr.write(`lxr: --ide: ${p.message}\n`) }));
    extraMounts.push(...ide.ideMounts(install));
  }
  failPoint('spec');
  const spec = buildSpec({
    id: rec.id, name: rec.name, image, rootfs, settings: rec.settings, dir, volumesRoot: ctx.volumes,
    ...(net.netnsPath ? { netnsPath: net.netnsPath } : {}), extraMounts,
  });
  const bundle = writeBundle(dir, spec);
  await updateRecord(ctx, rec.id, (r) => {
    if (net.ip) r.ip = net.ip;
    else delete r.ip;
    if (net.netnsPath) r.netnsPath = net.netnsPath;
  });
  return bundle;
}

/** Undo prepareContainer and forget the runtime's container. Safe to call more than once. */
export async function releaseContainer(ctx: LxrContext, rec: ContainerRecord): Promise<void> {
  try {
    await rtDelete(ctx.runtimeRoot, rec.id, true);
  } catch {
    /* already gone */
  }
  await teardownNetwork(ctx, rec);
  unmountOverlay(containerDir(ctx, rec.id));
}

export interface Launched {
  pid: number;
  child: PlanChild;
}

/** Create and start the container through the runtime library; this process is the init's parent. */
export async function launch(ctx: LxrContext, id: string, stdio: [number, number, number], consoleFd?: number): Promise<Launched> {
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
  const me = procStat(process.pid)?.startTime ?? '';
  await updateRecord(ctx, id, (r) => {
    r.status = 'running';
    r.pid = record.pid;
    r.startedAt = new Date().toISOString();
    r.monitorPid = process.pid;
    r.monitorStart = me;
    delete r.exitCode;
    delete r.finishedAt;
  });
  return { pid: record.pid, child };
}

/** Wait for the init, record its exit code. Returns the code. */
export async function waitExit(ctx: LxrContext, id: string, l: Launched): Promise<number> {
  const [, status] = await native().wait(l.pid);
  l.child.detach();
  const code = exitCodeOf(status);
  trace('wait: exited');
  await rtDelete(ctx.runtimeRoot, id, true).catch(() => {});
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
  await withStoreLock(ctx, () => {
    const dir = containerDir(ctx, id);
    unmountOverlay(dir);
    rmSync(dir, { recursive: true, force: true });
  });
}

export function shouldRestart(r: ContainerRecord): boolean {
  if (r.stopRequested) return false;
  if (r.settings.restart === 'always') return true;
  return r.settings.restart === 'on-failure' && (r.exitCode ?? 0) !== 0;
}

/** The monitor: `lxr __monitor ID`, started detached by startInBackground. fd 3 is the readiness pipe. */
export async function monitorMain(ctx: LxrContext, id: string): Promise<number> {
  for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => {});
  // fd 3 is a socket to the lxr that started us. It starts us early, so that our start-up
  // overlaps its preparation, and says "go" once the bundle is ready (or closes: give up).
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
    return 0;
  }
  let reported = false;
  const report = (msg: string) => {
    if (reported) return;
    reported = true;
    sock.end(`${msg}\n`);
  };
  const logFd = openSync(logPath(ctx, id), 'a', 0o640);
  const nullFd = openSync('/dev/null', 'r');
  let first = true;
  let backoff = 100;
  try {
    for (;;) {
      let l: Launched;
      try {
        l = await launch(ctx, id, [nullFd, logFd, logFd]);
      } catch (e) {
        if (first) report(`error ${errorMessage(e)}`);
        else process.stderr.write(`lxr monitor ${id}: restart failed: ${errorMessage(e)}\n`);
        await updateRecord(ctx, id, (r) => {
          r.exitCode = 127;
          r.finishedAt = new Date().toISOString();
        });
        break;
      }
      try {
        if (readRecordById(ctx, id)?.settings.ide) await startIdeIn(ctx, id, logFd);
      } catch (e) {
        if (first) {
          report(`error --ide: starting code-server: ${errorMessage(e)}`);
          await rtDelete(ctx.runtimeRoot, id, true).catch(() => {});
          break;
        }
        process.stderr.write(`lxr monitor ${id}: --ide: ${errorMessage(e)}\n`);
      }
      if (first) report('ok');
      first = false;
      await waitExit(ctx, id, l);
      const r = readRecordById(ctx, id);
      if (!r || !shouldRestart(r)) break;
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 5000);
      // a stop that came during the back-off wins; only a real restart is counted
      const again = await updateRecord(ctx, id, (x) => {
        if (!x.stopRequested) x.restartCount++;
      });
      if (!again || again.stopRequested) break;
    }
  } finally {
    closeSync(logFd);
    closeSync(nullFd);
    await finish(ctx, id);
  }
  return 0;
}

/** code-server in the running container (a detached exec; the monitor is its parent and reaps it). */
async function startIdeIn(ctx: LxrContext, id: string, logFd: number): Promise<void> {
  const rec = readRecordById(ctx, id)!;
  const { startIde } = await import('../ide/index.js');
  const spec = JSON.parse(readFileSync(join(containerDir(ctx, id), 'bundle', 'config.json'), 'utf8'));
  const nullFd = openSync('/dev/null', 'r');
  try {
    const { pid } = await startIde({
      root: ctx.runtimeRoot, id, process: spec.process,
      port: rec.settings.network === 'host' ? rec.settings.idePort! : IDE_CONTAINER_PORT, password: rec.settings.idePassword!, stdio: [nullFd, logFd, logFd],
    });
    void native().wait(pid);
  } finally {
    closeSync(nullFd);
  }
}

/** The lxr entry script the monitor runs from (bin/lxr.js of this package). */
export function lxrBin(): string {
  if (process.env.LXR_BIN) return process.env.LXR_BIN;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const c = join(dir, 'bin', 'lxr.js');
    if (existsSync(c)) return c;
    dir = dirname(dir);
  }
  throw new LxrError('cannot find bin/lxr.js to start the container monitor (set LXR_BIN)');
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
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [lxrBin(), '__monitor', id], {
      detached: true,
      stdio: ['ignore', 'ignore', errFd, 'pipe'],
      env: { ...process.env, ...contextEnv(ctx) },
    });
  } finally {
    closeSync(errFd);
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
