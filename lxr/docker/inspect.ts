// `lxr inspect [--type container|image|volume] NAME...`: as docker does, without --type a
// name is looked up as a container, then as an image. Each name that is none of them is an
// error of its own; the others are still shown.
import { errorMessage } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';
import { findRecord } from '../containers/store.js';
import { inspectContainer } from '../containers/query.js';

export type InspectType = 'container' | 'image' | 'volume';

export async function inspectObjects(ctx: LxrContext, names: string[], type?: InspectType): Promise<{ items: Record<string, unknown>[]; errors: string[] }> {
  const items: Record<string, unknown>[] = [];
  const errors: string[] = [];
  for (const n of names) {
    try {
      if (type === 'volume') {
        const { inspectVolume } = await import('../containers/volume-store.js');
        items.push(inspectVolume(ctx, n) as unknown as Record<string, unknown>);
      } else if (type === 'container' || (type === undefined && findRecord(ctx, n))) {
        items.push(inspectContainer(ctx, n));
      } else {
        const { inspectImageDocker } = await import('./image-inspect.js');
        items.push(await inspectImageDocker(ctx, n));
      }
    } catch (e) {
      errors.push(type === undefined ? `no such container: "${n}" (nor an image of that name)` : errorMessage(e));
    }
  }
  return { items, errors };
}
