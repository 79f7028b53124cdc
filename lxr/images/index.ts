// pull / images / rmi / gc: the image library, plus the layer snapshots lxr unpacks from it.
import { join } from 'node:path';
import { gcStore, listImages, pullImage, removeImage, type GcResult, type ImageSummary, type PullProgress, type PullResult, openStore, readManifestBlob, snapshotName } from '../../image-tool/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';
import { listRecords, withStoreLock } from '../containers/store.js';
import { removeUnusedSnapshots, unusedSnapshots } from '../snapshots/overlay.js';

export async function pull(ctx: LxrContext, reference: string, onProgress?: (e: PullProgress) => void): Promise<PullResult> {
  return pullImage({ reference, store: ctx.imageStore, ...(onProgress ? { onProgress } : {}) });
}

export async function images(ctx: LxrContext): Promise<ImageSummary[]> {
  return listImages(ctx.imageStore);
}

/** Snapshot directories of every image in the store. */
async function imageSnapshots(ctx: LxrContext): Promise<Set<string>> {
  const keep = new Set<string>();
  let s;
  try {
    s = await openStore(ctx.imageStore, false);
  } catch {
    return keep;
  }
  const visit = async (d: { digest: string; mediaType: string }): Promise<void> => {
    let p;
    try {
      p = await readManifestBlob(s, d as never);
    } catch {
      return;
    }
    if (p.kind === 'index') {
      for (const c of p.index.manifests) if (await s.hasBlob(c.digest)) await visit(c);
      return;
    }
    try {
      const cfg = JSON.parse((await s.readBlob(p.manifest.config.digest)).toString('utf8'));
      for (const id of cfg.rootfs?.diff_ids ?? []) keep.add(join(ctx.snapshots, snapshotName(id)));
    } catch {
      /* config missing */
    }
  };
  for (const { descriptor } of await s.refs()) await visit(descriptor);
  return keep;
}

export interface LxrGcResult {
  images: GcResult;
  snapshots: string[];
}

/** Remove blobs no image needs, and snapshots no image or container uses. */
export async function gc(ctx: LxrContext): Promise<LxrGcResult> {
  const imagesGc = await gcStore(ctx.imageStore);
  const snapshots = await withStoreLock(ctx, async () => {
    const keep = await imageSnapshots(ctx);
    for (const r of listRecords(ctx)) for (const l of r.layers) keep.add(l);
    if (!ctx.rootless) return removeUnusedSnapshots(ctx.snapshots, keep);
    // an ordinary user's snapshots hold files of their subordinate ids: removed in the user namespace
    const unused = unusedSnapshots(ctx.snapshots, keep);
    await (await import('../rootless/index.js')).removeInUserns(unused);
    return unused;
  });
  return { images: imagesGc, snapshots };
}

/** Remove an image name; refused while a container uses it unless force. Then gc. */
export async function rmi(ctx: LxrContext, reference: string, force = false): Promise<{ reference: string; gc: LxrGcResult }> {
  const users = listRecords(ctx).filter((r) => r.image === reference || r.imageRef === reference);
  if (users.length && !force) {
    throw new LxrError(`image ${reference} is used by container${users.length > 1 ? 's' : ''} ${users.map((u) => u.name).join(', ')}: remove them first, or use -f`);
  }
  let removed;
  try {
    removed = await removeImage(ctx.imageStore, reference);
  } catch (e) {
    throw new LxrError(errorMessage(e));
  }
  const users2 = listRecords(ctx).filter((r) => r.imageRef === removed.reference);
  if (users2.length && !force) throw new LxrError(`image ${removed.reference} is used by ${users2.map((u) => u.name).join(', ')}`);
  return { reference: removed.reference, gc: await gc(ctx) };
}

/**
 * `lxr gc`: what gc() removes, and the network state (leases, netns, port rules) of
 * containers that are gone. Errors of the network part are returned, one line each.
 */
export async function systemGc(ctx: LxrContext): Promise<LxrGcResult & { networks: { removed: string[]; errors: string[] } }> {
  const r = await gc(ctx);
  const { gcContainerNetworks } = await import('../containers/network.js');
  return { ...r, networks: await gcContainerNetworks(ctx) };
}
