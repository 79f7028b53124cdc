// `lxr exec`: a new process in a running container, through the runtime library's exec. The
// process starts from the container's own process settings (env, user, cwd, capabilities),
// with -e, -u, -w and -t on top, as docker and podman do.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execInContainer, hostTerminalSize } from '../../runtime/index.js';
import type { Process, Spec } from '../../oci-spec/types.js';
import { resolveUser, readImageConfig, readManifest } from '../../image-tool/index.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import type { LxrContext } from '../core/context.js';
import { containerDir, getRecord } from './store.js';
import { liveState } from './status.js';
import { mergeEnv } from './options.js';
import { hasEnv } from './spec.js';
import { withStartCode } from './exit-codes.js';

export interface ExecOptions {
  command: string[];
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
  detach?: boolean;
  /** HOME was set by the image's Env or by create's -e: -u keeps it (otherwise it follows the user) */
  keepHome?: boolean;
}

/** The runtime-spec process an exec runs, from the container's config.json and the flags. */
export function execProcess(spec: Spec, rootfs: string, o: ExecOptions): Process {
  const base = spec.process!;
  const p: Process = {
    ...base,
    args: o.command,
    terminal: !!o.tty,
    env: mergeEnv(base.env ?? [], [...(o.tty ? ['TERM=xterm'] : []), ...(o.env ?? [])]),
    cwd: o.workdir ?? base.cwd ?? '/',
  };
  delete p.consoleSize;
  if (o.tty) {
    const size = hostTerminalSize();
    if (size) p.consoleSize = size;
  }
  if (o.user) {
    try {
      const u = resolveUser(rootfs, o.user);
      p.user = { uid: u.uid, gid: u.gid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) };
      // HOME follows the user, as podman's and docker's exec -u do; exec's own -e HOME wins
      if (!o.keepHome && !hasEnv(o.env, 'HOME')) p.env = mergeEnv(p.env ?? [], [`HOME=${u.home || '/'}`]);
    } catch (e) {
      throw new LxrError(`-u ${o.user}: ${errorMessage(e)}`);
    }
  }
  return p;
}

export async function execCommand(ctx: LxrContext, ref: string, o: ExecOptions): Promise<number> {
  if (!o.command.length) throw new LxrError('exec: give a command to run');
  const r = getRecord(ctx, ref);
  const live = liveState(ctx, r);
  if (live.status !== 'running') throw new LxrError(`cannot exec in container ${r.name}: it is not running`);
  const spec = JSON.parse(readFileSync(join(containerDir(ctx, r.id), 'bundle', 'config.json'), 'utf8')) as Spec;
  let keepHome = o.keepHome ?? hasEnv(r.settings.env, 'HOME');
  if (o.user && !keepHome) {
    try {
      keepHome = hasEnv((await readImageConfig(ctx.imageStore, await readManifest(ctx.imageStore, r.imageDigest))).config?.Env, 'HOME');
    } catch {
      /* the image is gone from the store: HOME follows the user */
    }
  }
  // rootless: the rootfs is mounted only in the container's namespace; its init's root shows it
  const proc = execProcess(spec, ctx.rootless && live.pid ? `/proc/${live.pid}/root` : spec.root!.path, { ...o, keepHome });
  // -d: in the background, its output nowhere (as docker exec -d), not on our stdio
  const nul = o.detach ? [openSync('/dev/null', 'r'), openSync('/dev/null', 'w'), openSync('/dev/null', 'w')] as [number, number, number] : undefined;
  try {
    return await execInContainer(ctx.runtimeRoot, r.id, { process: proc, ...(nul ? { detach: true, stdio: nul } : {}) });
  } catch (e) {
    throw withStartCode(e);
  } finally {
    nul?.forEach((fd) => closeSync(fd));
  }
}
