// lxr-runtime as a library: what the lxr front end calls in-process, as podman calls runc
// (but without a fork). The lifecycle commands load their modules on first use, so that a
// caller that only reads state (lxr ps) does not load the plan compiler, cgroups or seccomp.

export type { CreateOptions, Created } from './container/create.js';
export type { ExecOptions } from './container/exec.js';
export { DEFAULT_ROOT, defaultRoot, readRecord, listIds, initAlive, UnreadableState, type ContainerRecord } from './container/state.js';
export { hostTerminalSize, proxyTerminal } from './container/console.js';
export { sysctlNamespace } from './linux/sysctl.js';
import { lazy } from '../common/lazy.js';

/** `create`: the init runs the plan up to the point where it waits for `start`. */
export const createContainer = lazy(() => import('./container/create.js'), 'createContainer');
/** `start`: release the created container's process. */
export const startContainer = lazy(() => import('./container/start.js'), 'startContainer');
/** `delete [--force]`. */
export const deleteContainer = lazy(() => import('./container/delete.js'), 'deleteContainer');
/** `kill [--all] ID SIGNAL`. */
export const killContainer = lazy(() => import('./container/kill.js'), 'killContainer');
/** `exec`: a process in the container's namespaces, cgroups and security settings. */
export const execInContainer = lazy(() => import('./container/exec.js'), 'execInContainer');
