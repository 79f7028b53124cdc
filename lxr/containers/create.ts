// `lxr create` / `lxr run`: resolve (or pull) the image, reserve the name, unpack the layer
// snapshots, mount the overlay, write the bundle and start the container. Every step that
// fails undoes what the earlier ones made (record, mount, runtime state, cgroup, network).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PullProgress } from '../../image-tool/index.js';
import { describeName, resolveImage, normalizeReference, readImageConfig, readManifest } from '../../image-tool/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { failPoint, trace, type LxrContext } from '../core/context.js';
import { IDE_CONTAINER_PORT, NAME_RE, containerDir, listRecords, readRecordById, withStoreLock, writeRecord } from './store.js';
import { checkNetworkMode } from './network.js';
import { checkPortFree } from './options.js';
import { publishAll } from './run-flags.js';
import { healthConfig } from './health.js';
import { prepareContainer, releaseContainer, removeUnrecordedDir, spawnMonitor, type MonitorHandle } from './launch.js';
import { prepareOverlay } from '../snapshots/overlay.js';
import { withStartCode } from './exit-codes.js';
import type { ContainerRecord, CreateSettings, ImageHealthcheck } from '../core/types.js';

export interface CreateOptions extends Partial<CreateSettings> {
  image: string;
  name?: string;
  /** pull even if the image is in the store */
  pull?: 'missing' | 'always' | 'never';
  onPullProgress?: (e: PullProgress) => void;
  /** a monitor started before the options were even parsed (startMonitorEarly) */
  early?: EarlyMonitor;
}

/**
 * A background container's monitor started as early as possible: its Node start-up (the
 * launcher's) then overlaps the whole of the creating command's work instead of part of it.
 * The container id is chosen now, and its directory made to hold monitor.log.
 */
export interface EarlyMonitor {
  id: string;
  monitor: MonitorHandle;
  /** taken by createAndStart; otherwise the caller must call dispose() */
  used: boolean;
  /** stop the monitor and remove the directory, unless a record was written (then discard owns it) */
  release(): Promise<void>;
  /** release() unless createAndStart took it */
  dispose(): Promise<void>;
}

export function startMonitorEarly(ctx: LxrContext): EarlyMonitor {
  const id = newId();
  const dir = containerDir(ctx, id);
  // the first directory mkdir made (undefined if all existed): release removes it again
  const made = mkdirSync(dir, { recursive: true, mode: 0o700 });
  const monitor = spawnMonitor(ctx, id);
  const early: EarlyMonitor = {
    id,
    monitor,
    used: false,
    async release() {
      await monitor.abort();
      if (!(await removeUnrecordedDir(ctx, id))) return;
      // and the parents it made, if nothing else was put there meanwhile (a usage error leaves nothing)
      for (let d = dirname(dir); made && d.length >= made.length; d = dirname(d)) {
        try {
          rmdirSync(d);
        } catch {
          break;
        }
      }
    },
    async dispose() {
      if (!early.used) await early.release();
    },
  };
  return early;
}

export function defaultSettings(o: CreateOptions, defaultNetwork = 'bridge'): CreateSettings {
  return {
    image: o.image,
    ...(o.command?.length ? { command: o.command } : {}),
    ...(o.entrypoint ? { entrypoint: o.entrypoint } : {}),
    env: o.env ?? [],
    ...(o.workdir ? { workdir: o.workdir } : {}),
    ...(o.user ? { user: o.user } : {}),
    ...(o.hostname ? { hostname: o.hostname } : {}),
    network: o.network ?? defaultNetwork,
    ports: o.ports ?? [],
    volumes: o.volumes ?? [],
    ...(o.memory ? { memory: o.memory } : {}),
    ...(o.cpus ? { cpus: o.cpus } : {}),
    ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
    readOnly: o.readOnly ?? false,
    capAdd: o.capAdd ?? [],
    capDrop: o.capDrop ?? [],
    restart: o.restart ?? 'no',
    tty: o.tty ?? false,
    interactive: o.interactive ?? false,
    autoRemove: o.autoRemove ?? false,
    ...(o.privileged ? { privileged: true } : {}),
    ...(o.seccomp ? { seccomp: o.seccomp } : {}),
    ...(o.seccompProfile ? { seccompProfile: o.seccompProfile } : {}),
    ...(o.noNewPrivileges !== undefined ? { noNewPrivileges: o.noNewPrivileges } : {}),
    ...(o.ide ? { ide: true } : {}),
    ...(o.ideBind ? { ideBind: o.ideBind } : {}),
    ...(o.idePort ? { idePort: o.idePort } : {}),
    ...(o.flags ? { flags: o.flags } : {}),
    ...(o.labels && Object.keys(o.labels).length ? { labels: o.labels } : {}),
  };
}

