// `exec` (runc's): start another process in a running container. It joins every
// namespace of the container (the user namespace first), its cgroup, and gets the
// process settings (user, capabilities, rlimits, seccomp, no_new_privs, env, cwd).
//
// The joining is done by the native child, never by this process. Two escapes runc had
// are closed by construction: the child is made non-dumpable first, so a container
// process cannot reach the host's node binary through /proc/PID/exe before execve
// (CVE-2019-5736 class); and only stdio and --preserve-fds cross into the container,
// with the working directory set inside it (CVE-2024-21626 class).
import { fstatSync, openSync, writeFileSync, constants } from 'node:fs';
import type { Process } from '../../oci-spec/types.js';
import { Op, Plan, Sync } from '../../native/plan.js';
import { openChannel, spawnPlan } from '../../native/spawn.js';
import { execCandidates, planProcessIdentity, planSeccomp, planSessionKeyring } from '../process/init.js';
import { compileSeccomp } from '../linux/seccomp.js';
import { seccompCacheDir } from '../linux/seccomp-cache.js';
import { envWithHome } from '../linux/home.js';
import { planJoinNamespaces } from './hooks.js';
import { isPaused, recordCgroup } from './cgroup-link.js';
import { liveStatus, readRecord } from './state.js';
import { native } from '../../native/index.js';
import { LxrError } from '../../common/errors.js';
import { consolePair, forwardSignals, proxyTerminal, receiveMaster } from './console.js';
import { writeFileAtomic } from '../../common/atomic.js';
import { exitCodeOf } from '../../common/proc.js';

export interface ExecOptions {
  process: Process;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  preserveFds?: number;
  /** fds for the process's 0, 1, 2 (default: ours, reopened like create does) */
  stdio?: [number, number, number];
}

function ownStdio(): [number, number, number] {
  return [0, 1, 2].map((fd) => {
    try {
      const st = fstatSync(fd);
      if (st.isFIFO() || st.isCharacterDevice()) return openSync(`/proc/self/fd/${fd}`, fd === 0 ? constants.O_RDONLY : constants.O_WRONLY);
    } catch {
      return openSync('/dev/null', fd === 0 ? 'r' : 'w');
    }
    const d = native().dupCloexec(fd);
    return d < 0 ? openSync('/dev/null', fd === 0 ? 'r' : 'w') : d;
  }) as [number, number, number];
}

/**
 * Run a process in the container. In the foreground it resolves to the exit code (as a
 * shell reports it); with detach, to 0 once the process has started.
 */
