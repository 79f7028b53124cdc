// One layer blob into a directory: stream, verify, apply.
import { openLayerStream } from './layer-stream.js';
import { UnpackError } from '../core/digest.js';
import { TarReader } from './tar-reader.js';
import { applyLayer } from './apply-layer.js';

export interface UnpackLayerOptions {
  /** Path of the layer blob. */
  blob: string;
  mediaType: string;
  dest: string;
  mode: 'rootfs' | 'snapshot';
  /** No chown, no device nodes, no privileged xattrs: for an unprivileged user. */
  rootless?: boolean;
  /** If given, the blob is verified against it while it is read; errors name the layer by it. */
  digest?: string;
  /** If given, the uncompressed tar is verified against it (the image config's rootfs.diff_ids). */
  diffID?: string;
  /** Snapshot mode: the snapshot dirs below this layer, top first (hard links into lower layers are copied up). */
  lowers?: string[] | (() => Promise<string[]>);
  /** Rootless: device nodes skipped so far in this rootfs (pass the same set for each layer). */
  skippedDevices?: Set<string>;
}

export async function unpackLayer(opts: UnpackLayerOptions): Promise<void> {
  const label = opts.digest ?? opts.blob;
  const stream = openLayerStream({
    blob: opts.blob,
    mediaType: opts.mediaType,
    label,
    ...(opts.digest ? { digest: opts.digest } : {}),
    ...(opts.diffID ? { diffID: opts.diffID } : {}),
  });
  const lowers = opts.lowers;
  try {
    await applyLayer(new TarReader(stream.tar), {
      root: opts.dest,
      mode: opts.mode,
      rootless: opts.rootless ?? false,
      label,
      ...(opts.skippedDevices ? { skippedDevices: opts.skippedDevices } : {}),
      ...(lowers ? { lowers: typeof lowers === 'function' ? lowers : async () => lowers } : {}),
    });
  } catch (e) {
    stream.abort();
    const err = await stream.explain(e);
    throw err instanceof UnpackError ? err : new UnpackError(`layer ${label}: ${(err as Error).message}`);
  }
  await stream.verify();
}
