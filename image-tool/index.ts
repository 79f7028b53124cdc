// lxr-image as a library: what the lxr front end and tests call in-process. Pulls, pushes,
// archives and unpacking load their modules (HTTP client, tar, the layer applier) on first
// use, so that a caller that only reads the store does not pay for them.

export type { PullOptions, PullResult, PullProgress } from './registry/pull.js';
export type { PushOptions, PushResult, PushProgress } from './registry/push.js';
export type { SaveFormat, SaveOptions, LoadOptions, ImportOptions } from './layout/archive.js';
export type { UnpackSnapshotsOptions } from './unpack/snapshots.js';
export type { UnpackBundleOptions } from './bundle/unpack.js';
export type { ImageSummary, InspectResult, GcResult, StoreArg } from './layout/images.js';
export type { ImageStore } from './layout/store.js';
export { ImageError, type ImageErrorCode } from './core/errors.js';
export { parseReference, formatReference, normalizeReference, familiarName, describeName, type ImageReference } from './core/reference.js';
export { MediaType, hostPlatform, parsePlatform, formatPlatform, type Descriptor, type ImageManifest, type ImageIndex, type Platform } from './core/manifest.js';
export type { RegistriesConfig, RegistryOptions } from './registry/config.js';
export type { RemoteOptions } from './registry/session.js';
export type { ImageConfig } from './unpack/layout.js';
export { snapshotName } from './core/digest.js';
export { resolveInRootSync, PathError } from './unpack/root-path.js';
export { resolveUser, readFileInRoot, UserError } from './bundle/user.js';
export { configFromImage } from './bundle/config.js';
import { lazy, lazyAll } from '../common/lazy.js';

// the store (node:crypto and the layout code) loads on first use too
export const { readManifest, readImageConfig } = lazyAll(() => import('./unpack/layout.js'), ['readManifest', 'readImageConfig']);
// the store (node:crypto and the layout code) loads on first use too
export const { resolveImage, listImages, inspectImage, tagImage, removeImage, gcStore, findImage, openStore, readManifestBlob } = lazyAll(
  () => import('./layout/images.js'),
  ['resolveImage', 'listImages', 'inspectImage', 'tagImage', 'removeImage', 'gcStore', 'findImage', 'openStore', 'readManifestBlob'],
);
/** What a rootless unpack says about owners outside the user namespace (see apply-layer.ts). */
export const setIdMapHint = lazy(() => import('./unpack/apply-layer.js'), 'setIdMapHint');
export const pullImage = lazy(() => import('./registry/pull.js'), 'pullImage');
export const pushImage = lazy(() => import('./registry/push.js'), 'pushImage');
export const { login, logout } = lazyAll(() => import('./registry/login.js'), ['login', 'logout']);
export const { saveImages, loadImages, importRootfs } = lazyAll(() => import('./layout/archive.js'), ['saveImages', 'loadImages', 'importRootfs']);
/** Each layer of an image unpacked once into a shared snapshot directory (for OverlayFS). */
export const unpackSnapshots = lazy(() => import('./unpack/snapshots.js'), 'unpackSnapshots');
/** An image into an OCI runtime bundle: rootfs/ and config.json (umoci unpack). */
export const unpackBundle = lazy(() => import('./bundle/unpack.js'), 'unpackBundle');
/** unpackBundle as an ordinary user, inside a user namespace mapped with the user's /etc/subuid ranges. */
export const unpackBundleInUserns = lazy(() => import('./bundle/userns.js'), 'unpackBundleInUserns');
