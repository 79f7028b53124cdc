// What `list` prints: runc's table, its JSON, or the ids alone (-q).
import type { RuncState } from '../container/query.js';

export function formatList(list: RuncState[], quiet: boolean, format: string): string {
  if (quiet) return list.map((c) => c.id).join('\n');
  if (format === 'json') return JSON.stringify(list);
  return table(list.map((c) => [c.id, String(c.pid), c.status, c.bundle, c.created, c.owner]), ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']);
}

function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n');
}
