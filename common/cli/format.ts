// What the three CLIs print for people: aligned tables and sizes, one way each.

/**
 * Rows (the header first) as aligned columns, `gap` spaces apart, the last column unpadded,
 * as Go's tabwriter prints docker's, podman's and runc's tables.
 */
export function table(rows: string[][], gap = 3): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + gap))).join('').trimEnd()).join('\n');
}

/** A size in SI units with three significant digits, as docker prints it: 4.26MB, 123kB, 1.2GB. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 999.5 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}
