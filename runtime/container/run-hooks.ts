// runHooks for the commands that may have no hook to run (start, delete): hooks.ts brings
// process spawning with it (node:net, node:child_process), which costs a few milliseconds of
// every start, so it is loaded only for a config that has hooks of that kind.
import type { Hook, State } from '../../oci-spec/types.js';
import type { HookKind } from './hooks.js';

export async function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: State, inNamespacesOf?: number): Promise<void> {
  if (!hooks?.length) return;
  const h = await import('./hooks.js');
  await h.runHooks(kind, hooks, state, inNamespacesOf);
}
