// The container's network, by mode:
//   none   a new network namespace of its own (the runtime makes it; loopback only)
//   host   no network namespace: the host's interfaces
//   bridge / NAME   lxr/network (another part of lxr): a named netns attached to a bridge.
// Until lxr/network exists, bridge networks are refused with a clear error.
import { LxrError } from '../../runtime/errors.js';
import type { Mount } from '../../runtime/spec/types.js';
import type { ContainerRecord } from './store.js';

export interface NetworkSetup {
  netnsPath?: string;
  ip?: string;
  mounts: Mount[];
}

export function checkNetworkMode(network: string, ports: unknown[]): void {
  if (network === 'none' || network === 'host') {
    if (ports.length && network === 'none') throw new LxrError('-p: publishing ports needs a bridge network (--network none has no interfaces)');
    return;
  }
  throw new LxrError(`--network ${network}: bridge networks are not available in this build of lxr yet (use --network none or --network host)`);
}

/** Called before the container is created (each start). */
export async function setupNetwork(rec: ContainerRecord): Promise<NetworkSetup> {
  checkNetworkMode(rec.settings.network, rec.settings.ports);
  return { mounts: [] };
}

/** Called when the container stopped or is removed; safe to call twice. */
export async function teardownNetwork(_rec: ContainerRecord): Promise<void> {
  /* none and host leave nothing behind */
}
