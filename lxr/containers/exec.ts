// `lxr exec`: a new process in a running container, through the runtime library's exec. The
// process starts from the container's own process settings (env, user, cwd, capabilities),
// with -e, -u, -w and -t on top, as docker and podman do.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execInContainer } from '../../runtime/container/exec.js';
import type { Process, Spec } from '../../runtime/spec/types.js';
import { resolveUser } from '../../image-tool/bundle/user.js';
import { LxrError, errorMessage } from '../../runtime/errors.js';
import type { LxrContext } from '../context.js';
import { containerDir, getRecord } from './store.js';
import { liveState } from './status.js';
import { mergeEnv } from './options.js';

export interface ExecOptions {
  command: string[];
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
  detach?: boolean;
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
  if (o.user) {
    try {
      const u = resolveUser(rootfs, o.user);
      p.user = { uid: u.uid, gid: u.gid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) };
      // HOME follows -u, as with docker exec, unless -e sets it
      if (!(o.env ?? []).some((e) => e.startsWith('HOME='))) p.env = mergeEnv(p.env ?? [], [`HOME=${u.home || '/'}`]);
    } catch (e) {
      throw new LxrError(`-u ${o.user}: ${errorMessage(e)}`);
    }
  }
  return p;
}

export async function execCommand(ctx: LxrContext, ref: string, o: ExecOptions): Promise<number> {
  if (!o.command.length) throw new LxrError('exec: give a command to run');
  const r = getRecord(ctx, ref);
  if (liveState(ctx, r).status !== 'running') throw new LxrError(`cannot exec in container ${r.name}: it is not running`);
  const spec = JSON.parse(readFileSync(join(containerDir(ctx, r.id), 'bundle', 'config.json'), 'utf8')) as Spec;
  const proc = execProcess(spec, spec.root!.path, o);
  return execInContainer(ctx.runtimeRoot, r.id, { process: proc, ...(o.detach ? { detach: true } : {}) });
}
