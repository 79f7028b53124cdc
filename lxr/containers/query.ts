// ps, inspect and logs: read-only, and light (no runtime or image code is loaded for them).
import { closeSync, readSync, fstatSync, readFileSync, writeSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import { basename, dirname, join } from 'node:path';
import type { LxrContext } from '../core/context.js';
import { containerDir, getRecord, listBroken, listRecords, logPath, readRecordById } from './store.js';
import { liveState } from './status.js';
import { readHealth } from './health.js';
import { inodeOf, openLogFiles, type LogFile } from './logrotate.js';
import { changeWaker } from './wake.js';
import { mergeEnv } from './options.js';
import type { Spec } from '../../oci-spec/types.js';
import type { ImageConfig } from '../../image-tool/index.js';
import type { BrokenRecord, ContainerRecord, ContainerStatus, HealthState } from '../core/types.js';


export interface PsEntry {
  Name: string;
  Id: string;
  Image: string;
  Pid: number;
  IP: string;
  Status: string;
  State: ContainerStatus | 'broken';
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

/** The health-check state (docker's State.Health) of a container that has a check. */
function healthOf(ctx: LxrContext, r: ContainerRecord): HealthState | undefined {
  if (!r.settings.flags?.healthcheck) return undefined;
  return readHealth(ctx, r.id) ?? { Status: 'starting', FailingStreak: 0, Log: [] };
}

export function psEntry(ctx: LxrContext, r: ContainerRecord): PsEntry {
  const live = liveState(ctx, r);
  let status: string;
  if (live.status === 'running') {
    const health = healthOf(ctx, r);
    status = `Up ${ago(r.startedAt)}${health ? ` (${health.Status})` : ''}${live.monitorLost ? ' (monitor gone)' : ''}`;
  }
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
    Command: commandOf(ctx, r),
    Labels: r.settings.labels ?? {},
  };
}

/** The command the container runs, as podman's ps shows it: the process's args (image Entrypoint/Cmd or the user's). */
function commandOf(ctx: LxrContext, r: ContainerRecord): string {
  try {
    const spec = JSON.parse(readFileSync(join(containerDir(ctx, r.id), 'bundle', 'config.json'), 'utf8')) as { process?: { args?: unknown } };
    const args = spec.process?.args;
    if (Array.isArray(args) && args.length) return args.map(String).join(' ');
  } catch {
    /* no bundle (yet): the user's command, if any */
  }
  return [...(r.settings.entrypoint ?? []), ...(r.settings.command ?? [])].join(' ');
}

/** `lxr ps`: running containers, or all with `all`. */
export function listContainers(ctx: LxrContext, all = false): PsEntry[] {
  const rows = listRecords(ctx)
    .map((r) => psEntry(ctx, r))
    .filter((e) => all || e.State === 'running');
  // with -a, a container whose record cannot be read is shown too, marked broken with the reason
  if (all) for (const b of listBroken(ctx)) rows.push(brokenEntry(b));
  return rows;
}

function brokenEntry(b: BrokenRecord): PsEntry {
  return {
    Name: b.name ?? '', Id: b.id, Image: '', Pid: 0, IP: '', Status: `Broken (${b.file}: ${b.reason})`,
    State: 'broken', Created: b.modified, Ports: '', Command: '', Labels: {},
  };
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
      ...(healthOf(ctx, r) ? { Health: healthOf(ctx, r) } : {}),
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
    Rootfs: { Type: 'overlay', ...rootfsDriver(ctx, spec), Layers: r.layers, UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work'), MergedDir: join(dir, 'merged') },
    NetworkSettings: { Network: s.network, IPAddress: r.ip ?? '', Ports: dockerPorts(r), SandboxKey: r.netnsPath ?? '' },
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
  /** prefix each line with the time it was written (RFC 3339, nanoseconds), as docker's -t */
  timestamps?: boolean;
  /** only what was written at or after this time (see parseSince) */
  since?: string;
  /** where stdout records go (default: our stdout) */
  write?: (b: Buffer) => void;
  /** where stderr records go (default: our stderr) */
  writeErr?: (b: Buffer) => void;
}

/** One record of the log (lxr-monitor writes `TIME stdout|stderr F|P TEXT` lines, as conmon's k8s-file). */
interface LogRecord {
  time: string;
  ns: bigint;
  stream: 'stdout' | 'stderr';
  /** the end of a line (F), or part of one continued by the next record (P) */
  full: boolean;
  text: Buffer;
}

const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) (stdout|stderr) ([FP]) /;

/** Nanoseconds since the epoch of an RFC 3339 UTC time with up to 9 decimals. */
function timeNs(t: string): bigint {
  const m = /^(.*?:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return -1n;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return -1n;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * --since, as docker and podman take it: an RFC 3339 time (2024-01-02T03:04:05Z, or a date),
 * a Unix time in seconds (1700000000 or 1700000000.5), or a duration before now (10m, 1h30m, 45s).
 */
export function parseSince(s: string, now = Date.now()): bigint {
  if (/^\d+(\.\d{1,9})?$/.test(s)) {
    const [sec, frac = ''] = s.split('.');
    return BigInt(sec!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
  }
  const dur = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  if (dur && s !== '') {
    const ms = (Number(dur[1] ?? 0) * 3600 + Number(dur[2] ?? 0) * 60 + Number(dur[3] ?? 0)) * 1000;
    return BigInt(Math.round(now - ms)) * 1_000_000n;
  }
  const full = /^\d{4}-\d\d-\d\d$/.test(s) ? `${s}T00:00:00Z` : s;
  const ns = timeNs(full);
  if (ns < 0n) throw new LxrError(`--since ${s}: give a time (2024-01-02T03:04:05Z), a Unix time in seconds or a duration (10m, 1h30m)`);
  return ns;
}

/** Split complete lines of the log file into records. A line in no known format (a log from an older lxr) is stdout. */
function parseRecords(buf: Buffer): LogRecord[] {
  const out: LogRecord[] = [];
  let pos = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) break;
    const line = buf.subarray(pos, nl);
    pos = nl + 1;
    const head = RECORD.exec(line.subarray(0, 64).toString('latin1'));
    if (head) out.push({ time: head[1]!, ns: timeNs(head[1]!), stream: head[2] as 'stdout' | 'stderr', full: head[3] === 'F', text: line.subarray(head[0].length) });
    else out.push({ time: '', ns: 0n, stream: 'stdout', full: true, text: line });
  }
  return out;
}

/** The records of the last n lines (a line: records up to one that is full). */
function lastLineRecords(recs: LogRecord[], n: number): LogRecord[] {
  if (n <= 0) return [];
  let lines = 0;
  for (let i = recs.length - 1; i >= 0; i--) {
    if (recs[i]!.full && i !== recs.length - 1 && ++lines === n) return recs.slice(i + 1);
  }
  return recs;
}

/** `lxr logs`: what the container wrote, stdout to our stdout and stderr to our stderr; with follow, until it exits. */
export async function containerLogs(ctx: LxrContext, ref: string, o: LogsOptions = {}): Promise<void> {
  const r = getRecord(ctx, ref);
  const since = o.since !== undefined ? parseSince(o.since) : undefined;
  const sinks = {
    stdout: o.write ?? ((b: Buffer) => writeAllSync(1, b)),
    stderr: o.writeErr ?? ((b: Buffer) => writeAllSync(2, b)),
  };
  const lineStart = { stdout: true, stderr: true };
  const emit = (recs: LogRecord[]) => {
    for (const rec of recs) {
      if (since !== undefined && rec.time && rec.ns < since) continue;
      const parts: Buffer[] = [];
      if (o.timestamps && lineStart[rec.stream]) parts.push(Buffer.from(`${rec.time || '-'} `));
      parts.push(rec.text);
      if (rec.full) parts.push(NL);
      lineStart[rec.stream] = rec.full;
      sinks[rec.stream](Buffer.concat(parts));
    }
  };
  const path = logPath(ctx, r.id);
  const logOpts = r.settings.flags?.log;
  if (logOpts?.driver === 'none') throw new LxrError('configured logging driver does not support reading');
  // --log-opt max-file: the rotated files first, oldest first, then ctr.log, as docker's logs
  // reads its json-file driver's files; opened as one set, so a rotation meanwhile loses nothing
  const files = openLogFiles(path, logOpts?.maxFile);
  if (!files.length) return;
  let cur: LogFile = files[files.length - 1]!;
  try {
    const older = files.slice(0, -1).map((f) => {
      try {
        return readAll(f.fd);
      } finally {
        closeSync(f.fd);
      }
    });
    const all = readAll(cur.fd);
    // only whole lines: the monitor writes each record in one write, a torn end is still coming
    const whole = all.lastIndexOf(0x0a) + 1;
    const recs = parseRecords(Buffer.concat([...older, all.subarray(0, whole)]));
    emit(o.tail !== undefined ? lastLineRecords(recs, o.tail) : recs);
    if (!o.follow) return;
    let offset = whole;
    let pending = Buffer.alloc(0);
    const chunk = Buffer.alloc(65536);
    const readMore = (): boolean => {
      const n = readSync(cur.fd, chunk, 0, chunk.length, offset);
      if (n <= 0) return false;
      offset += n;
      const buf = Buffer.concat([pending, chunk.subarray(0, n)]);
      const end = buf.lastIndexOf(0x0a) + 1;
      emit(parseRecords(buf.subarray(0, end)));
      pending = Buffer.from(buf.subarray(end));
      return true;
    };
    // The file followed was rotated (the monitor writes no more to it once ctr.log names
    // another): its rest, then the files after it, then the new ctr.log. A reader slower than
    // max-file rotations finds its file dropped and goes on with the oldest kept, as docker's.
    const nextFile = (): boolean => {
      if (inodeOf(path) === cur.ino) return false;
      while (readMore());
      const set = openLogFiles(path, logOpts?.maxFile);
      const at = set.findIndex((f) => f.ino === cur.ino);
      for (const f of set.slice(0, at + 1)) closeSync(f.fd);
      const after = set.slice(at + 1);
      if (!after.length) return false;
      closeSync(cur.fd);
      for (const f of after) {
        cur = f;
        offset = 0;
        if (f !== after[after.length - 1]) {
          while (readMore());
          closeSync(f.fd);
        }
      }
      return true;
    };
    const catchUp = () => {
      do {
        while (readMore());
      } while (nextFile());
    };
    // woken by a write to the log (or a rotated one) or to the record, else every 100 ms
    const waker = changeWaker();
    const logName = basename(path);
    waker.watch(dirname(path), (file) => file === null || file === 'container.json' || file.startsWith(logName));
    try {
      for (;;) {
        catchUp();
        const x = readRecordById(ctx, r.id);
        if (!x || liveState(ctx, x).status !== 'running') {
          // one last read: output written just before the exit
          catchUp();
          return;
        }
        await waker.sleep(100);
      }
    } finally {
      waker.close();
    }
  } finally {
    closeSync(cur.fd);
  }
}

/** What fd holds now, from its start. */
function readAll(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, got);
    if (n <= 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

const NL = Buffer.from('\n');

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** fds whose reader went away (`lxr logs x | head`): the rest is dropped, quietly */
const closedFds = new Set<number>();

function writeAllSync(fd: number, b: Buffer): void {
  for (let off = 0; off < b.length && !closedFds.has(fd); ) {
    try {
      off += writeSync(fd, b, off, b.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') Atomics.wait(PAUSE, 0, 0, 2); // a non-blocking pipe that is full: let its reader catch up
      if (code === 'EPIPE') closedFds.add(fd);
      else throw e;
    }
  }
}
