// ps, inspect and logs: read-only, and light (no runtime or image code is loaded for them).
import { closeSync, existsSync, openSync, readSync, fstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LxrContext } from '../context.js';
import { containerDir, getRecord, listRecords, logPath, readRecordById, type ContainerRecord, type ContainerStatus } from './store.js';
import { liveState } from './status.js';
import { mergeEnv } from './options.js';
import type { Spec } from '../../runtime/spec/types.js';
import type { ImageConfig } from '../../image-tool/unpack/layout.js';

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
  Labels: Record<string, string>;
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
    Labels: r.settings.labels ?? {},
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
  let spec: Spec | undefined;
  try {
    spec = JSON.parse(readFileSync(join(dir, 'bundle', 'config.json'), 'utf8')) as Spec;
  } catch {
    spec = undefined;
  }
  const image = imageConfigSync(ctx, r.imageDigest);
  const cfg = image?.config ?? {};
  const s = r.settings;
  const never = '0001-01-01T00:00:00Z';
  return {
    Id: r.id, Name: r.name, Image: r.imageRef, ImageDigest: r.imageDigest, Created: r.created,
    State: {
      Status: live.status, Running: live.status === 'running', Paused: false, Restarting: false, OOMKilled: false, Dead: false,
      Pid: live.pid ?? 0, ExitCode: live.exitCode ?? 0, Error: '', StartedAt: r.startedAt ?? never, FinishedAt: r.finishedAt ?? never,
      Stale: live.stale, RestartCount: r.restartCount,
    },
    RestartCount: r.restartCount,
    // docker's Config (capitalised keys) beside lxr's own create settings (lower-case keys)
    Config: {
      Hostname: spec?.hostname ?? r.id.slice(0, 12),
      User: s.user ?? cfg.User ?? '',
      Env: spec?.process?.env ?? mergeEnv(cfg.Env ?? [], s.env),
      Cmd: s.command?.length ? s.command : s.entrypoint ? null : (cfg.Cmd ?? null),
      Image: r.image,
      WorkingDir: s.workdir ?? cfg.WorkingDir ?? '',
      Entrypoint: s.entrypoint ?? cfg.Entrypoint ?? null,
      Labels: { ...(cfg.Labels ?? {}), ...(s.labels ?? {}) },
      Tty: s.tty, OpenStdin: s.interactive, StopSignal: r.stopSignal ?? 'SIGTERM',
      ...s,
    },
    StopSignal: r.stopSignal ?? 'SIGTERM',
    HostConfig: { NetworkMode: s.network, Privileged: !!s.privileged, ReadonlyRootfs: s.readOnly, AutoRemove: s.autoRemove, RestartPolicy: { Name: s.restart, MaximumRetryCount: 0 }, Binds: s.volumes.filter((v) => !v.tmpfs).map((v) => `${v.source}:${v.destination}${v.readonly ? ':ro' : ''}`) },
    Mounts: s.volumes.map((v) => (v.tmpfs
      ? { Type: 'tmpfs', Source: '', Destination: v.destination, Mode: '', RW: !v.readonly, Propagation: '' }
      : v.named
        ? { Type: 'volume', Name: v.source, Source: join(ctx.volumes, v.source, '_data'), Destination: v.destination, Driver: 'local', Mode: '', RW: !v.readonly, Propagation: '' }
        : { Type: 'bind', Source: v.source, Destination: v.destination, Mode: '', RW: !v.readonly, Propagation: 'rprivate' })),
    Rootfs: { Type: 'overlay', Layers: r.layers, UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work'), MergedDir: join(dir, 'merged') },
    NetworkSettings: { Network: s.network, IPAddress: r.ip ?? '', Ports: dockerPorts(r), SandboxKey: r.netnsPath ?? '' },
    LogPath: logPath(ctx, r.id),
    Security: securityOf(r, spec),
    Spec: spec,
  };
}

/** Published ports as docker shows them: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}. */
export function dockerPorts(r: ContainerRecord): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of r.settings.ports) (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp ?? '0.0.0.0', HostPort: String(p.hostPort) });
  return out;
}

/** The container's image config, read straight from the store's blobs (undefined if gone). */
export function imageConfigSync(ctx: LxrContext, manifestDigest: string): ImageConfig | undefined {
  const blob = (d: string) => JSON.parse(readFileSync(join(ctx.imageStore, 'blobs', ...d.split(':')), 'utf8')) as unknown;
  try {
    const m = blob(manifestDigest) as { config: { digest: string } };
    return blob(m.config.digest) as ImageConfig;
  } catch {
    return undefined;
  }
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