/** The image's manifest digest in the store, pulling it first if needed. */
export async function ensureImage(ctx: LxrContext, image: string, pull: CreateOptions['pull'] = 'missing', onProgress?: (e: PullProgress) => void, platform?: string): Promise<{ ref: string; digest: string }> {
  let ref: string;
  try {
    ref = normalizeReference(image);
  } catch (e) {
    throw new LxrError(`invalid image reference "${image}": ${errorMessage(e)}`);
  }
  let digest = pull === 'always' ? undefined : await resolveImage(ctx.imageStore, image, platform);
  if (!digest) {
    if (pull === 'never') throw new LxrError(`image ${describeName(image)} is not in store ${ctx.imageStore}`);
    failPoint('pull');
    try {
      // the registry client (undici) is loaded only when a pull is needed
      const { pullImage } = await import('../../image-tool/index.js');
      const r = await pullImage({ reference: image, store: ctx.imageStore, ...(onProgress ? { onProgress } : {}), ...(platform ? { platform } : {}) });
      ref = r.reference;
      digest = r.manifestDigest;
    } catch (e) {
      throw new LxrError(`pulling ${describeName(image)}: ${errorMessage(e)}`);
    }
  }
  return { ref, digest };
}

/** A layer's snapshot directory name, as the image library's snapshotName (':' cannot be in a lowerdir). */
export function snapshotDirName(diffID: string): string {
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(diffID);
  if (!m) throw new LxrError(`invalid diff ID "${diffID}" in the image config`);
  return `${m[1]}-${m[2]}`;
}

/** The host address code-server is served on: --ide-bind, or 127.0.0.1. */
export function ideBindAddress(s: Pick<CreateSettings, 'ideBind'>): string {
  return s.ideBind ?? '127.0.0.1';
}

