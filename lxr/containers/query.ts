// ps, inspect and logs: read-only, and light (no runtime or image code is loaded for them).
import { closeSync, existsSync, openSync, readSync, fstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LxrContext } from '../context.js';
import { containerDir, getRecord, listRecords, logPath, readRecordById, type ContainerRecord, type ContainerStatus } from './store.js';
import { liveState } from './status.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    Rootfs: { Type: 'overlay', ...rootfsDriver(ctx, spec), Layers: r.layers, UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work'), MergedDir: join(dir, 'merged') },
    NetworkSettings: { Network: r.settings.network, IPAddress: r.ip ?? '', Ports: r.settings.ports, SandboxKey: r.netnsPath ?? '' },
    LogPath: logPath(ctx, r.id),
    Security: securityOf(r, spec),
    Spec: spec,
  };
}

/**
 * How the rootfs is mounted: root mounts the kernel's overlay on the host; rootless, the
 * container's plan mounts it inside the user namespace (the spec's mount on "/"), with the
 * kernel's overlay, and the user's id maps.
 */
function rootfsDriver(ctx: LxrContext, spec: unknown): Record<string, unknown> {
  if (!ctx.rootless) return { Driver: 'overlay', Rootless: false };
  const sp = spec as { mounts?: { destination: string; type?: string }[]; linux?: { uidMappings?: unknown; gidMappings?: unknown }; annotations?: Record<string, string> } | undefined;
  const maps = (k: 'uidMappings' | 'gidMappings'): unknown => {
    const a = sp?.annotations?.[`io.lxr.rootless.${k}`];
    return sp?.linux?.[k] ?? (a ? JSON.parse(a) : []);
  };
  const driver = sp?.annotations?.['io.lxr.rootless.rootfs'] ?? sp?.mounts?.find((m) => m.destination === '/')?.type ?? 'unknown';
  return { Driver: driver, Rootless: true, MountedIn: 'the container\'s user namespace', UidMappings: maps('uidMappings'), GidMappings: maps('gidMappings') };
}

/** What protects the container: its seccomp profile ("default", "unconfined" or the file), capabilities, no_new_privs. */
export function securityOf(r: ContainerRecord, spec: unknown): Record<string, unknown> {
  const p = (spec as { process?: { capabilities?: { effective?: string[]; bounding?: string[] }; noNewPrivileges?: boolean } } | undefined)?.process;
  const s = r.settings;
  return {
    Privileged: !!s.privileged,
    Seccomp: s.seccomp ?? (s.privileged ? 'unconfined' : 'default'),
    NoNewPrivileges: p ? !!p.noNewPrivileges : (s.noNewPrivileges ?? true),
    EffectiveCaps: p?.capabilities?.effective ?? [],
    BoundingCaps: p?.capabilities?.bounding ?? [],
    CapAdd: s.capAdd,
    CapDrop: s.capDrop,
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

