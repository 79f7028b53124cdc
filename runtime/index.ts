// lxr-runtime as a library: what the lxr front end calls in-process, as podman calls runc
// (but without a fork). The lifecycle commands load their modules on first use, so that a
// caller that only reads state (lxr ps) does not load the plan compiler, cgroups or seccomp.
import type * as Create from './container/create.js';
import type * as Start from './container/start.js';
import type * as Delete from './container/delete.js';
import type * as Kill from './container/kill.js';
import type * as Exec from './container/exec.js';

export type { CreateOptions, Created } from './container/create.js';
export type { ExecOptions } from './container/exec.js';
export { DEFAULT_ROOT, defaultRoot, readRecord, listIds, initAlive, UnreadableState, type ContainerRecord } from './container/state.js';
export { hostTerminalSize, proxyTerminal } from './container/console.js';
export { sysctlNamespace } from './linux/sysctl.js';

/** `create`: the init runs the plan up to the point where it waits for `start`. */
export async function createContainer(o: Create.CreateOptions): Promise<Create.Created> {
  return (await import('./container/create.js')).createContainer(o);
}

/** `start`: release the created container's process. */
export async function startContainer(...a: Parameters<typeof Start.startContainer>): ReturnType<typeof Start.startContainer> {
  return (await import('./container/start.js')).startContainer(...a);
}

/** `delete [--force]`. */
export async function deleteContainer(...a: Parameters<typeof Delete.deleteContainer>): ReturnType<typeof Delete.deleteContainer> {
  return (await import('./container/delete.js')).deleteContainer(...a);
}

/** `kill [--all] ID SIGNAL`. */
export async function killContainer(...a: Parameters<typeof Kill.killContainer>): ReturnType<typeof Kill.killContainer> {
  return (await import('./container/kill.js')).killContainer(...a);
}

/** `exec`: a process in the container's namespaces, cgroups and security settings. */
export async function execInContainer(...a: Parameters<typeof Exec.execInContainer>): ReturnType<typeof Exec.execInContainer> {
  return (await import('./container/exec.js')).execInContainer(...a);
}
