// lxr-image as a library: what the lxr front end and tests call in-process.
export { pullImage, type PullOptions, type PullResult, type PullProgress } from './registry/pull.js';
export { pushImage, type PushOptions, type PushResult, type PushProgress } from './registry/push.js';
export { login, logout } from './registry/login.js';
export {
  resolveImage,
  listImages,
  inspectImage,
  tagImage,
  removeImage,
  gcStore,
  findImage,
  openStore,
  type ImageSummary,
  type InspectResult,
  type GcResult,
  type StoreArg,
} from './layout/images.js';
export { ImageStore, DEFAULT_STORE, defaultStorePath, REF_NAME } from './layout/store.js';
export { ImageError, type ImageErrorCode } from './registry/errors.js';
export { parseReference, formatReference, normalizeReference, familiarName, type ImageReference } from './reference.js';
export { MediaType, hostPlatform, parsePlatform, formatPlatform, type Descriptor, type ImageManifest, type ImageIndex, type Platform } from './registry/manifest.js';
export type { RegistriesConfig, RegistryOptions } from './registry/config.js';
export type { RemoteOptions } from './registry/session.js';
