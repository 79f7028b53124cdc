// The front end's container records: $LXR_ROOT/containers/<id>/container.json, written
// atomically (temp + fsync + rename) and changed only under one lock file
// ($LXR_ROOT/containers/.lock), so names stay unique across concurrent lxr processes.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { withExclusiveLock } from '../../native/lock.js';
import { LxrError } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';
import { writeFileAtomic } from '../../common/atomic.js';
import type { BrokenRecord, ContainerRecord } from '../core/types.js';

/** The container port code-server listens on with --ide. */
export const IDE_CONTAINER_PORT = 8443;

export const ID_RE = /^[0-9a-f]{64}$/;
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function containerDir(ctx: LxrContext, id: string): string {
  return join(ctx.containers, id);
}

/** The container's stdout and stderr (the monitor appends to it). */
export function logPath(ctx: LxrContext, id: string): string {
  return join(containerDir(ctx, id), 'ctr.log');
}

export function writeRecord(ctx: LxrContext, rec: ContainerRecord): void {
  // a --rm container's record does not outlive it: no fsync (~1-2 ms each, 5 per run)
  writeFileAtomic(join(containerDir(ctx, rec.id), 'container.json'), JSON.stringify(rec, null, 2), { mode: 0o600, durable: !rec.settings.autoRemove });
}

export function readRecordById(ctx: LxrContext, id: string): ContainerRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(containerDir(ctx, id), 'container.json'), 'utf8')) as ContainerRecord;
    // valid JSON is not yet a record (a hand edit, a torn write that happens to parse)
    return r && typeof r === 'object' && r.id === id && r.settings && typeof r.settings === 'object' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The record of `id` if it is broken, with the reason; undefined if it reads or is absent. */
export function brokenRecord(ctx: LxrContext, id: string): BrokenRecord | undefined {
  const file = join(containerDir(ctx, id), 'container.json');
  let text: string;
  let modified: string;
  try {
    text = readFileSync(file, 'utf8');
    modified = statSync(file).mtime.toISOString();
  } catch {
    return undefined;
  }
  let reason: string | undefined;
  try {
    const r = JSON.parse(text) as ContainerRecord;
    if (!r || typeof r !== 'object' || r.id !== id || !r.settings || typeof r.settings !== 'object') reason = 'not a container record of this id';
  } catch (e) {
    reason = text.length ? (e as Error).message : 'the file is empty';
  }
  if (!reason) return undefined;
  const name = /"name":\s*"([a-zA-Z0-9][a-zA-Z0-9_.-]*)"/.exec(text)?.[1];
  return { id, file, reason, modified, ...(name ? { name } : {}) };
}

/** The ids of the container directories (none when the store does not exist yet). */
function containerIds(ctx: LxrContext): string[] {
  try {
    return readdirSync(ctx.containers).filter((f) => ID_RE.test(f));
  } catch {
    return [];
  }
}

/** Every container whose record is broken. */
export function listBroken(ctx: LxrContext): BrokenRecord[] {
  return containerIds(ctx).map((id) => brokenRecord(ctx, id)).filter((b): b is BrokenRecord => !!b);
}

/** A broken container by name (if its text still holds it), full id or unique id prefix. */
export function findBroken(ctx: LxrContext, ref: string): BrokenRecord | undefined {
  const all = listBroken(ctx);
  return all.find((b) => b.name === ref) ?? (/^[0-9a-f]+$/.test(ref) ? all.filter((b) => b.id.startsWith(ref)) : []).find((_, __, a) => a.length === 1);
}

export function listRecords(ctx: LxrContext): ContainerRecord[] {
  const ids = containerIds(ctx);
  const out: ContainerRecord[] = [];
  for (const id of ids) {
    const r = readRecordById(ctx, id);
    if (r) out.push(r);
  }
  // ISO 8601 times sort as plain strings; localeCompare would load ICU's collator (~5 ms)
  return out.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
}

/** A container by name, full id or unique id prefix. */
export function findRecord(ctx: LxrContext, ref: string): ContainerRecord | undefined {
  const all = listRecords(ctx);
  const byName = all.find((r) => r.name === ref);
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const hits = all.filter((r) => r.id.startsWith(ref));
  if (hits.length > 1) throw new LxrError(`container id prefix "${ref}" is ambiguous: it matches ${hits.length} containers`);
  return hits[0];
}

export function getRecord(ctx: LxrContext, ref: string): ContainerRecord {
  const r = findRecord(ctx, ref);
  if (r) return r;
  const b = findBroken(ctx, ref);
  if (b) throw new LxrError(`container ${b.name ?? b.id.slice(0, 12)}: its record ${b.file} is broken (${b.reason}); \`lxr rm -f ${b.id.slice(0, 12)}\` removes what is left of it`);
  throw new LxrError(`no such container: "${ref}"`);
}

/** Run fn holding the containers lock (waiting for it without blocking the event loop). */
export async function withStoreLock<T>(ctx: LxrContext, fn: () => Promise<T> | T): Promise<T> {
  mkdirSync(ctx.containers, { recursive: true, mode: 0o700 });
  return withExclusiveLock(join(ctx.containers, '.lock'), fn);
}

/** Read-modify-write one record under the lock. Returns the new record (undefined if it is gone). */
export async function updateRecord(ctx: LxrContext, id: string, change: (r: ContainerRecord) => void): Promise<ContainerRecord | undefined> {
  return withStoreLock(ctx, () => {
    const r = readRecordById(ctx, id);
    if (!r) return undefined;
    change(r);
    writeRecord(ctx, r);
    return r;
  });
}

export function recordExists(ctx: LxrContext, id: string): boolean {
  return existsSync(join(containerDir(ctx, id), 'container.json'));
}
