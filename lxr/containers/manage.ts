// start, stop, restart, rm on lxr's containers (ps, inspect and logs are in query.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killContainer as rtKill } from '../../runtime/index.js';
import { liveState, monitorAlive, runtimeSaysAlive, type LiveState } from './status.js';
import { LxrError } from '../../common/errors.js';
import { trace, type LxrContext } from '../core/context.js';
import { containerDir, findBroken, findRecord, getRecord, readRecordById, updateRecord } from './store.js';
import { MONITOR_CLEANUP_TAKEN } from '../../native/plan.js';

export { liveState, type LiveState };
import { finish, prepareContainer, releaseContainer, removeFiles, startInBackground } from './launch.js';
import type { BrokenRecord, ContainerRecord } from '../core/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Release what a container whose monitor died left (mount, runtime state, network) and mark it exited. */
async function repairStale(ctx: LxrContext, r: ContainerRecord): Promise<void> {
  await releaseContainer(ctx, r);
  await updateRecord(ctx, r.id, (x) => {
    x.status = 'exited';
    delete x.pid;
    delete x.ip;
    delete x.monitorPid;
    delete x.monitorStart;
    x.finishedAt ??= new Date().toISOString();
  });
}

async function waitExited(ctx: LxrContext, id: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const r = readRecordById(ctx, id);
    if (!r || liveState(ctx, r).status !== 'running') return true;
    if (Date.now() >= end) return false;
    await sleep(25);
  }
}

/** Start a created or exited container in the background. */
export async function startContainer(ctx: LxrContext, ref: string): Promise<ContainerRecord> {
  const r = getRecord(ctx, ref);
  const live = liveState(ctx, r);
  if (live.status === 'running') return r;
  if (live.stale) await repairStale(ctx, r);
  await updateRecord(ctx, r.id, (x) => {
    delete x.stopRequested;
  });
  try {
    await prepareContainer(ctx, readRecordById(ctx, r.id)!);
    await startInBackground(ctx, r.id);
  } catch (e) {
    await releaseContainer(ctx, r).catch(() => {});
    throw e;
  }
  return readRecordById(ctx, r.id)!;
}

/**
 * --stop-signal or the image's StopSignal (default SIGTERM), then SIGKILL to every process
 * after `timeout` seconds (default: --stop-timeout, or 10; -1 waits for ever).
 */
export async function stopContainer(ctx: LxrContext, ref: string, time?: number): Promise<ContainerRecord> {
  const r = getRecord(ctx, ref);
  const timeout = time ?? r.settings.flags?.stopTimeout ?? 10;
  const live = liveState(ctx, r);
  if (live.stale) {
    await repairStale(ctx, r);
    return readRecordById(ctx, r.id)!;
  }
  if (live.status !== 'running') return r;
  await updateRecord(ctx, r.id, (x) => {
    x.stopRequested = true;
  });
  const signal = r.stopSignal || 'SIGTERM';
  try {
    await rtKill(ctx.runtimeRoot, r.id, signal, false);
  } catch {
    /* already stopped */
  }
  trace(`stop: ${signal} sent`);
  if (!(await waitExited(ctx, r.id, timeout < 0 ? 2 ** 31 - 1 : timeout * 1000))) {
    try {
      await rtKill(ctx.runtimeRoot, r.id, 'SIGKILL', true);
    } catch {
      /* gone meanwhile */
    }
    trace('stop: SIGKILL sent');
    if (!(await waitExited(ctx, r.id, 10000))) throw new LxrError(`container ${r.name}: still running 10 s after SIGKILL`);
  }
  trace('stop: exited');
  // no monitor to record the exit and release the container (it died): do it here
  if (live.monitorLost) {
    await repairStale(ctx, r);
    return readRecordById(ctx, r.id) ?? r;
  }
  // the monitor finishes (unmount, network) after it recorded the exit: wait for it too
  const end = Date.now() + 10000;
  for (;;) {
    const x = readRecordById(ctx, r.id);
    if (!x || !monitorAlive(x) || Date.now() > end) break;
    await sleep(20);
  }
  trace('stop: monitor done');
  return readRecordById(ctx, r.id) ?? r;
}

