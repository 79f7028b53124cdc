// lxr-image as a library: what the lxr front end and tests call in-process. Pulls, pushes,
// archives and unpacking load their modules (HTTP client, tar, the layer applier) on first
// use, so that a caller that only reads the store does not pay for them.
import type * as Pull from './registry/pull.js';
import type * as Push from './registry/push.js';
import type * as Login from './registry/login.js';
import type * as Archive from './layout/archive.js';
import type * as Snapshots from './unpack/snapshots.js';
import type * as Bundle from './bundle/unpack.js';
import type * as Userns from './bundle/userns.js';

export type { PullOptions, PullResult, PullProgress } from './registry/pull.js';
export type { PushOptions, PushResult, PushProgress } from './registry/push.js';
export type { SaveFormat, SaveOptions, LoadOptions, ImportOptions } from './layout/archive.js';
export type { UnpackSnapshotsOptions } from './unpack/snapshots.js';
export type { UnpackBundleOptions } from './bundle/unpack.js';
export {
  resolveImage,
  listImages,
  inspectImage,
  tagImage,
  removeImage,
  gcStore,
  findImage,
  openStore,
  describeName,
  readManifestBlob,
  type ImageSummary,
  type InspectResult,
  type GcResult,
  type StoreArg,
} from './layout/images.js';
export { ImageStore, DEFAULT_STORE, defaultStorePath, REF_NAME } from './layout/store.js';
export { ImageError, type ImageErrorCode } from './core/errors.js';
export { parseReference, formatReference, normalizeReference, familiarName, type ImageReference } from './core/reference.js';
export { MediaType, hostPlatform, parsePlatform, formatPlatform, type Descriptor, type ImageManifest, type ImageIndex, type Platform } from './core/manifest.js';
export type { RegistriesConfig, RegistryOptions } from './registry/config.js';
export type { RemoteOptions } from './registry/session.js';
export { readManifest, readImageConfig, snapshotName, type ImageConfig } from './unpack/layout.js';
export { resolveInRootSync, PathError } from './unpack/root-path.js';
export { resolveUser, readFileInRoot, UserError } from './bundle/user.js';
export { configFromImage } from './bundle/config.js';

export async function pullImage(o: Pull.PullOptions): Promise<Pull.PullResult> {
  return (await import('./registry/pull.js')).pullImage(o);
}
export async function pushImage(o: Push.PushOptions): Promise<Push.PushResult> {
  return (await import('./registry/push.js')).pushImage(o);
}
export async function login(...a: Parameters<typeof Login.login>): ReturnType<typeof Login.login> {
  return (await import('./registry/login.js')).login(...a);
}
export async function logout(...a: Parameters<typeof Login.logout>): ReturnType<typeof Login.logout> {
  return (await import('./registry/login.js')).logout(...a);
}
export async function saveImages(o: Archive.SaveOptions): ReturnType<typeof Archive.saveImages> {
  return (await import('./layout/archive.js')).saveImages(o);
}
export async function loadImages(o: Archive.LoadOptions): ReturnType<typeof Archive.loadImages> {
  return (await import('./layout/archive.js')).loadImages(o);
}
export async function importRootfs(o: Archive.ImportOptions): ReturnType<typeof Archive.importRootfs> {
  return (await import('./layout/archive.js')).importRootfs(o);
}
/** Each layer of an image unpacked once into a shared snapshot directory (for OverlayFS). */
export async function unpackSnapshots(o: Snapshots.UnpackSnapshotsOptions): Promise<string[]> {
  return (await import('./unpack/snapshots.js')).unpackSnapshots(o);
}
/** An image into an OCI runtime bundle: rootfs/ and config.json (umoci unpack). */
export async function unpackBundle(o: Bundle.UnpackBundleOptions): Promise<void> {
  return (await import('./bundle/unpack.js')).unpackBundle(o);
}
/** unpackBundle as an ordinary user, inside a user namespace mapped with the user's /etc/subuid ranges. */
export async function unpackBundleInUserns(o: Userns.UserBundleOptions): Promise<void> {
  return (await import('./bundle/userns.js')).unpackBundleInUserns(o);
}
