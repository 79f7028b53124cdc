// Tests' one ustar writer: small root-owned layers (files, directories, symlinks) with a
// fixed mtime, for the images the front-end and engine tests build.
export interface TarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char';
  data?: Buffer | string;
  /** symlink target */
  link?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** char: the device numbers */
  devmajor?: number;
  devminor?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarOf(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? Buffer.from(e.data ?? '') : Buffer.alloc(0);
    if (e.path.length > 100) throw new Error(`tarOf: path too long: ${e.path}`);
    const h = Buffer.alloc(512);
    h.write(e.path, 0, 'utf8');
    h.write(octal(e.mode ?? (e.type === 'file' ? 0o644 : 0o755), 8), 100);
    h.write(octal(e.uid ?? 0, 8), 108);
    h.write(octal(e.gid ?? 0, 8), 116);
    h.write(octal(data.length, 12), 124);
    h.write(octal(1_600_000_000, 12), 136);
    h.write('        ', 148);
    h.write(e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : e.type === 'char' ? '3' : '0', 156);
    if (e.type === 'char') {
      h.write(octal(e.devmajor ?? 0, 8), 329);
      h.write(octal(e.devminor ?? 0, 8), 337);
    }
    if (e.link) h.write(e.link, 157, 'utf8');
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A tar of regular files and directories (paths ending in '/'), from path -> content. */
export function tarOfFiles(files: Record<string, string | Buffer>): Buffer {
  return tarOf(Object.entries(files).map(([path, data]) => (path.endsWith('/') ? { path, type: 'dir' as const } : { path, type: 'file' as const, data })));
}