/** --ide: publish code-server's port (bridge) or use it on the host (host network), pick a password. */
async function planIde(s: CreateSettings): Promise<void> {
  if (s.network === 'none') throw new LxrError('--ide needs a network to reach code-server on: use --network bridge or host');
  const { randomPassword } = await import('../ide/index.js');
  s.idePort ??= IDE_CONTAINER_PORT;
  s.idePassword = randomPassword();
  // on the host's loopback only, unless --ide-bind says otherwise (with --network host too)
  if (s.network !== 'host') s.ports = [...s.ports, { hostPort: s.idePort, containerPort: IDE_CONTAINER_PORT, protocol: 'tcp', hostIp: ideBindAddress(s) }];
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Set up a container up to the point where it can be started: record, snapshots, overlay,
 * bundle. Returns the record. On failure nothing is left behind.
 */
export async function createContainerRecord(ctx: LxrContext, o: CreateOptions, hooks: { reserved?: (rec: ContainerRecord) => void } = {}): Promise<ContainerRecord> {
  const settings = defaultSettings(o, ctx.defaultNetwork);
  if (settings.autoRemove && settings.restart !== 'no') throw new LxrError(`--rm conflicts with --restart ${settings.restart}: a container that is removed when it exits cannot be restarted`);
  if (settings.seccomp && settings.seccomp !== 'unconfined' && !settings.seccompProfile) {
    const { readProfile } = await import('../security/profile.js');
    settings.seccompProfile = readProfile(settings.seccomp);
  }
  if (ctx.rootless) {
    const { checkRootlessLimits, rootlessNetwork } = await import('../rootless/index.js');
    checkRootlessLimits(settings);
    if (o.network === undefined && !ctx.defaultNetwork) settings.network = rootlessNetwork();
  }
  if (settings.ide) await planIde(settings);
  if (o.name !== undefined && !NAME_RE.test(o.name)) throw new LxrError(`invalid container name "${o.name}": use letters, digits and "_.-", starting with a letter or digit`);
  await checkNetworkMode(ctx, settings.network, settings.ports);
  for (const p of settings.ports) await checkPortFree(p);
  // docker's words: an existing --cidfile may belong to a running container
  const cidfile = settings.flags?.cidfile;
  if (cidfile && existsSync(cidfile)) throw new LxrError(`Container ID file found, make sure the other container isn't running or delete ${cidfile}`, { exitCode: 125 });
  trace('create: checked flags');
  const platform = settings.flags?.platform;
  const { ref, digest } = await ensureImage(ctx, o.image, o.pull, o.onPullProgress, platform);
  trace('create: image resolved');
  const manifest = await readManifest(ctx.imageStore, digest);
  const image = await readImageConfig(ctx.imageStore, manifest);
  // the health check: the image's HEALTHCHECK, --health-* on top
  const hc = healthConfig((image.config as { Healthcheck?: ImageHealthcheck } | undefined)?.Healthcheck, settings.flags?.health);
  if (hc) (settings.flags ??= {}).healthcheck = hc;
  // -P: the exposed ports (the image's included) on free host ports
  await publishAll(settings, image.config?.ExposedPorts);
  if (platform) {
    const [os, arch, variant] = platform.split('/');
    const actual = `${image.os}/${image.architecture}${image.variant ? `/${image.variant}` : ''}`;
    if (image.os !== os || image.architecture !== arch || (variant && image.variant !== variant)) {
      throw new LxrError(`image with reference ${o.image} was found but does not match the specified platform: wanted ${platform}, actual: ${actual}`, { exitCode: 125 });
    }
  }
  const layers = image.rootfs!.diff_ids.map((d) => join(ctx.snapshots, snapshotDirName(d)));
  const id = o.early?.id ?? newId();
  const name = o.name ?? `lxr_${id.slice(0, 12)}`;
  const rec: ContainerRecord = {
    id, name, image: o.image, imageRef: ref, imageDigest: digest, created: new Date().toISOString(),
    settings, layers, status: 'created', restartCount: 0,
    ...(settings.flags?.stopSignal ?? image.config?.StopSignal ? { stopSignal: settings.flags?.stopSignal ?? image.config!.StopSignal! } : {}),
  };
  await withStoreLock(ctx, () => {
    const clash = listRecords(ctx).find((r) => r.name === name);
    if (clash) throw new LxrError(`the container name "${name}" is already in use by container ${clash.id.slice(0, 12)}: remove it or pick another name`);
    mkdirSync(containerDir(ctx, id), { recursive: true, mode: 0o700 });
    writeRecord(ctx, rec);
  });
  try {
    hooks.reserved?.(rec);
    failPoint('snapshots');
    if (!layers.every((l) => existsSync(l)) && ctx.rootless) {
      // in the user's namespace, so that files keep their (shifted) owners
      const { unpackInUserns } = await import('../rootless/index.js');
      await unpackInUserns(ctx, digest);
    } else if (!layers.every((l) => existsSync(l))) {
      // the unpacker (tar, zstd, xattrs) is loaded only when a layer is not unpacked yet
      const { unpackSnapshots } = await import('../../image-tool/index.js');
      await unpackSnapshots({ layout: ctx.imageStore, manifest: digest, snapshots: ctx.snapshots });
    }
    trace('create: snapshots ready');
    prepareOverlay(containerDir(ctx, id), layers);
    await prepareContainer(ctx, rec);
    if (cidfile) writeCidfile(cidfile, id);
    trace('create: prepared');
  } catch (e) {
    await discard(ctx, rec);
    throw e;
  }
  return readRecordById(ctx, id) ?? rec;
}

function writeCidfile(file: string, id: string): void {
  try {
    writeFileSync(file, id, { flag: 'wx', mode: 0o644 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new LxrError(`Container ID file found, make sure the other container isn't running or delete ${file}`, { exitCode: 125 });
    throw new LxrError(`--cidfile ${file}: cannot write it (${code})`, { exitCode: 125 });
  }
}

/** Undo a create that failed half-way. */
export async function discard(ctx: LxrContext, rec: ContainerRecord): Promise<void> {
  await releaseContainer(ctx, rec).catch(() => {});
  const cidfile = rec.settings.flags?.cidfile;
  try {
    if (cidfile && readFileSync(cidfile, 'utf8') === rec.id) rmSync(cidfile, { force: true });
  } catch {
    /* not written */
  }
  await withStoreLock(ctx, async () => {
    if (ctx.rootless) await (await import('../rootless/index.js')).removeTree(containerDir(ctx, rec.id));
    else rmSync(containerDir(ctx, rec.id), { recursive: true, force: true });
  });
}

/** `lxr create` and `lxr run -d`: create, then start in the background under a monitor. */
export async function createAndStart(ctx: LxrContext, o: CreateOptions): Promise<ContainerRecord> {
  let monitor: MonitorHandle | undefined;
  if (o.early) {
    o.early.used = true;
    monitor = o.early.monitor;
  }
  let rec: ContainerRecord;
  try {
    rec = await createContainerRecord(ctx, o, { reserved: (r) => (monitor ??= spawnMonitor(ctx, r.id)) });
  } catch (e) {
    await (o.early ? o.early.release() : monitor?.abort());
    throw e;
  }
  try {
    await monitor!.go();
  } catch (e) {
    await discard(ctx, rec);
    throw withStartCode(e);
  }
  return readRecordById(ctx, rec.id) ?? rec;
}
