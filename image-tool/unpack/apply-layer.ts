// Applies one layer changeset (image-spec layer.md) to a directory.
//   mode 'rootfs':   the directory holds the layers below; whiteouts delete from it.
//   mode 'snapshot': the directory starts empty and becomes an OverlayFS upper/lower layer:
//                    `.wh.NAME` becomes a 0/0 character device, `.wh..wh..opq` the
//                    trusted.overlay.opaque=y xattr, as the kernel's overlayfs.rst describes.
// Every path is resolved inside the directory (root-path.ts), files are written by us with
// O_EXCL|O_NOFOLLOW, and nothing is ever followed out of the tree.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { chmod, copyFile, lchown, link, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { getXattr, listXattrs, mknod, S_IFCHR, S_IFBLK, S_IFIFO, setFdTimesNs, setTimesNs, setXattr } from './libc.js';
import { cleanComponents, lstatOrNull, lstatOrNullSync, PathError, resolveInRootSync } from './root-path.js';
import type { TarEntry, TarReader } from './tar-reader.js';
import { UnpackError } from '../core/digest.js';

// Speed: the per-entry work below uses synchronous fs calls. On tmpfs or a page-cached disk an
// lstat, open or fchown takes about a microsecond, while the same call through fs/promises
// costs a round trip through libuv's thread pool and a promise: for images of tens of
// thousands of small files that round trip was most of the unpack time. Directories already
// resolved in this layer are cached (see `parent`), and a regular file's owner, mode and times
// are set on its open descriptor (fchown, fchmod, futimens) instead of by path.

export interface ApplyOptions {
  root: string;
  mode: 'rootfs' | 'snapshot';
  rootless: boolean;
  /** Names the layer in errors (its digest, or the blob path). */
  label: string;
  /** Snapshot mode: the snapshots below this one, top first, once they are complete. Needed only
   *  for hard links to files of lower layers and for directories this layer implies. */
  lowers?: () => Promise<string[]>;
  /** Rootless: paths of device nodes not made (shared by the layers of one rootfs), so that
   *  hard links to them, in this layer or a later one, are skipped too. */
  skippedDevices?: Set<string>;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
/**
 * In a user namespace (an ordinary user's unpack, run by lxr inside the namespace mapped with
 * their /etc/subuid ranges), as containers/storage does there: owners are set (the namespace
 * shifts them), device nodes cannot be made and are skipped, trusted.* xattrs cannot be set,
 * so an opaque directory is marked with user.overlay.opaque, which overlayfs reads when it is
 * mounted with "userxattr" (as the rootless mount of lxr is).
 */
export const IN_USERNS = inUserNamespace();
function inUserNamespace(): boolean {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') !== '0 0 4294967295';
  } catch {
    return false;
  }
}
const OVERLAY_OPAQUE = IN_USERNS ? 'user.overlay.opaque' : 'trusted.overlay.opaque';

/**
 * What an owner outside this user namespace means for its user, added to the error: the
 * process that made the namespace knows (native/userns.ts idMapHint) and passes it to the
 * unpacker it starts there (LXR_IDMAP_HINT, read by that unpacker's command line).
 */
let idMapHint = '';
export function setIdMapHint(hint: string | undefined): void {
  idMapHint = hint ?? '';
}

/** chown that says which image owner the user namespace does not map (EINVAL). */
function chownOrExplain(set: () => void, uid: number, gid: number): void {
  try {
    set();
  } catch (err) {
    if (IN_USERNS && errCode(err) === 'EINVAL') {
      const hint = idMapHint ? `: ${idMapHint}` : '';
      throw new PathError(`its owner uid ${uid} (gid ${gid}) is outside your user namespace${hint}`);
    }
    throw err;
  }
}
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Nanoseconds since the epoch: PAX times and the lower layers' times are kept exactly. */
interface Times {
  atime: bigint;
  mtime: bigint;
}

function lstatNsOrNull(p: string) {
  try {
    return lstatSync(p, { bigint: true });
  } catch {
    return null;
  }
}

interface Resolved {
  host: string;
  components: string[];
}

export function isOverlayWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

