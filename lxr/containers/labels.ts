// Labels (`--label/-l K=V`, `--label-file`) and `ps --filter`, as docker documents them:
// label=K (has the key) or label=K=V, name= (part of the name), id= (id prefix), status=
// (created, running, exited, ...). Filters of different keys must all match; several of the
// same key match if any one does, except label, where each must match.
import { LxrError } from '../../common/errors.js';
import { readFlagFile } from './options.js';

export function parseLabels(items: string[], files: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (item: string, where: string) => {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key) throw new LxrError(`${where}: invalid label "${item}": expected KEY=VALUE`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  };
  for (const f of files) readFlagFile('--label-file', f, add);
  for (const l of items) add(l, '--label');
  return out;
}

export interface Filterable {
  id: string;
  name: string;
  status: string;
  labels: Record<string, string>;
}

const FILTER_KEYS = ['label', 'name', 'id', 'status'];
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export type Filters = Map<string, string[]>;

export function parseFilters(items: string[]): Filters {
  const f: Filters = new Map();
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq);
    if (!FILTER_KEYS.includes(key)) throw new LxrError(`--filter ${item}: expected one of ${FILTER_KEYS.map((k) => `${k}=...`).join(', ')}`);
    const value = item.slice(eq + 1);
    if (key === 'status' && !STATUSES.includes(value)) throw new LxrError(`--filter ${item}: status must be one of ${STATUSES.join(', ')}`);
    f.set(key, [...(f.get(key) ?? []), value]);
  }
  return f;
}

export function matchFilters(f: Filters, c: Filterable): boolean {
  for (const [key, values] of f) {
    if (key === 'label') {
      const all = values.every((v) => {
        const eq = v.indexOf('=');
        return eq < 0 ? v in c.labels : c.labels[v.slice(0, eq)] === v.slice(eq + 1);
      });
      if (!all) return false;
    } else if (key === 'name') {
      if (!values.some((v) => c.name.includes(v.replace(/^\//, '')))) return false;
    } else if (key === 'id') {
      if (!values.some((v) => c.id.startsWith(v))) return false;
    } else if (key === 'status') {
      if (!values.includes(c.status)) return false;
    }
  }
  return true;
}
