// An image (manifest in an OCI layout) into an OCI runtime bundle: rootfs/ and config.json.
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomicAsync } from '../../common/atomic.js';
import { validateConfig } from '../../oci-spec/validators.generated.js';
import { configFromImage } from './config.js';
import { blobPath, readImageConfig, readManifest } from '../unpack/layout.js';
import { unpackLayer } from '../unpack/layer.js';
import { UnpackError } from '../core/digest.js';

export interface UnpackBundleOptions {
  layout: string;
  /** Digest of an image manifest blob in the layout. */
  manifest: string;
  bundle: string;
  rootless?: boolean;
}

export async function unpackBundle(opts: UnpackBundleOptions): Promise<void> {
  const { layout, bundle } = opts;
  const manifest = await readManifest(layout, opts.manifest);
  const image = await readImageConfig(layout, manifest);
  const diffIDs = image.rootfs!.diff_ids;

  // Claim the bundle: it may exist only as an empty directory. Creating rootfs/ without
  // `recursive` is the atomic claim, so two unpacks into one bundle cannot both proceed.
  let createdBundle = false;
  try {
    await mkdir(bundle, 0o700); // like umoci: the rootfs may hold setuid files, keep others out
    createdBundle = true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      await mkdir(dirname(bundle), { recursive: true });
      await mkdir(bundle, 0o700);
      createdBundle = true;
    } else if (code !== 'EEXIST') throw new UnpackError(`bundle ${bundle}: cannot create it: ${code}`);
  }
  if (!createdBundle) {
    const entries = await readdir(bundle).catch((e) => {
      throw new UnpackError(`bundle ${bundle}: ${(e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'exists and is not a directory' : (e as Error).message}`);
    });
    if (entries.length > 0) throw new UnpackError(`bundle ${bundle}: already exists and is not empty`);
  }
  const rootfs = join(bundle, 'rootfs');
  try {
    await mkdir(rootfs, 0o755);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new UnpackError(`bundle ${bundle}: already exists and is not empty`);
    throw e;
  }
  const skippedDevices = new Set<string>();
  try {
    for (let i = 0; i < manifest.layers.length; i++) {
      const layer = manifest.layers[i]!;
      await unpackLayer({
        blob: blobPath(layout, layer.digest, `layer ${i}`),
        mediaType: layer.mediaType,
        dest: rootfs,
        mode: 'rootfs',
        rootless: opts.rootless ?? false,
        digest: layer.digest,
        diffID: diffIDs[i]!,
        skippedDevices,
      });
    }
    let spec;
    try {
      spec = configFromImage(image, rootfs, { rootless: opts.rootless ?? false });
    } catch (e) {
      throw new UnpackError(`image config ${manifest.config.digest}: ${(e as Error).message}`);
    }
    if (!validateConfig(spec)) {
      const err = validateConfig.errors?.[0];
      throw new UnpackError(`generated config.json is invalid: ${err?.instancePath || '/'} ${err?.message ?? ''}`);
    }
    await writeFileAtomicAsync(join(bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`, { syncDir: true });
  } catch (e) {
    // Leave nothing half-written: remove what this call created.
    await rm(rootfs, { recursive: true, force: true });
    await rm(join(bundle, 'config.json'), { force: true });
    if (createdBundle) await rmdir(bundle).catch(() => {});
    throw e;
  }
}
