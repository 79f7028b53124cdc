// lxr as a library: everything the CLI does, callable in-process.
export { lxrContext, type LxrContext, type ContextOptions } from './core/context.js';
export { createAndStart, createContainerRecord, ensureImage, type CreateOptions } from './containers/create.js';
export { runContainer, type RunOptions, type RunResult } from './containers/run.js';
export {
  startContainer, stopContainer, restartContainer, removeContainer, listContainers, inspectContainer, containerLogs, liveState,
  type PsEntry, type LogsOptions, type LiveState,
} from './containers/manage.js';
export { launchMain, cleanupMain } from './containers/launch.js';
export { execCommand, execProcess, type ExecOptions } from './containers/exec.js';
export { applyRestartPolicies } from './containers/restart-policies.js';
export { getRecord, findRecord, listRecords } from './containers/store.js';
export type { ContainerRecord, CreateSettings, PortMapping, VolumeMount } from './core/types.js';
export { parseEnv, parsePort, parseVolume, parseMemory, parseCpus, parseRestart, parseCap } from './containers/options.js';
export { pull, images, rmi, gc, systemGc } from './images/index.js';