export async function execInContainer(root: string, id: string, o: ExecOptions): Promise<number> {
  const rec = readRecord(root, id);
  const status = liveStatus(root, rec, isPaused);
  if (status === 'paused') throw new LxrError(`cannot exec in container "${id}": it is paused (resume it first)`);
  if (status === 'stopped') throw new LxrError(`cannot exec in container "${id}": it is not running`);
  const proc = o.process;
  if (!proc.args?.length) throw new LxrError('exec: a command is required');
  proc.user ??= { uid: 0, gid: 0 }; // optional, as in config.json: uid 0, gid 0 as runc
  const linux = rec.config.linux ?? {};
  const userns = (linux.namespaces ?? []).some((n) => n.type === 'user');

  const n = native();
  const chan = openChannel();
  const opened: number[] = [];
  let consoleOurs: number | undefined;
  let consoleFd: number | undefined;
  const plan = new Plan();
  let nsFds: number[] = [];
  try {
    if (proc.terminal) {
      if (o.consoleSocket) {
        consoleFd = n.unixConnect(o.consoleSocket);
        if (consoleFd < 0) throw new LxrError(`cannot connect to the console socket "${o.consoleSocket}": errno ${-consoleFd}`);
      } else if (o.detach) {
        throw new LxrError('exec --tty --detach needs --console-socket');
      } else {
        [consoleOurs, consoleFd] = consolePair();
      }
      opened.push(consoleFd);
    }
    const stdio = o.stdio ?? ownStdio();
    if (!o.stdio) opened.push(...stdio);

    plan.add(Op.DUMPABLE, 'make the process non-dumpable until execve', 0);
    const join = planJoinNamespaces(plan, rec.pid, 'exec');
    nsFds = join.fds;
    if (join.pidns) plan.add(Op.CLONE, 'exec: enter the pid namespace', 0, chan.childFd);
    // a session leader, as runc makes it (the terminal step's own setsid then finds one)
    plan.add(Op.SETSID, 'exec: create a session');
    if (!rec.noNewKeyring) planSessionKeyring(plan, rec.id);
    plan.add(Op.SYNC, 'exec: wait for the cgroup', chan.childFd, Sync.CGROUP);
    if (proc.terminal) {
      plan.add(Op.CONSOLE, 'exec: set up the terminal', consoleFd!, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0);
    } else {
      stdio.forEach((fd, i) => plan.add(Op.DUP, `exec: set up stdio fd ${i}`, fd, i));
    }
    const preserve = o.preserveFds ?? 0;
    plan.add(Op.CLOEXEC_FROM, 'close inherited fds', 3 + preserve);
    // the container's own profile: compiled at its create, so normally read from the cache
    const seccomp = linux.seccomp ? compileSeccomp(linux.seccomp, 'linux.seccomp', seccompCacheDir(root)) : undefined;
    if (seccomp?.notify) throw new LxrError('exec: containers with an SCMP_ACT_NOTIFY seccomp filter cannot run exec processes yet');
    planProcessIdentity(plan, proc, { setgroups: !userns || (proc.user.additionalGids?.length ?? 0) > 0, ...(seccomp ? { seccomp } : {}) });
    const cands = execCandidates(proc);
    const env = envWithHome(proc, `/proc/${rec.pid}/root`);
    plan.add(Op.EXEC, `find executable "${proc.args[0]}"`, plan.arr(cands), plan.arr(proc.args), plan.arr(env), 1);
    if (preserve) plan.add(Op.CLEAR_CLOEXEC, 'pass --preserve-fds', 3, preserve);
    if (seccomp && proc.noNewPrivileges) planSeccomp(plan, seccomp);
    plan.add(Op.EXEC, `exec "${proc.args[0]}"`, plan.arr(cands), plan.arr(proc.args), plan.arr(env), 0);
  } catch (e) {
    for (const fd of [...opened, ...nsFds, chan.parentFd, chan.childFd]) n.close(fd);
    if (consoleOurs !== undefined) n.close(consoleOurs);
    throw e;
  }

  const child = spawnPlan(plan, 0n, chan);
  for (const fd of [...opened, ...nsFds]) n.close(fd);
  const reap = (pids: number[]) => Promise.all(pids.map((p) => n.wait(p)));
  try {
    for (;;) {
      const msg = await child.next();
      if (msg.kind === 'pid') continue;
      if (msg.kind === 'error') throw child.failure(msg);
      if (msg.kind === 'exec') break;
      // the process exists in its final pid namespace: put it in the container's cgroup
      const paths = recordCgroup(rec);
      if (paths) {
        for (const dir of new Set(Object.values(paths.dirs))) {
          try {
            writeFileSync(`${dir}/cgroup.procs`, String(child.pid));
          } catch (e) {
            throw new LxrError(`exec: joining the cgroup ${dir}: ${(e as NodeJS.ErrnoException).code}`);
          }
        }
      }
      child.release();
    }
  } catch (e) {
    for (const pid of child.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    child.detach();
    await reap(child.pids);
    if (consoleOurs !== undefined) n.close(consoleOurs);
    throw e;
  }
  const pid = child.pid;
  if (o.pidFile) writeFileAtomic(o.pidFile, String(pid), { durable: false }); // a pid: atomic, never fsynced (runc neither)
  // reap the intermediate (if any) now; the process itself below, or by our exit
  if (child.pids.length > 1) await reap(child.pids.slice(0, -1));
  if (o.detach) return 0;
  const master = consoleOurs !== undefined ? await receiveMaster(consoleOurs) : undefined;
  const stopForwarding = forwardSignals(pid);
  const stopProxy = master !== undefined && master >= 0 ? proxyTerminal(master) : undefined;
  const [, st] = await n.wait(pid);
  await stopProxy?.();
  stopForwarding();
  return exitCodeOf(st);
}

/** The process for `exec` built from runc's flags on top of the container's own process. */
export function processFromFlags(base: Process, f: {
  args: string[]; tty?: boolean; cwd?: string; env?: string[]; user?: string; additionalGids?: number[];
  caps?: string[]; noNewPrivs?: boolean;
}): Process {
  const p: Process = JSON.parse(JSON.stringify(base));
  p.args = f.args;
  delete p.commandLine;
  p.terminal = !!f.tty;
  if (f.cwd) p.cwd = f.cwd;
  if (f.env?.length) {
    const env = new Map((p.env ?? []).map((e) => [e.split('=')[0]!, e]));
    for (const e of f.env) env.set(e.split('=')[0]!, e);
    p.env = [...env.values()];
  }
  if (f.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(f.user);
    if (!m) throw new LxrError(`--user: "${f.user}" must be uid[:gid]`);
    p.user = { ...p.user, uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : p.user.gid };
  }
  if (f.additionalGids?.length) p.user.additionalGids = f.additionalGids;
  if (f.caps?.length) {
    const c = (p.capabilities ??= {});
    for (const set of ['bounding', 'effective', 'permitted', 'ambient', 'inheritable'] as const) {
      if (set === 'inheritable' || set === 'ambient') continue;
      c[set] = [...new Set([...(c[set] ?? []), ...f.caps])];
    }
  }
  if (f.noNewPrivs) p.noNewPrivileges = true;
  return p;
}
