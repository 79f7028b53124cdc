// lxr-image's unpacking library: layers into a rootfs (bundle) or into overlay snapshots.
export { unpackSnapshots, type UnpackSnapshotsOptions } from './snapshots.js';
export { unpackLayer, type UnpackLayerOptions } from './layer.js';
export { layerCompression } from './layer-stream.js';
export { UnpackError, snapshotName } from '../core/digest.js';
export { readManifest, readImageConfig, blobPath, type ImageConfig, type ImageManifest, type Descriptor } from './layout.js';
export { setIdMapHint } from './apply-layer.js';
