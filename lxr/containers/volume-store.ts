// `lxr volume create|ls|inspect|rm`: named volumes as docker shows them. A volume is
// $LXR_ROOT/volumes/<name>/_data (what containers mount, see volumes.ts) plus volume.json
// (creation time and labels), written by `volume create` or on first use.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LxrError } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';
import { listRecords, withStoreLock } from './store.js';
import { writeFileAtomic } from '../../common/atomic.js';

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
}

function info(ctx: LxrContext, name: string): VolumeInfo | undefined {
  const dir = join(ctx.volumes, name);
  let st;
  try {
    st = statSync(dir);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return undefined;
  let meta: { CreatedAt?: string; Labels?: Record<string, string> } = {};
  try {
    meta = JSON.parse(readFileSync(join(dir, 'volume.json'), 'utf8'));
  } catch {
    /* made by a container's first mount: no metadata */
  }
  return { Name: name, Driver: 'local', Mountpoint: join(dir, '_data'), CreatedAt: meta.CreatedAt ?? st.birthtime.toISOString(), Labels: meta.Labels ?? {}, Scope: 'local', Options: {} };
}

export async function createVolume(ctx: LxrContext, name: string | undefined, labels: Record<string, string> = {}): Promise<VolumeInfo> {
  const n = name ?? randomBytes(32).toString('hex');
  if (!VOLUME_NAME.test(n)) throw new LxrError(`invalid volume name "${n}": use letters, digits and "_.-", starting with a letter or digit`);
  return withStoreLock(ctx, () => {
    const existing = info(ctx, n);
    if (existing) return existing; // docker: creating an existing volume is a no-op
    const dir = join(ctx.volumes, n);
    mkdirSync(join(dir, '_data'), { recursive: true, mode: 0o755 });
    writeFileAtomic(join(dir, 'volume.json'), JSON.stringify({ CreatedAt: new Date().toISOString(), Labels: labels }), { mode: 0o600 });
    return info(ctx, n)!;
  });
}

export function listVolumes(ctx: LxrContext): VolumeInfo[] {
  let names: string[];
  try {
    names = readdirSync(ctx.volumes).filter((n) => VOLUME_NAME.test(n)).sort();
  } catch {
    return [];
  }
  return names.map((n) => info(ctx, n)).filter((v): v is VolumeInfo => !!v);
}

export function inspectVolume(ctx: LxrContext, name: string): VolumeInfo {
  const v = VOLUME_NAME.test(name) ? info(ctx, name) : undefined;
  if (!v) throw new LxrError(`no such volume: "${name}"`);
  return v;
}

/** Remove a volume that no container (running or not) uses. */
export async function removeVolume(ctx: LxrContext, name: string): Promise<void> {
  inspectVolume(ctx, name);
  await withStoreLock(ctx, () => {
    const users = listRecords(ctx).filter((r) => r.settings.volumes.some((v) => v.named && v.source === name));
    if (users.length) throw new LxrError(`volume ${name} is in use by container ${users.map((u) => u.name).join(', ')}: remove the container first`);
    const dir = join(ctx.volumes, name);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });
}
