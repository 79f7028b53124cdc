// start, stop, restart, rm, ps, inspect, logs on lxr's containers.
import { closeSync, existsSync, openSync, readSync, fstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { killContainer as rtKill } from '../../runtime/container/kill.js';
import { liveState, monitorAlive, type LiveState } from './status.js';
import { LxrError } from '../../runtime/errors.js';
import type { LxrContext } from '../context.js';
import { containerDir, getRecord, listRecords, readRecordById, updateRecord, type ContainerRecord, type ContainerStatus } from './store.js';

export { liveState, type LiveState };
import { finish, logPath, prepareContainer, releaseContainer, removeFiles, startInBackground } from './launch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Release what a container whose monitor died left (mount, runtime state, network) and mark it exited. */
async function repairStale(ctx: LxrContext, r: ContainerRecord): Promise<void> {
  await releaseContainer(ctx, r);
  await updateRecord(ctx, r.id, (x) => {
    x.status = 'exited';
    delete x.pid;
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

/** The image's StopSignal (default SIGTERM), then SIGKILL to every process after `timeout` seconds. */
export async function stopContainer(ctx: LxrContext, ref: string, timeout = 10): Promise<ContainerRecord> {
  const r = getRecord(ctx, ref);
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
  if (!(await waitExited(ctx, r.id, timeout * 1000))) {
    try {
      await rtKill(ctx.runtimeRoot, r.id, 'SIGKILL', true);
    } catch {
      /* gone meanwhile */
    }
    if (!(await waitExited(ctx, r.id, 10000))) throw new LxrError(`container ${r.name}: still running 10 s after SIGKILL`);
  }
  // the monitor finishes (unmount, network) after it recorded the exit: wait for it too
  const end = Date.now() + 10000;
  for (;;) {
    const x = readRecordById(ctx, r.id);
    if (!x || !monitorAlive(x) || Date.now() > end) break;
    await sleep(20);
  }
  return readRecordById(ctx, r.id) ?? r;
}

export async function restartContainer(ctx: LxrContext, ref: string, timeout = 10): Promise<ContainerRecord> {
  await stopContainer(ctx, ref, timeout);
  return startContainer(ctx, ref);
}

/** Remove a container (its upper layer, logs and record; the image snapshots stay). */
export async function removeContainer(ctx: LxrContext, ref: string, force = false): Promise<ContainerRecord> {
  const r = getRecord(ctx, ref);
  const live = liveState(ctx, r);
  if (live.status === 'running') {
    if (!force) throw new LxrError(`cannot remove container ${r.name}: it is running (stop it first, or use -f)`);
    await stopContainer(ctx, r.id, 0);
  }
  const x = readRecordById(ctx, r.id);
  if (x) {
    await releaseContainer(ctx, x);
    await removeFiles(ctx, r.id);
  }
  return r;
}

export interface PsEntry {
  Name: string;
  Id: string;
  Image: string;
  Pid: number;
  IP: string;
  Status: string;
  State: ContainerStatus;
  ExitCode?: number;
  Created: string;
  Ports: string;
  Command: string;
}

function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'}`;
  return `${Math.round(h / 24)} days`;
}

export function formatPorts(r: ContainerRecord): string {
  return r.settings.ports.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}

export function psEntry(ctx: LxrContext, r: ContainerRecord): PsEntry {
  const live = liveState(ctx, r);
  let status: string;
  if (live.status === 'running') status = `Up ${ago(r.startedAt)}`;
  else if (live.status === 'created') status = 'Created';
  else status = `Exited (${live.exitCode ?? 'unknown'}) ${ago(r.finishedAt)} ago${live.stale ? ' (stale)' : ''}`.replace(' ago', r.finishedAt ? ' ago' : '');
  return {
    Name: r.name,
    Id: r.id,
    Image: r.imageRef,
    Pid: live.pid ?? 0,
    IP: r.ip ?? '',
    Status: status,
    State: live.status,
    ...(live.exitCode !== undefined ? { ExitCode: live.exitCode } : {}),
    Created: r.created,
    Ports: formatPorts(r),
    Command: (r.settings.command ?? []).join(' '),
  };
}

/** `lxr ps`: running containers, or all with `all`. */
export function listContainers(ctx: LxrContext, all = false): PsEntry[] {
  return listRecords(ctx)
    .map((r) => psEntry(ctx, r))
    .filter((e) => all || e.State === 'running');
}

export function inspectContainer(ctx: LxrContext, ref: string): Record<string, unknown> {
  const r = getRecord(ctx, ref);
  const live = liveState(ctx, r);
  const dir = containerDir(ctx, r.id);
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(join(dir, 'bundle', 'config.json'), 'utf8'));
  } catch {
    spec = undefined;
  }
  return {
    Id: r.id, Name: r.name, Image: r.imageRef, ImageDigest: r.imageDigest, Created: r.created,
    State: { Status: live.status, Running: live.status === 'running', Pid: live.pid ?? 0, ExitCode: live.exitCode ?? null, StartedAt: r.startedAt ?? null, FinishedAt: r.finishedAt ?? null, Stale: live.stale, RestartCount: r.restartCount },
    Config: r.settings, StopSignal: r.stopSignal ?? 'SIGTERM',
    Rootfs: { Type: 'overlay', Layers: r.layers, UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work'), MergedDir: join(dir, 'merged') },
    NetworkSettings: { Network: r.settings.network, IPAddress: r.ip ?? '', Ports: r.settings.ports, SandboxKey: r.netnsPath ?? '' },
    LogPath: logPath(ctx, r.id),
    Spec: spec,
  };
}

export interface LogsOptions {
  follow?: boolean;
  tail?: number;
  write?: (b: Buffer) => void;
}

function lastLines(buf: Buffer, n: number): Buffer {
  if (n <= 0) return Buffer.alloc(0);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let pos = end;
  for (let i = 0; i < n; i++) {
    const nl = buf.lastIndexOf(0x0a, pos - 1);
    if (nl < 0) return buf;
    pos = nl;
    if (i === n - 1) return buf.subarray(nl + 1);
  }
  return buf;
}

/** `lxr logs`: what the container wrote to stdout and stderr; with follow, until it exits. */
export async function containerLogs(ctx: LxrContext, ref: string, o: LogsOptions = {}): Promise<void> {
  const r = getRecord(ctx, ref);
  const write = o.write ?? ((b: Buffer) => process.stdout.write(b));
  const path = logPath(ctx, r.id);
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const all = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, all, got, size - got, got);
      if (n <= 0) break;
      got += n;
    }
    write(o.tail !== undefined ? lastLines(all.subarray(0, got), o.tail) : all.subarray(0, got));
    if (!o.follow) return;
    let offset = got;
    const chunk = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, offset);
      if (n > 0) {
        write(Buffer.from(chunk.subarray(0, n)));
        offset += n;
        continue;
      }
      const x = readRecordById(ctx, r.id);
      if (!x || liveState(ctx, x).status !== 'running') {
        // one last read: output written just before the exit
        const m = readSync(fd, chunk, 0, chunk.length, offset);
        if (m > 0) write(Buffer.from(chunk.subarray(0, m)));
        return;
      }
      await sleep(100);
    }
  } finally {
    closeSync(fd);
  }
}

export { finish };

