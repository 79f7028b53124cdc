// config.json from an image config, by image-spec conversion.md: Entrypoint+Cmd, Env,
// WorkingDir, User (through the rootfs's /etc/passwd and /etc/group) and the annotations.
// Everything else comes from defaultSpec(), the same default `lxr-runtime spec` writes.
import type { Spec } from '../../oci-spec/types.js';
import type { ImageConfig } from '../unpack/layout.js';
import { defaultSpec, DEFAULT_PATH } from '../../oci-spec/default.js';
import { resolveUser } from './user.js';

export interface ConfigOptions {
  rootless?: boolean;
}

/** Annotation keys lxr uses where conversion.md names none. */
export const VOLUMES_ANNOTATION = 'org.opencontainers.image.volumes';

export function configFromImage(image: ImageConfig, rootfsDir: string, opts: ConfigOptions = {}): Spec {
  const c = image.config ?? {};
  const spec = defaultSpec({ rootless: opts.rootless ?? false });
  const proc = spec.process!;
  // An image's process is not interactive unless asked for (umoci does the same).
  proc.terminal = false;
  spec.root = { path: 'rootfs', readonly: false };

  const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (args.length > 0) proc.args = args;

  const user = resolveUser(rootfsDir, c.User);
  proc.user = { uid: user.uid, gid: user.gid };
  if (user.additionalGids) proc.user.additionalGids = user.additionalGids;

  // Config.Env verbatim; lxr adds only variables the image does not set (conversion.md note 1).
  const env = [...(c.Env ?? [])];
  const has = (name: string) => env.some((e) => e === name || e.startsWith(`${name}=`));
  if (!has('PATH')) env.push(`PATH=${DEFAULT_PATH}`);
  if (!has('HOME')) env.push(`HOME=${user.home || '/'}`);
  proc.env = env;
  proc.cwd = c.WorkingDir || '/';

  const ann: Record<string, string> = {};
  const put = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') ann[k] = v;
  };
  put('org.opencontainers.image.os', image.os);
  put('org.opencontainers.image.architecture', image.architecture);
  put('org.opencontainers.image.variant', image.variant);
  put('org.opencontainers.image.os.version', image['os.version']);
  put('org.opencontainers.image.os.features', image['os.features']?.join(','));
  put('org.opencontainers.image.author', image.author);
  put('org.opencontainers.image.created', image.created);
  put('org.opencontainers.image.stopSignal', c.StopSignal);
  put('org.opencontainers.image.exposedPorts', c.ExposedPorts ? Object.keys(c.ExposedPorts).sort().join(',') : undefined);
  put(VOLUMES_ANNOTATION, c.Volumes ? Object.keys(c.Volumes).sort().join(',') : undefined);
  // Labels win over every implicit annotation (conversion.md "Annotations").
  for (const [k, v] of Object.entries(c.Labels ?? {})) ann[k] = v;
  if (Object.keys(ann).length > 0) spec.annotations = ann;
  return spec;
}
