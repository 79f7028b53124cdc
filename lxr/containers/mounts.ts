// `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly]`, docker's long form of -v.
// Keys: type, source|src, target|destination|dst, readonly|ro[=true|false], volume-nocopy,
// tmpfs-size, tmpfs-mode; consistency and bind-propagation=rprivate are accepted (they
// change nothing here). A bind source must exist (docker refuses a missing one, unlike -v).
import { isAbsolute } from 'node:path';
import { statSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';
import type { VolumeMount } from '../core/types.js';

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const bool = (s: string, v: string | undefined): boolean => {
  if (v === undefined || v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new LxrError(`--mount ${s}: expected true or false, got "${v}"`);
};

export function parseMount(s: string): VolumeMount {
  const kv = new Map<string, string | undefined>();
  for (const part of s.split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    kv.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? undefined : part.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const source = kv.get('source') ?? kv.get('src') ?? '';
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  const known = new Set(['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro', 'volume-nocopy', 'tmpfs-size', 'tmpfs-mode', 'consistency', 'bind-propagation']);
  for (const k of kv.keys()) if (!known.has(k)) throw new LxrError(`--mount ${s}: unknown key "${k}"`);
  if (!target) throw new LxrError(`--mount ${s}: target= is required`);
  if (!isAbsolute(target)) throw new LxrError(`--mount ${s}: target "${target}" must be an absolute path`);
  const ro = kv.has('readonly') ? bool(s, kv.get('readonly')) : kv.has('ro') ? bool(s, kv.get('ro')) : false;
  const prop = kv.get('bind-propagation');
  if (prop !== undefined && prop !== 'rprivate' && prop !== 'private') throw new LxrError(`--mount ${s}: bind-propagation=${prop} is not supported (only rprivate)`);
  if (type === 'bind') {
    if (!isAbsolute(source)) throw new LxrError(`--mount ${s}: a bind mount needs source= an absolute host path`);
    try {
      statSync(source);
    } catch (e) {
      throw new LxrError(`--mount ${s}: bind source path ${source} does not exist (${(e as NodeJS.ErrnoException).code})`);
    }
    return { source, destination: target, readonly: ro, named: false };
  }
  if (type === 'volume') {
    // no source: an anonymous volume, named like docker's (64 hex digits)
    const name = source || Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0')).join('');
    if (!VOLUME_NAME.test(name)) throw new LxrError(`--mount ${s}: "${name}" is not a valid volume name`);
    return { source: name, destination: target, readonly: ro, named: true, ...(kv.has('volume-nocopy') && bool(s, kv.get('volume-nocopy')) ? { nocopy: true } : {}) };
  }
  if (type === 'tmpfs') {
    if (source) throw new LxrError(`--mount ${s}: a tmpfs mount takes no source`);
    const size = kv.get('tmpfs-size');
    const mode = kv.get('tmpfs-mode');
    if (size !== undefined && !/^\d+$/.test(size)) throw new LxrError(`--mount ${s}: tmpfs-size must be a number of bytes`);
    if (mode !== undefined && !/^[0-7]{1,4}$/.test(mode)) throw new LxrError(`--mount ${s}: tmpfs-mode must be octal, e.g. 1777`);
    return { source: 'tmpfs', destination: target, readonly: ro, named: false, tmpfs: { ...(size ? { size: Number(size) } : {}), ...(mode ? { mode: parseInt(mode, 8) } : {}) } };
  }
  throw new LxrError(`--mount ${s}: type must be bind, volume or tmpfs (got "${type}")`);
}
