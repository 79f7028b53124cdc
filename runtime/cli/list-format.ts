// What `list` prints: runc's table, its JSON, or the ids alone (-q).
import type { RuncState } from '../container/query.js';
import { table } from '../../common/cli/format.js';

export function formatList(list: RuncState[], quiet: boolean, format: string): string {
  if (quiet) return list.map((c) => c.id).join('\n');
  if (format === 'json') return JSON.stringify(list);
  return table([['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...list.map((c) => [c.id, String(c.pid), c.status, c.bundle, c.created, c.owner])]);
}
