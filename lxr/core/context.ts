// Where lxr keeps things. Persistent state under LXR_ROOT (default /var/lib/lxr), state that
// must not survive a host restart under LXR_RUN_ROOT (default /run/lxr, a tmpfs).
// An ordinary user (rootless, as podman) gets a store of their own: $XDG_DATA_HOME/lxr
// (~/.local/share/lxr) and $XDG_RUNTIME_DIR/lxr, or a private 0700 $TMPDIR/lxr-run-UID
// when XDG_RUNTIME_DIR is unset (podman: $TMPDIR/podman-run-UID).
//
//   $LXR_ROOT/images/            the OCI image layout store (image-tool)
//   $LXR_ROOT/snapshots/         one directory per image layer (overlay lowerdirs), shared
//   $LXR_ROOT/containers/<id>/   container.json, bundle/config.json, upper/, work/, merged/,
//                                l/ (short links to the snapshots), ctr.log, monitor.log
//   $LXR_ROOT/volumes/<name>/_data   named volumes
//   $LXR_RUN_ROOT/runtime/       lxr-runtime's state (gone after a reboot: that is how a
//                                stale "running" container is recognised)
import { lstatSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LxrError } from '../../common/errors.js';

export interface LxrContext {
  root: string;
  runRoot: string;
  imageStore: string;
  snapshots: string;
  containers: string;
  volumes: string;
  runtimeRoot: string;
  /** not root: containers run in a user namespace mapped with the user's /etc/subuid ranges */
  rootless: boolean;
  /** the cgroup parent of every container: /<cgroupParent>/<id> (LXR_CGROUP_PARENT, default lxr) */
  cgroupParent: string;
  /** containers' network namespaces are /run/netns/<netnsPrefix>-<id> (LXR_NETNS_PREFIX, default lxr) */
  netnsPrefix: string;
  /** the network of a container created without --network (LXR_NETWORK; unset: bridge, or a rootless user's default) */
  defaultNetwork?: string;
  /** lxr/network's settings: where networks are configured and kept, the CNI path, and the default bridge */
  net: { confDir?: string; stateDir?: string; cniPath?: string[]; bridge?: string; subnet?: string };
  /** code-server's install for --ide (LXR_IDE_DIR, default <root>/ide) */
  ideDir: string;
}

export interface ContextOptions {
  root?: string;
  runRoot?: string;
  imageStore?: string;
}

/** Is this process an ordinary user (not root)? */
export function isRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}

/** The default store of an ordinary user: $XDG_DATA_HOME/lxr, else ~/.local/share/lxr. */
export function userDataRoot(): string {
  const xdg = process.env.XDG_DATA_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'lxr');
  const home = process.env.HOME || homedir();
  if (!home || home === '/') throw new LxrError('lxr as an ordinary user keeps its images in ~/.local/share/lxr, but HOME is not set: set HOME or XDG_DATA_HOME (or --root)');
  return join(home, '.local', 'share', 'lxr');
}

/**
 * The default run dir of an ordinary user: $XDG_RUNTIME_DIR/lxr, else $TMPDIR/lxr-run-UID,
 * made 0700 and refused unless it is a directory the user owns (another user could have
 * made it first in a shared /tmp).
 */
export function userRunRoot(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'lxr');
  const uid = process.geteuid!();
  const dir = join(tmpdir(), `lxr-run-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new LxrError(`cannot make the run directory ${dir}: ${(e as NodeJS.ErrnoException).code} (set XDG_RUNTIME_DIR or --run-root)`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new LxrError(`the run directory ${dir} is not a private (0700) directory of uid ${uid}: remove it, or set XDG_RUNTIME_DIR or --run-root`);
  }
  return dir;
}

/**
 * The context of one lxr command: the options given, then the LXR_* environment, then the
 * defaults. This is the one place where lxr's library reads the environment; everything
 * below gets what it needs from the context.
 */
export function lxrContext(o: ContextOptions = {}, env: NodeJS.ProcessEnv = process.env): LxrContext {
  const rootless = isRootless();
  const root = resolve(o.root || env.LXR_ROOT || (rootless ? userDataRoot() : '/var/lib/lxr'));
  const runRoot = resolve(o.runRoot || env.LXR_RUN_ROOT || (rootless ? userRunRoot() : '/run/lxr'));
  const net: LxrContext['net'] = {};
  if (env.LXR_NET_CONF_DIR) net.confDir = env.LXR_NET_CONF_DIR;
  if (env.LXR_NET_STATE_DIR) net.stateDir = env.LXR_NET_STATE_DIR;
  if (env.LXR_CNI_PATH) net.cniPath = env.LXR_CNI_PATH.split(':').filter(Boolean);
  if (env.LXR_NET_BRIDGE) net.bridge = env.LXR_NET_BRIDGE;
  if (env.LXR_NET_SUBNET) net.subnet = env.LXR_NET_SUBNET;
  return {
    rootless,
    root,
    runRoot,
    imageStore: resolve(o.imageStore || env.LXR_IMAGE_STORE || join(root, 'images')),
    snapshots: join(root, 'snapshots'),
    containers: join(root, 'containers'),
    volumes: join(root, 'volumes'),
    runtimeRoot: join(runRoot, 'runtime'),
    cgroupParent: env.LXR_CGROUP_PARENT || 'lxr',
    netnsPrefix: env.LXR_NETNS_PREFIX || 'lxr',
    ...(env.LXR_NETWORK ? { defaultNetwork: env.LXR_NETWORK } : {}),
    net,
    ideDir: env.LXR_IDE_DIR || join(root, 'ide'),
  };
}

/** The environment a child lxr process (the monitor, health checks) needs for the same context. */
export function contextEnv(ctx: LxrContext): Record<string, string> {
  const env: Record<string, string> = {
    LXR_ROOT: ctx.root, LXR_RUN_ROOT: ctx.runRoot, LXR_IMAGE_STORE: ctx.imageStore,
    LXR_CGROUP_PARENT: ctx.cgroupParent, LXR_NETNS_PREFIX: ctx.netnsPrefix, LXR_IDE_DIR: ctx.ideDir,
  };
  if (ctx.defaultNetwork) env.LXR_NETWORK = ctx.defaultNetwork;
  if (ctx.net.confDir) env.LXR_NET_CONF_DIR = ctx.net.confDir;
  if (ctx.net.stateDir) env.LXR_NET_STATE_DIR = ctx.net.stateDir;
  if (ctx.net.cniPath) env.LXR_CNI_PATH = ctx.net.cniPath.join(':');
  if (ctx.net.bridge) env.LXR_NET_BRIDGE = ctx.net.bridge;
  if (ctx.net.subnet) env.LXR_NET_SUBNET = ctx.net.subnet;
  return env;
}

// test and bench hooks, read once
const FAIL_AT = process.env.LXR_FAIL_AT;
const TRACE = !!process.env.LXR_TRACE;

/** Test-only fault injection: LXR_FAIL_AT=step makes that step of create throw. */
export function failPoint(step: string): void {
  if (FAIL_AT === step) throw new Error(`injected failure at "${step}" (LXR_FAIL_AT)`);
}

const T0 = Date.now();
/** LXR_TRACE=1: milliseconds since start at each named step, on stderr (for bench/ work). */
export function trace(step: string): void {
  if (TRACE) process.stderr.write(`lxr trace ${String(Math.round(performance.now())).padStart(5)} ms (${Date.now() - T0} since import) ${step}\n`);
}