export async function applyLayer(tar: TarReader, opts: ApplyOptions): Promise<void> {
  const a = new LayerApplier(tar, opts);
  await a.run();
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

class LayerApplier {
  /** Real paths (no symlinks, joined with '/') that this layer created or changed. */
  private touched = new Set<string>();
  /** Directory times (and in rootless mode modes) to set once the layer's contents are in. */
  private dirTimes = new Map<string, Times>();
  private dirModes = new Map<string, number>();
  /** Directories of lower layers whose contents this layer changes: they keep their mtime (as umoci does). */
  private keepTimes = new Map<string, Times>();
  /** Snapshot mode: directories created only because an entry below them needed them. */
  private implicitDirs: string[][] = [];
  /** Snapshot mode: hard links whose target is in a lower layer. */
  private lowerLinks: { target: string[]; host: string }[] = [];
  /** Rootless: device nodes not made, so hard links to them are skipped too. */
  private skipped: Set<string>;
  /** Rootless: directories already checked by makeWritable. */
  private writableChecked = new Set<string>();
  /**
   * Entry names (cleaned components joined by '/') already resolved to a real directory in
   * this layer. Only this unpacker writes the tree, so a resolved directory stays one until
   * this layer removes a directory or a symlink: every such removal clears the cache.
   */
  private dirCache = new Map<string, Resolved>();
  private readonly root: string;
  private readonly snapshot: boolean;

  constructor(
    private readonly tar: TarReader,
    private readonly opts: ApplyOptions,
  ) {
    this.root = opts.root;
    this.snapshot = opts.mode === 'snapshot';
    this.skipped = opts.skippedDevices ?? new Set();
  }

  async run(): Promise<void> {
    for (;;) {
      const e = await this.tar.next();
      if (!e) break;
      try {
        await this.entry(e);
      } catch (err) {
        if (err instanceof UnpackError) throw err;
        if (err instanceof Error && err.name === 'TarFormatError') throw err;
        const msg = err instanceof PathError ? err.message : (err as Error).message;
        throw new UnpackError(`layer ${this.opts.label}: entry ${e.path}: ${msg}`);
      }
    }
    await this.tar.drain();
    if (this.snapshot) await this.fromLowers();
    for (const [host, t] of this.keepTimes) if (!this.dirTimes.has(host)) setTimesNs(host, t.atime, t.mtime);
    for (const [host, t] of this.dirTimes) setTimesNs(host, t.atime, t.mtime);
    for (const [host, mode] of this.dirModes) chmodSync(host, mode);
  }

  private rel(components: string[]): string {
    return components.join('/');
  }

  /** Resolves (creating what is missing) the directory named by `components`. */
  private parent(components: string[]): Resolved {
    const key = components.join('/');
    let p = this.dirCache.get(key);
    if (!p) {
      // Resume from the longest prefix already resolved: the walk's state after a prefix is
      // exactly that prefix's real components.
      let base: Resolved | undefined;
      let k = components.length - 1;
      for (; k > 0; k--) {
        base = this.dirCache.get(components.slice(0, k).join('/'));
        if (base) break;
      }
      p = resolveInRootSync(
        this.root,
        base ? components.slice(k) : components,
        {
          create: true,
          dir: true,
          whole: components,
          beforeCreate: (dir) => this.keepTime(dir),
          onCreate: (c) => {
            this.touched.add(this.rel(c));
            if (this.snapshot) this.implicitDirs.push(c);
          },
        },
        base ? base.components : [],
      )!;
      this.dirCache.set(key, p);
    }
    if (!this.touched.has(this.rel(p.components))) this.keepTime(p.host);
    if (this.opts.rootless) this.makeWritable(p.host);
    return p;
  }

  private keepTime(dir: string): void {
    // umoci lets the root directory's mtime move with its contents; lxr matches it.
    if (dir === this.root || this.keepTimes.has(dir) || this.dirTimes.has(dir)) return;
    const st = lstatNsOrNull(dir);
    if (st?.isDirectory()) this.keepTimes.set(dir, { atime: st.atimeNs, mtime: st.mtimeNs });
  }

  /** Rootless: a directory without owner write/search permission is opened up until the layer ends. */
  private makeWritable(dir: string): void {
    if (this.dirModes.has(dir) || this.writableChecked.has(dir)) return;
    const st = lstatOrNullSync(dir);
    if (st && (st.mode & 0o300) !== 0o300) {
      this.dirModes.set(dir, st.mode & 0o7777);
      chmodSync(dir, (st.mode & 0o7777) | 0o700);
    }
    if (st) this.writableChecked.add(dir);
  }

  /**
   * `host` (a directory or symlink) was removed: drop every cached resolution and every
   * pending time or mode change at or below it. Otherwise a symlink that takes its name later
   * in the layer would have those changes, made by path at the layer's end, follow it, maybe
   * out of the rootfs.
   */
  private forget(host: string): void {
    this.dirCache.clear();
    const below = `${host}/`;
    for (const m of [this.dirTimes, this.keepTimes, this.dirModes]) {
      for (const k of m.keys()) if (k === host || k.startsWith(below)) m.delete(k);
    }
    for (const k of this.writableChecked) if (k === host || k.startsWith(below)) this.writableChecked.delete(k);
  }

  /** Removes what is at `host` so that entry `e` can take its place (layer.md's replacement rules). */
  private removeExisting(host: string, e: TarEntry): { existing: Stats | null; opaque: boolean } {
    const existing = lstatOrNullSync(host);
    let opaque = false;
    if (existing && !(e.type === 'dir' && existing.isDirectory())) {
      // A directory replacing this layer's own whiteout must hide the lower directory.
      if (this.snapshot && e.type === 'dir' && isOverlayWhiteout(existing)) opaque = true;
      if (existing.isDirectory()) {
        rmSync(host, { recursive: true, force: true });
        this.forget(host);
      } else {
        unlinkSync(host);
        if (existing.isSymbolicLink()) this.forget(host);
      }
    }
    return { existing, opaque };
  }

  private async entry(e: TarEntry): Promise<void> {
    const comps = cleanComponents(e.path);
    if (comps.length === 0) {
      // "./": the attributes of the root directory itself.
      if (e.type === 'dir') this.metadata(this.root, e);
      return;
    }
    const base = comps[comps.length - 1]!;
    if (base.startsWith(WH)) return this.whiteout(comps.slice(0, -1), base);
    const parent = this.parent(comps.slice(0, -1));
    const host = join(parent.host, base);
    const real = [...parent.components, base];
    switch (e.type) {
      case 'file':
        // The common case first: create, and look at what is there only if that fails.
        await this.file(e, host);
        this.touched.add(this.rel(real));
        return;
      case 'dir': {
        let opaque = false;
        let isNew = true;
        try {
          mkdirSync(host, 0o700);
        } catch (err) {
          if (errCode(err) !== 'EEXIST') throw err;
          const r = this.removeExisting(host, e);
          opaque = r.opaque;
          isNew = !r.existing?.isDirectory() || opaque;
          if (isNew) mkdirSync(host, 0o700);
        }
        if (opaque) setXattr(host, OVERLAY_OPAQUE, Buffer.from('y'));
        if (isNew || !this.dirCache.has(comps.join('/'))) this.dirCache.set(comps.join('/'), { host, components: real });
        break;
      }
      case 'symlink':
        try {
          symlinkSync(e.linkname, host);
        } catch (err) {
          if (errCode(err) !== 'EEXIST') throw err;
          this.removeExisting(host, e);
          symlinkSync(e.linkname, host);
        }
        break;
      case 'link':
        this.removeExisting(host, e);
        this.hardlink(e, host);
        this.touched.add(this.rel(real));
        return; // the inode keeps its own attributes
      case 'char':
      case 'block':
        this.removeExisting(host, e);
        if (this.opts.rootless || IN_USERNS) {
          this.skipped.add(this.rel(real)); // an unprivileged user cannot make device nodes
          return;
        }
        mknod(host, (e.type === 'char' ? S_IFCHR : S_IFBLK) | e.mode, e.devmajor, e.devminor);
        break;
      case 'fifo':
        this.removeExisting(host, e);
        mknod(host, S_IFIFO | e.mode);
        break;
    }
    this.touched.add(this.rel(real));
    this.metadata(host, e);
  }

  /** A regular file: written, then owner, mode, xattrs and times set on the open descriptor. */
  private async file(e: TarEntry, host: string): Promise<void> {
    let fd: number;
    try {
      fd = openSync(host, CREATE_FILE, 0o600);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
      this.removeExisting(host, e);
      fd = openSync(host, CREATE_FILE, 0o600);
    }
    try {
      await this.tar.readBody((chunk) => {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      });
      if (!this.opts.rootless) chownOrExplain(() => fchownSync(fd, e.uid, e.gid), e.uid, e.gid);
      fchmodSync(fd, e.mode); // after chown, which clears setuid/setgid bits
      this.xattrs(host, e);
      setFdTimesNs(fd, host, e.atimeNs ?? e.mtimeNs, e.mtimeNs);
    } finally {
      closeSync(fd);
    }
  }

  private hardlink(e: TarEntry, host: string): void {
    const target = cleanComponents(e.linkname);
    if (target.length === 0) throw new PathError(`hard link to the root directory`);
    const tparent = resolveInRootSync(this.root, target.slice(0, -1), { dir: true });
    if (tparent && this.skipped.has(this.rel([...tparent.components, target[target.length - 1]!]))) return;
    const thost = tparent ? join(tparent.host, target[target.length - 1]!) : null;
    const st = thost ? lstatOrNullSync(thost) : null;
    if (!st || (this.snapshot && isOverlayWhiteout(st))) {
      if (this.snapshot && this.opts.lowers) {
        this.lowerLinks.push({ target, host });
        return;
      }
      throw new PathError(`hard link target ${e.linkname} does not exist`);
    }
    if (st.isDirectory()) throw new PathError(`hard link target ${e.linkname} is a directory`);
    linkSync(thost!, host);
  }

  private xattrs(host: string, e: TarEntry): void {
    // After chown and chmod: chown drops security.capability.
    for (const [name, value] of e.xattrs) {
      try {
        setXattr(host, name, value);
      } catch (err) {
        const code = errCode(err);
        if (code === 'EOPNOTSUPP') continue; // the filesystem has no xattrs of that namespace
        if (code === 'EPERM' && (this.opts.rootless || IN_USERNS || e.type === 'symlink')) continue; // trusted.*, security.* as non-root; user.* on symlinks
        throw err;
      }
    }
  }

  private metadata(host: string, e: TarEntry): void {
    const isDir = e.type === 'dir';
    if (!this.opts.rootless) chownOrExplain(() => lchownSync(host, e.uid, e.gid), e.uid, e.gid);
    // After chown, which clears setuid/setgid bits.
    if (e.type !== 'symlink') {
      if (isDir && this.opts.rootless) {
        this.dirModes.set(host, e.mode);
        chmodSync(host, e.mode | 0o700);
      } else {
        chmodSync(host, e.mode);
      }
    }
    this.xattrs(host, e);
    const t = { atime: e.atimeNs ?? e.mtimeNs, mtime: e.mtimeNs };
    if (isDir) this.dirTimes.set(host, t);
    else setTimesNs(host, t.atime, t.mtime);
  }

  private whiteout(parentComps: string[], base: string): void {
    if (this.snapshot) {
      const parent = this.parent(parentComps);
      if (base === OPAQUE) {
        setXattr(parent.host, OVERLAY_OPAQUE, Buffer.from('y'));
        return;
      }
      const name = base.slice(WH.length);
      const host = join(parent.host, name);
      const existing = lstatOrNullSync(host);
      if (existing) {
        // Whiteouts apply only to lower layers; for a directory of this layer that means opaque.
        if (existing.isDirectory()) setXattr(host, OVERLAY_OPAQUE, Buffer.from('y'));
        return;
      }
      mknod(host, S_IFCHR, 0, 0);
      return;
    }
    let parent;
    try {
      parent = resolveInRootSync(this.root, parentComps, { dir: true });
    } catch (e) {
      if (e instanceof PathError) return; // the parent is not a directory: nothing below to delete
      throw e;
    }
    if (!parent) return; // nothing below to delete
    const pst = lstatOrNullSync(parent.host);
    if (!pst?.isDirectory()) return;
    this.keepTime(parent.host);
    if (this.opts.rootless) this.makeWritable(parent.host);
    if (base === OPAQUE) {
      this.removeLower(parent.host, this.rel(parent.components));
    } else {
      const name = base.slice(WH.length);
      const rel = this.rel([...parent.components, name]);
      if (this.touched.has(rel)) return; // only lower layers' files are whited out
      const victim = join(parent.host, name);
      const st = lstatOrNullSync(victim);
      if (!st) return;
      rmSync(victim, { recursive: true, force: true });
      if (st.isDirectory() || st.isSymbolicLink()) this.forget(victim);
    }
  }

  /** Opaque whiteout in rootfs mode: delete every child not created by this layer, at any depth. */
  private removeLower(dir: string, rel: string): void {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const name = d.name;
      const childRel = rel ? `${rel}/${name}` : name;
      const child = join(dir, name);
      if (!this.touched.has(childRel)) {
        rmSync(child, { recursive: true, force: true });
        if (d.isDirectory() || d.isSymbolicLink()) this.forget(child);
      } else {
        const st = lstatOrNullSync(child);
        if (st?.isDirectory()) this.removeLower(child, childRel);
      }
    }
  }

  /** Snapshot mode: things that depend on the layers below (waits until they are complete). */
  private async fromLowers(): Promise<void> {
    if (this.lowerLinks.length === 0 && this.implicitDirs.length === 0) return;
    const lowers = this.opts.lowers ? await this.opts.lowers() : [];
    // Overlayfs copies a lower file up before linking to it; do the same.
    for (const { target, host } of this.lowerLinks) {
      const found = await lookupInLowers(lowers, target);
      if (!found || found.stat.isDirectory()) {
        throw new UnpackError(`layer ${this.opts.label}: entry ${host.slice(this.root.length)}: hard link target /${target.join('/')} does not exist`);
      }
      const parent = this.parent(found.components.slice(0, -1));
      const copy = join(parent.host, found.components[found.components.length - 1]!);
      if (!(await lstatOrNull(copy))) await copyUp(found.host, found.stat, copy);
      await link(copy, host);
    }
    // A directory this layer created only as a parent must look like the lower one it merges with.
    for (const comps of this.implicitDirs) {
      const found = await lookupInLowers(lowers, comps);
      if (!found || !found.stat.isDirectory()) continue;
      await copyAttributes(found.host, found.stat, join(this.root, ...comps));
    }
  }
}