export async function restartContainer(ctx: LxrContext, ref: string, timeout?: number): Promise<ContainerRecord> {
  await stopContainer(ctx, ref, timeout);
  return startContainer(ctx, ref);
}

/**
 * rm -f of a running container, as docker's: SIGKILL. The monitor is told first (the file
 * MONITOR_CLEANUP_TAKEN beside the log) that this process releases the container, so once it
 * has reaped the init it ends without starting `lxr __cleanup`, a second Node process whose
 * start was most of rm -f's time. The record is marked stopRequested first, so that no
 * restart policy can start the container again meanwhile.
 */
async function killForRemoval(ctx: LxrContext, r: ContainerRecord): Promise<void> {
  await updateRecord(ctx, r.id, (x) => {
    x.stopRequested = true;
  });
  writeFileSync(join(containerDir(ctx, r.id), MONITOR_CLEANUP_TAKEN), '');
  try {
    await rtKill(ctx.runtimeRoot, r.id, 'SIGKILL', true);
  } catch {
    /* gone meanwhile */
  }
  trace('rm: SIGKILL sent');
  const end = Date.now() + 10000;
  // the init dies (the runtime says so), then the monitor reaps it and ends; a monitor that
  // had started __cleanup already (the container exited on its own just now) ends after it.
  // r names both processes (pid and start time): nothing here needs the record read again.
  while (runtimeSaysAlive(ctx, r) || monitorAlive(r)) {
    if (Date.now() > end) throw new LxrError(`container ${r.name}: still running 10 s after SIGKILL`);
    await sleep(5);
  }
  trace('rm: exited');
}

/** Remove a container (its upper layer, logs and record; the image snapshots stay). */
export async function removeContainer(ctx: LxrContext, ref: string, force = false): Promise<ContainerRecord> {
  const broken = findRecord(ctx, ref) ? undefined : findBroken(ctx, ref);
  if (broken) {
    if (!force) throw new LxrError(`container ${broken.name ?? broken.id.slice(0, 12)}: its record ${broken.file} is broken (${broken.reason}): use rm -f to remove what is left of it`);
    return removeBroken(ctx, broken);
  }
  const r = getRecord(ctx, ref);
  const live = liveState(ctx, r);
  if (live.status === 'running') {
    if (!force) throw new LxrError(`cannot remove container ${r.name}: it is running (stop it first, or use -f)`);
    if (live.monitorLost) await stopContainer(ctx, r.id, 0);
    else await killForRemoval(ctx, r);
  }
  const x = readRecordById(ctx, r.id);
  if (x) {
    await releaseContainer(ctx, x, { strict: true }); // what the runtime could not remove keeps the record
    trace('rm: released');
    await removeFiles(ctx, r.id);
    trace('rm: files removed');
  }
  return r;
}

/**
 * rm -f of a container whose record is broken: everything that can be found without it.
 * The runtime's state (process, cgroup), the network attachments the network layer keeps
 * per container id (veth, lease, rules, namespace), the overlay mount and the directory.
 */
async function removeBroken(ctx: LxrContext, b: BrokenRecord): Promise<ContainerRecord> {
  const { listAttachments } = await import('../network/manager/index.js');
  const { networkOptions } = await import('./network.js');
  const networks = [...new Set(listAttachments({ ...networkOptions(ctx), containerId: b.id }).map((a) => a.network))];
  const base = { id: b.id, name: b.name ?? b.id.slice(0, 12), settings: { network: 'none', ports: [] } } as unknown as ContainerRecord;
  for (const network of networks.length ? networks : ['none']) {
    await releaseContainer(ctx, { ...base, settings: { ...base.settings, network } });
  }
  await removeFiles(ctx, b.id);
  return base;
}

export { listContainers, inspectContainer, containerLogs, psEntry, formatPorts, type PsEntry, type LogsOptions } from './query.js';

export { finish };

