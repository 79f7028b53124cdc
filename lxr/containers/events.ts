// `lxr events`: container events as docker streams them (create, start, die, destroy), from
// this command's start on. lxr has no daemon to publish events, so this watches the container
// records: a record made, started, finished or removed after the command began is an event.
// The Dev Containers CLI starts `events --filter event=start` just before its `run`, and waits
// for the start of the container carrying its labels. The records are read again every
// 100 ms, and at once when inotify says the containers' directory or a record changed: the
// CLI waits for this event before its next step, so a poll's wait would be on its path.
import type { LxrContext } from '../core/context.js';
import { containerDir, listRecords } from './store.js';
import { changeWaker } from './wake.js';
import { LxrError } from '../../common/errors.js';
import type { ContainerRecord } from '../core/types.js';

export interface DockerEvent {
  status: string;
  id: string;
  from: string;
  Type: 'container';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

const EVENTS = ['create', 'start', 'die', 'destroy'];

export interface EventFilter {
  event?: string[];
  container?: string[];
  label?: string[];
  type?: string[];
}

export function parseEventFilters(items: string[]): EventFilter {
  const f: EventFilter = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const k = item.slice(0, eq) as keyof EventFilter;
    if (eq < 0 || !['event', 'container', 'label', 'type'].includes(k)) throw new LxrError(`--filter ${item}: expected event=, container=, label= or type=`);
    (f[k] ??= []).push(item.slice(eq + 1));
  }
  return f;
}

function matches(f: EventFilter, e: DockerEvent): boolean {
  if (f.type && !f.type.includes('container')) return false;
  if (f.event && !f.event.includes(e.Action)) return false;
  if (f.container && !f.container.some((c) => c === e.Actor.Attributes.name || (c.length > 0 && e.id.startsWith(c)))) return false;
  if (f.label && !f.label.every((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? l in e.Actor.Attributes : e.Actor.Attributes[l.slice(0, eq)] === l.slice(eq + 1);
  })) return false;
  return true;
}

function event(r: ContainerRecord, action: string, when: string | undefined): DockerEvent {
  const ms = when ? Date.parse(when) : Date.now();
  const attrs: Record<string, string> = { ...(r.settings.labels ?? {}), image: r.image, name: r.name };
  if (action === 'die') attrs.exitCode = String(r.exitCode ?? 0);
  return { status: action, id: r.id, from: r.image, Type: 'container', Action: action, Actor: { ID: r.id, Attributes: attrs }, scope: 'local', time: Math.floor(ms / 1000), timeNano: ms * 1e6 };
}

/**
 * Call emit for each event from `since` (ms; default: now) until signal aborts. Events of
 * containers that were made, started, stopped or removed at or after `since` are reported.
 */
export async function watchEvents(ctx: LxrContext, f: EventFilter, emit: (e: DockerEvent) => void, o: { since?: number; signal?: AbortSignal; intervalMs?: number } = {}): Promise<void> {
  const since = o.since ?? Date.now();
  const after = (iso: string | undefined) => !!iso && Date.parse(iso) >= since;
  // what has been reported for each container: its create time, start time and finish time
  const seen = new Map<string, { rec: ContainerRecord; created?: string; started?: string; finished?: string }>();
  for (const r of listRecords(ctx)) {
    seen.set(r.id, { rec: r, ...(after(r.created) ? {} : { created: r.created }), ...(after(r.startedAt) ? {} : { started: r.startedAt }), ...(after(r.finishedAt) ? {} : { finished: r.finishedAt }) });
  }
  const out = (e: DockerEvent) => {
    if (matches(f, e)) emit(e);
  };
  const waker = changeWaker();
  try {
    for (;;) {
      waker.watch(ctx.containers, () => true);
      const now = new Map(listRecords(ctx).map((r) => [r.id, r]));
      for (const [id, r] of now) {
        const s = seen.get(id) ?? { rec: r };
        if (!seen.has(id) && !after(r.created)) s.created = r.created;
        if (s.created !== r.created) out(event(r, 'create', r.created));
        if (r.startedAt && s.started !== r.startedAt && after(r.startedAt)) out(event(r, 'start', r.startedAt));
        // recordExit sets finishedAt and drops the pid in one write
        const died = !!r.finishedAt && !r.pid && s.finished !== r.finishedAt;
        if (died && after(r.finishedAt)) out(event(r, 'die', r.finishedAt));
        seen.set(id, { rec: r, created: r.created, ...(r.startedAt ? { started: r.startedAt } : {}), ...(died ? { finished: r.finishedAt } : s.finished ? { finished: s.finished } : {}) });
        // the record only: a container's log is in the same directory
        waker.watch(containerDir(ctx, id), (file) => file === null || file === 'container.json');
      }
      for (const [id, s] of seen) {
        if (!now.has(id)) {
          out(event(s.rec, 'destroy', undefined));
          seen.delete(id);
          waker.unwatch(containerDir(ctx, id));
        }
      }
      if (o.signal?.aborted) return;
      await waker.sleep(o.intervalMs ?? 100, o.signal);
      if (o.signal?.aborted) return;
    }
  } finally {
    waker.close();
  }
}

export { EVENTS };
