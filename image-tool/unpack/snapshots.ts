// Each layer into its own directory, as OverlayFS layers (whiteouts as 0/0 character devices,
// opaque directories as trusted.overlay.opaque=y). A snapshot is unpacked into a temp directory
// and renamed into place when complete, under a per-layer lock: a crash never leaves a half
// snapshot under the final name, and two callers never unpack the same layer twice.
import { availableParallelism } from 'node:os';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { withExclusiveLock } from '../../native/lock.js';
import { syncFs } from './libc.js';
import { blobPath, readImageConfig, readManifest, type Descriptor } from './layout.js';
import { snapshotName } from '../core/digest.js';
import { unpackLayer } from './layer.js';

export interface UnpackSnapshotsOptions {
  layout: string;
  manifest: string;
  /** Directory holding one snapshot directory per layer. */
  snapshots: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function ensureSnapshot(
  dir: string,
  name: string,
  layout: string,
  layer: Descriptor,
  diffID: string,
  lowers: () => Promise<string[]>,
): Promise<string> {
  const final = join(dir, name);
  if (await exists(final)) return final;
  return withExclusiveLock(join(dir, `.${name}.lock`), async () => {
    if (await exists(final)) return final; // another caller finished it while we waited
    // Leftovers of a crashed unpack of this layer: nobody else can be writing them (we hold the lock).
    for (const f of await readdir(dir)) {
      if (f.startsWith(`.tmp-${name}-`)) await rm(join(dir, f), { recursive: true, force: true });
    }
    const tmp = join(dir, `.tmp-${name}-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await mkdir(tmp, 0o755);
    try {
      await unpackLayer({
        blob: blobPath(layout, layer.digest, 'layer'),
        mediaType: layer.mediaType,
        dest: tmp,
        mode: 'snapshot',
        digest: layer.digest,
        diffID,
        lowers,
      });
      const fh = await open(tmp, 'r');
      try {
        syncFs(fh.fd, tmp); // everything written is on disk before the name says it is complete
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return final;
  });
}

export async function unpackSnapshots(opts: UnpackSnapshotsOptions): Promise<string[]> {
  const manifest = await readManifest(opts.layout, opts.manifest);
  const image = await readImageConfig(opts.layout, manifest);
  const diffIDs = image.rootfs!.diff_ids;
  await mkdir(opts.snapshots, { recursive: true });
  const dirs = diffIDs.map((id) => join(opts.snapshots, snapshotName(id)));
  const n = dirs.length;

  // Independent layers unpack in parallel. A layer only waits for the ones below it when it
  // has hard links into them or directories to merge; layers start bottom first, so all lower
  // ones are already running whenever one waits (no deadlock with a bounded pool).
  const done: Promise<string>[] = new Array(n);
  const resolvers: { resolve: (v: string) => void; reject: (e: unknown) => void }[] = [];
  for (let i = 0; i < n; i++) {
    done[i] = new Promise<string>((resolve, reject) => (resolvers[i] = { resolve, reject }));
    done[i]!.catch(() => {}); // observed through Promise.all below
  }
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < n && failed === undefined) {
      const i = next++;
      const lowers = async () => {
        await Promise.all(done.slice(0, i));
        return dirs.slice(0, i).reverse();
      };
      try {
        resolvers[i]!.resolve(await ensureSnapshot(opts.snapshots, snapshotName(diffIDs[i]!), opts.layout, manifest.layers[i]!, diffIDs[i]!, lowers));
      } catch (e) {
        failed ??= e;
        resolvers[i]!.reject(e);
      }
    }
  };
  const pool = Math.max(1, Math.min(n, availableParallelism()));
  await Promise.all(Array.from({ length: pool }, worker));
  if (failed !== undefined) throw failed;
  return Promise.all(done);
}
