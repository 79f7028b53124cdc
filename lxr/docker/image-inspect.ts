// `inspect --type image`: an image in the store in docker's JSON shape (Id is the config
// digest, Config the image config's runtime part), as tools that read `docker inspect` expect.
import { inspectImage } from '../../image-tool/index.js';
import type { ImageConfig } from '../../image-tool/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';

export async function inspectImageDocker(ctx: LxrContext, ref: string): Promise<Record<string, unknown>> {
  let r;
  try {
    r = await inspectImage(ctx.imageStore, ref);
  } catch (e) {
    throw new LxrError(`no such image: "${ref}" (${errorMessage(e)})`);
  }
  const c = r.config as ImageConfig;
  const cfg = c.config ?? {};
  const size = r.manifest.layers.reduce((n, l) => n + l.size, 0);
  return {
    Id: r.manifest.config.digest,
    RepoTags: [r.reference],
    RepoDigests: [`${r.reference.replace(/:[^:/]+$/, '')}@${r.digest}`],
    Created: c.created ?? '',
    Author: c.author ?? '',
    Architecture: c.architecture ?? '',
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os ?? '',
    Size: size,
    Config: {
      User: cfg.User ?? '',
      Env: cfg.Env ?? [],
      Cmd: cfg.Cmd ?? null,
      Entrypoint: cfg.Entrypoint ?? null,
      WorkingDir: cfg.WorkingDir ?? '',
      Labels: cfg.Labels ?? null,
      ExposedPorts: cfg.ExposedPorts ?? null,
      Volumes: cfg.Volumes ?? null,
      StopSignal: cfg.StopSignal ?? '',
    },
    RootFS: { Type: 'layers', Layers: c.rootfs?.diff_ids ?? [] },
    Metadata: { LastTagTime: '' },
  };
}
