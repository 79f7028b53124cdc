// A streaming tar reader (ustar, PAX, GNU long names) that hands out entries one at a time and
// their contents as chunks, never holding a whole file in memory.
//
// Why not the `tar` package's Parser: its PAX parser keeps only the keys it knows (path, size,
// mtime, ...) and drops every `SCHILY.xattr.*` record, and it decodes the PAX block as UTF-8, which
// corrupts binary xattr values such as `security.capability`. layer.md requires xattrs, so the
// headers are parsed here, byte for byte.
import { LxrError } from '../../common/errors.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** The name as stored (PAX path, GNU long name or ustar prefix/name), not yet cleaned. */
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, with fractions when PAX gives them (a double: ~0.2 us precision). */
  mtime: number;
  atime?: number;
  /** The same times in exact nanoseconds (PAX keeps up to 9 decimals; umoci keeps them all). */
  mtimeNs: bigint;
  atimeNs?: bigint;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export class TarFormatError extends LxrError {
  override name = 'TarFormatError';
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.buffered += b.length;
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    const parts: Buffer[] = [];
    let need = take;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) {
        parts.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        parts.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.buffered -= take;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, take);
  }

  /** Up to n bytes as they arrive; at least one byte unless the stream has ended. */
  async readSome(n: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    return this.takeBuffered(n) ?? Buffer.alloc(0);
  }

  /** Up to n bytes already buffered, without waiting; null when nothing is buffered. */
  takeBuffered(n: number): Buffer | null {
    if (this.buffered === 0) return null;
    const first = this.chunks[0]!;
    if (first.length <= n) {
      this.chunks.shift();
      this.buffered -= first.length;
      return first;
    }
    this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return first.subarray(0, n);
  }

  /** Reads and discards the rest of the stream (so digests over the whole stream are complete). */
  async drain(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }
}

function cstring(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}

