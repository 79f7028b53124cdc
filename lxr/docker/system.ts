// `lxr version` and `lxr info`: docker's shapes (Client/Server, and the engine summary), so
// that tools probing `version --format {{.Server.Version}}` or `info` find what they look for.
import { readFileSync } from 'node:fs';
import { arch, cpus, totalmem, release, hostname } from 'node:os';
import { join } from 'node:path';
import type { LxrContext } from '../core/context.js';
import { listRecords } from '../containers/store.js';
import { liveState } from '../containers/status.js';
import { packageRoot } from '../../native/paths.js';

/** docker's API version that lxr's CLI surface follows (docker 24). */
export const API_VERSION = '1.43';

export function lxrVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

const goArch = (): string => ({ x64: 'amd64', arm64: 'arm64', ia32: '386' } as Record<string, string>)[arch()] ?? arch();

export function versionInfo(): Record<string, unknown> {
  const v = lxrVersion();
  const part = { Version: v, ApiVersion: API_VERSION, Os: 'linux', Arch: goArch(), KernelVersion: release(), GoVersion: `node${process.versions.node}` };
  return { Client: { ...part, Platform: { Name: 'lxr' } }, Server: { ...part, Platform: { Name: 'lxr' }, Components: [{ Name: 'Engine', Version: v }] } };
}

export function systemInfo(ctx: LxrContext): Record<string, unknown> {
  const states = listRecords(ctx).map((r) => liveState(ctx, r).status);
  let images = 0;
  try {
    images = (JSON.parse(readFileSync(join(ctx.imageStore, 'index.json'), 'utf8')) as { manifests?: unknown[] }).manifests?.length ?? 0;
  } catch {
    /* no store yet */
  }
  return {
    ID: '', Name: hostname(),
    Containers: states.length, ContainersRunning: states.filter((s) => s === 'running').length, ContainersPaused: 0,
    ContainersStopped: states.filter((s) => s !== 'running').length, Images: images,
    Driver: 'overlay', DockerRootDir: ctx.root, OperatingSystem: 'linux', OSType: 'linux', Architecture: goArch(),
    KernelVersion: release(), NCPU: cpus().length, MemTotal: totalmem(), ServerVersion: lxrVersion(),
    Runtimes: { lxr: { path: 'lxr-runtime' } }, DefaultRuntime: 'lxr', CgroupVersion: '', SecurityOptions: ['name=seccomp,profile=default'],
  };
}
