// hooks (config.md "POSIX-platform Hooks"): run each hook with the container state on
// its stdin, in the runtime's namespaces or (createContainer, startContainer) in the
// container's. Hooks are started by the same native spawn as the container, so the Node
// process never forks or enters a namespace itself.
import { closeSync, openSync, readlinkSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Hook, State } from '../../oci-spec/types.js';
import { Op, Plan } from '../../native/plan.js';
import { openChannel, spawnPlan } from '../../native/spawn.js';
import { NS_FLAG, NS_PROC_NAME } from '../linux/namespaces.js';
import type { NamespaceType } from '../../oci-spec/types.js';
import { native, errnoName } from '../../native/index.js';
import { LxrError } from '../../common/errors.js';

export type HookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

const NS_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'mount'];

/**
 * Add SETNS steps that move a process into the namespaces of `pid` that differ from
 * ours (joining one's own user namespace is EINVAL). Returns whether a pid namespace was
 * joined, in which case a CLONE step must follow for it to take effect.
 */
export function planJoinNamespaces(plan: Plan, pid: number, what: string): { fds: number[]; pidns: boolean } {
  const fds: number[] = [];
  let pidns = false;
  for (const t of NS_ORDER) {
    const name = NS_PROC_NAME[t];
    let theirs: string;
    let ours: string;
    try {
      theirs = readlinkSync(`/proc/${pid}/ns/${name}`);
      ours = readlinkSync(`/proc/self/ns/${name}`);
    } catch {
      continue;
    }
    if (theirs === ours) continue;
    const fd = openNs(pid, name);
    fds.push(fd);
    plan.add(Op.SETNS, `${what}: join the container's ${t} namespace`, fd, NS_FLAG[t]);
    if (t === 'pid') pidns = true;
  }
  return { fds, pidns };
}

function openNs(pid: number, name: string): number {
  return openSync(`/proc/${pid}/ns/${name}`, 'r');
}

/** A hook without `env` gets the runtime's own environment, as runc gives it (Go's exec.Cmd with a nil Env). */
function runtimeEnv(): string[] {
  return Object.entries(process.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
}

/** Run one hook to completion. Throws an LxrError naming the hook on failure. */
export async function runHook(hook: Hook, state: State, where: string, inNamespacesOf?: number): Promise<void> {
  const n = native();
  const [stdinParent, stdinChild] = n.socketpair();
  const [outParent, outChild] = n.socketpair();
  const chan = openChannel();
  const plan = new Plan();
  let nsFds: number[] = [];
  try {
    if (inNamespacesOf) {
      plan.add(Op.DUMPABLE, `${where}: make the process non-dumpable until execve`, 0);
      const j = planJoinNamespaces(plan, inNamespacesOf, where);
      nsFds = j.fds;
      if (j.pidns) plan.add(Op.CLONE, `${where}: enter the pid namespace`, 0, chan.childFd);
    }
    // its own session, so that a timeout kills the hook and everything it started
    plan.add(Op.SETSID, `${where}: new session`);
    plan.add(Op.DUP, `${where}: stdin`, stdinChild, 0);
    plan.add(Op.DUP, `${where}: stdout`, outChild, 1);
    plan.add(Op.DUP, `${where}: stderr`, outChild, 2);
    plan.add(Op.CLOEXEC_FROM, `${where}: close fds`, 3);
    plan.add(Op.EXEC, `${where}: exec "${hook.path}"`, plan.arr([hook.path]), plan.arr(hook.args?.length ? hook.args : [hook.path]), plan.arr(hook.env ?? runtimeEnv()), 0);
  } catch (e) {
    for (const fd of [stdinParent, stdinChild, outParent, outChild, chan.parentFd, chan.childFd, ...nsFds]) n.close(fd);
    throw e;
  }
  const child = spawnPlan(plan, 0n, chan);
  for (const fd of [stdinChild, outChild, ...nsFds]) n.close(fd);

  let output = '';
  const out = new Socket({ fd: outParent, readable: true, writable: false });
  const outDone = new Promise<void>((resolve) => {
    out.on('data', (d: Buffer) => {
      if (output.length < 4096) output += d.toString();
    });
    out.on('close', () => resolve());
    out.on('error', () => resolve());
  });
  try {
    writeSync(stdinParent, JSON.stringify(state));
  } catch {
    /* a hook may exit without reading its stdin */
  }
  closeSync(stdinParent);

  let msg = await child.next();
  while (msg.kind === 'pid') msg = await child.next();
  if (msg.kind === 'error') {
    await reap(child.pids);
    throw new LxrError(`${where} hook "${hook.path}": ${child.plan.describe(msg.step)}: ${errnoName(msg.errno)}`);
  }
  const finalPid = child.pid;
  let timedOut = false;
  const timer = hook.timeout
    ? setTimeout(() => {
        timedOut = true;
        for (const target of [-finalPid, finalPid]) {
          try {
            process.kill(target, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        out.destroy();
      }, hook.timeout * 1000)
    : undefined;
  const statuses = await reap(child.pids);
  if (timer) clearTimeout(timer);
  await outDone;
  const status = statuses[statuses.length - 1]!;
  const detail = output.trim() ? `: ${output.trim().split('\n').slice(-3).join(' / ')}` : '';
  if (timedOut) throw new LxrError(`${where} hook "${hook.path}" timed out after ${hook.timeout}s`);
  if ((status & 0x7f) !== 0) throw new LxrError(`${where} hook "${hook.path}" was killed by signal ${status & 0x7f}${detail}`);
  const code = (status >> 8) & 0xff;
  if (code !== 0) throw new LxrError(`${where} hook "${hook.path}" exited with status ${code}${detail}`);
}

async function reap(pids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const pid of pids) {
    const [, status] = await native().wait(pid);
    out.push(status);
  }
  return out;
}

/** Run every hook of a kind, in order. Stops at the first failure. */
export async function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: State, inNamespacesOf?: number): Promise<void> {
  for (const [i, hook] of (hooks ?? []).entries()) {
    await runHook(hook, state, `hooks.${kind}[${i}]`, inNamespacesOf);
  }
}