function parseNumber(b: Buffer, field: string): number {
  // GNU base-256: the high bit of the first byte is set; the value is big-endian two's complement.
  if (b[0]! & 0x80) {
    let v = BigInt(b[0]! & 0x7f);
    for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]!);
    if (b[0]! & 0x40) v -= 1n << BigInt(b.length * 8 - 1);
    return Number(v);
  }
  const s = cstring(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid octal ${field} field "${s}" in tar header`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumber(h.subarray(148, 156), 'checksum');
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

/** PAX records: "<len> <key>=<value>\n", len counting the whole record in bytes. */
function parsePax(buf: Buffer, into: Map<string, Buffer>): void {
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break;
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0) throw new TarFormatError('malformed PAX record (no length)');
    const len = parseInt(buf.subarray(pos, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= sp - pos || pos + len > buf.length) {
      throw new TarFormatError('malformed PAX record (bad length)');
    }
    const rec = buf.subarray(sp + 1, pos + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('malformed PAX record (no "=")');
    into.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const ZERO_BLOCK = Buffer.alloc(512);

export class TarReader {
  private src: ByteSource;
  private bodyRemain = 0;
  private padRemain = 0;
  private globalPax = new Map<string, Buffer>();

  constructor(stream: AsyncIterable<Buffer>) {
    this.src = new ByteSource(stream[Symbol.asyncIterator]());
  }

  /** The next entry, or null at the end of the archive. The previous body must be consumed or is skipped. */
  async next(): Promise<TarEntry | null> {
    await this.skipBody();
    let longName: string | undefined;
    let longLink: string | undefined;
    const pax = new Map<string, Buffer>();
    for (;;) {
      const h = await this.src.read(512);
      if (h.length === 0) return null; // no end blocks: accepted, as GNU tar does
      if (h.length < 512) throw new TarFormatError('truncated tar archive (partial header)');
      if (h.equals(ZERO_BLOCK)) return null; // end-of-archive marker
      if (!checksumOk(h)) throw new TarFormatError('invalid tar header checksum');
      const flag = String.fromCharCode(h[156]!);
      const size = parseNumber(h.subarray(124, 136), 'size');
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > 16 << 20) throw new TarFormatError(`tar metadata entry of ${size} bytes is too large`);
        const body = await this.src.read(size);
        if (body.length < size) throw new TarFormatError('truncated tar archive (in a metadata entry)');
        await this.src.read((512 - (size % 512)) % 512);
        if (flag === 'x') parsePax(body, pax);
        else if (flag === 'g') parsePax(body, this.globalPax);
        else if (flag === 'L') longName = cstring(body);
        else longLink = cstring(body);
        continue;
      }
      const magic = h.subarray(257, 263).toString('latin1');
      let name = cstring(h.subarray(0, 100));
      if (magic === 'ustar\0') {
        const prefix = cstring(h.subarray(345, 500));
        if (prefix) name = `${prefix}/${name}`;
      }
      const all = new Map([...this.globalPax, ...pax]);
      const str = (k: string) => all.get(k)?.toString('utf8');
      const num = (k: string) => {
        const v = str(k);
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n)) throw new TarFormatError(`invalid PAX ${k} "${v}"`);
        return n;
      };
      if (all.has('GNU.sparse.major') || all.has('GNU.sparse.size') || flag === 'S') {
        throw new TarFormatError(`sparse file ${name} is not supported (layer.md: sparse files SHOULD NOT be used)`);
      }
      let type = TYPES[flag];
      if (type === undefined) throw new TarFormatError(`unsupported tar entry type "${flag}" for ${name}`);
      const path = str('path') ?? longName ?? name;
      // Old (V7) archives mark directories only by a trailing slash.
      if (type === 'file' && flag !== '7' && path.endsWith('/')) type = 'dir';
      const xattrs = new Map<string, Buffer>();
      for (const [k, v] of all) {
        if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      }
      // PAX times as exact nanoseconds: "1796233108.897108188" does not fit a double
      const ns = (k: string): bigint | undefined => {
        const v = str(k);
        if (v === undefined) return undefined;
        const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v);
        if (!m) throw new TarFormatError(`invalid PAX ${k} "${v}"`);
        const t = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
        return m[1] ? -t : t;
      };
      const entrySize = num('size') ?? size;
      const entry: TarEntry = {
        path,
        type,
        mode: parseNumber(h.subarray(100, 108), 'mode') & 0o7777,
        uid: num('uid') ?? parseNumber(h.subarray(108, 116), 'uid'),
        gid: num('gid') ?? parseNumber(h.subarray(116, 124), 'gid'),
        size: type === 'file' ? entrySize : 0,
        mtime: num('mtime') ?? parseNumber(h.subarray(136, 148), 'mtime'),
        mtimeNs: ns('mtime') ?? BigInt(parseNumber(h.subarray(136, 148), 'mtime')) * 1_000_000_000n,
        linkname: str('linkpath') ?? longLink ?? cstring(h.subarray(157, 257)),
        devmajor: type === 'char' || type === 'block' ? parseNumber(h.subarray(329, 337), 'devmajor') : 0,
        devminor: type === 'char' || type === 'block' ? parseNumber(h.subarray(337, 345), 'devminor') : 0,
        xattrs,
      };
      const atime = num('atime');
      if (atime !== undefined) {
        entry.atime = atime;
        entry.atimeNs = ns('atime')!;
      }
      // Only regular files have data blocks; a size on a link, directory or device header is
      // ignored, as Go's archive/tar (umoci, containerd) and GNU tar do.
      const dataSize = type === 'file' ? entrySize : 0;
      this.bodyRemain = dataSize;
      this.padRemain = (512 - (dataSize % 512)) % 512;
      return entry;
    }
  }

  /** The current entry's content, chunk by chunk. */
  async *body(): AsyncGenerator<Buffer> {
    while (this.bodyRemain > 0) {
      const b = await this.src.readSome(Math.min(this.bodyRemain, 1 << 20));
      if (b.length === 0) throw new TarFormatError('truncated tar archive (in file data)');
      this.bodyRemain -= b.length;
      yield b;
    }
    await this.skipPad();
  }

  /**
   * The current entry's content handed to `sink` chunk by chunk. Chunks already buffered are
   * handed over without a trip through the event loop (most files fit in one chunk).
   */
  async readBody(sink: (chunk: Buffer) => void): Promise<void> {
    while (this.bodyRemain > 0) {
      const want = Math.min(this.bodyRemain, 1 << 20);
      const b = this.src.takeBuffered(want) ?? (await this.src.readSome(want));
      if (b.length === 0) throw new TarFormatError('truncated tar archive (in file data)');
      this.bodyRemain -= b.length;
      sink(b);
    }
    if (this.padRemain > 0) {
      const p = this.src.takeBuffered(this.padRemain);
      if (p && p.length === this.padRemain) this.padRemain = 0;
      else {
        if (p) this.padRemain -= p.length;
        await this.skipPad();
      }
    }
  }

  private async skipPad(): Promise<void> {
    if (this.padRemain > 0) {
      const p = await this.src.read(this.padRemain);
      if (p.length < this.padRemain) throw new TarFormatError('truncated tar archive (in padding)');
      this.padRemain = 0;
    }
  }

  private async skipBody(): Promise<void> {
    while (this.bodyRemain > 0) {
      const b = await this.src.readSome(Math.min(this.bodyRemain, 1 << 20));
      if (b.length === 0) throw new TarFormatError('truncated tar archive (in file data)');
      this.bodyRemain -= b.length;
    }
    await this.skipPad();
  }

  /** Consume whatever follows the end-of-archive marker, so a digest over the stream completes. */
  async drain(): Promise<void> {
    await this.src.drain();
  }
}