async function copyAttributes(src: string, st: Stats, dst: string): Promise<void> {
  await lchown(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) await chmod(dst, st.mode & 0o7777);
  for (const name of listXattrs(src)) {
    if (name.startsWith('trusted.overlay.')) continue;
    const v = getXattr(src, name);
    if (v) setXattr(dst, name, v);
  }
  const ns = lstatSync(src, { bigint: true });
  setTimesNs(dst, ns.atimeNs, ns.mtimeNs);
}

async function copyUp(src: string, st: Stats, dst: string): Promise<void> {
  if (st.isFile()) await copyFile(src, dst, constants.COPYFILE_EXCL);
  else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
  else if (st.isFIFO()) mknod(dst, S_IFIFO | 0o600);
  else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const rdev = BigInt(st.rdev);
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    mknod(dst, (st.isCharacterDevice() ? S_IFCHR : S_IFBLK) | 0o600, major, minor);
  } else throw new PathError(`cannot copy ${src}: unsupported file type`);
  await copyAttributes(src, st, dst);
}

/**
 * Looks a path up through overlay lower layers (top first) the way overlayfs merges them:
 * whiteouts hide, opaque directories stop the search below them, a non-directory hides all
 * below it, and symlinks in parent components are followed in the merged view.
 */
export async function lookupInLowers(
  lowers: string[],
  components: string[],
): Promise<{ host: string; stat: Stats; components: string[] } | null> {
  const queue = [...components];
  let real: string[] = [];
  let contrib = lowers.map((_, i) => i);
  let links = 0;
  const recompute = async (comps: string[]) => {
    let c = lowers.map((_, i) => i);
    for (let i = 0; i < comps.length; i++) {
      const step = await mergeStep(lowers, c, comps.slice(0, i), comps[i]!);
      if (!step) return [];
      c = step.contrib;
    }
    return c;
  };
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      real.pop();
      contrib = await recompute(real);
      continue;
    }
    const step = await mergeStep(lowers, contrib, real, c);
    if (!step) return null;
    const last = queue.length === 0;
    if (last) return { host: step.host, stat: step.stat, components: [...real, c] };
    if (step.stat.isSymbolicLink()) {
      if (++links > 40) return null;
      const target = await readlink(step.host);
      if (target.startsWith('/')) real = [];
      queue.unshift(...target.split('/'));
      contrib = await recompute(real);
      continue;
    }
    if (!step.stat.isDirectory()) return null;
    real.push(c);
    contrib = step.contrib;
  }
  return null;
}

async function mergeStep(
  lowers: string[],
  contrib: number[],
  dir: string[],
  name: string,
): Promise<{ host: string; stat: Stats; contrib: number[] } | null> {
  let found: { host: string; stat: Stats } | null = null;
  const next: number[] = [];
  for (const i of contrib) {
    const p = join(lowers[i]!, ...dir, name);
    const st = await lstatOrNull(p);
    if (!st) continue;
    if (isOverlayWhiteout(st)) break;
    if (!found) found = { host: p, stat: st };
    if (!st.isDirectory() || !found.stat.isDirectory()) break;
    next.push(i);
    if (getXattr(p, OVERLAY_OPAQUE)?.toString() === 'y') break;
  }
  return found ? { ...found, contrib: next } : null;
}
