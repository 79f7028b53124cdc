// Where lxr keeps things. Persistent state under LXR_ROOT (default /var/lib/lxr), state that
// must not survive a host restart under LXR_RUN_ROOT (default /run/lxr, a tmpfs).
//
//   $LXR_ROOT/images/            the OCI image layout store (image-tool)
//   $LXR_ROOT/snapshots/         one directory per image layer (overlay lowerdirs), shared
//   $LXR_ROOT/containers/<id>/   container.json, bundle/config.json, upper/, work/, merged/,
//                                l/ (short links to the snapshots), ctr.log, monitor.log
//   $LXR_ROOT/volumes/<name>/_data   named volumes
//   $LXR_RUN_ROOT/runtime/       lxr-runtime's state (gone after a reboot: that is how a
//                                stale "running" container is recognised)
import { join, resolve } from 'node:path';

export interface LxrContext {
  root: string;
  runRoot: string;
  imageStore: string;
  snapshots: string;
  containers: string;
  volumes: string;
  runtimeRoot: string;
}

export interface ContextOptions {
  root?: string;
  runRoot?: string;
  imageStore?: string;
}

export function lxrContext(o: ContextOptions = {}): LxrContext {
  const root = resolve(o.root || process.env.LXR_ROOT || '/var/lib/lxr');
  const runRoot = resolve(o.runRoot || process.env.LXR_RUN_ROOT || '/run/lxr');
  return {
    root,
    runRoot,
    imageStore: resolve(o.imageStore || process.env.LXR_IMAGE_STORE || join(root, 'images')),
    snapshots: join(root, 'snapshots'),
    containers: join(root, 'containers'),
    volumes: join(root, 'volumes'),
    runtimeRoot: join(runRoot, 'runtime'),
  };
}

/** Environment a child lxr process (the monitor) needs to find the same state. */
export function contextEnv(ctx: LxrContext): Record<string, string> {
  return { LXR_ROOT: ctx.root, LXR_RUN_ROOT: ctx.runRoot, LXR_IMAGE_STORE: ctx.imageStore };
}

/** Test-only fault injection: LXR_FAIL_AT=step makes that step of create throw. */
export function failPoint(step: string): void {
  if (process.env.LXR_FAIL_AT === step) throw new Error(`injected failure at "${step}" (LXR_FAIL_AT)`);
}

const T0 = Date.now();
/** LXR_TRACE=1: milliseconds since start at each named step, on stderr (for bench/ work). */
export function trace(step: string): void {
  if (process.env.LXR_TRACE) process.stderr.write(`lxr trace ${String(Math.round(performance.now())).padStart(5)} ms (${Date.now() - T0} since import) ${step}\n`);
}
