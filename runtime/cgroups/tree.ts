// Directory work shared by both versions: make a cgroup (remembering what was made, so a
// failed create can undo exactly that), remove one, list and signal its processes.
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CgroupError, describeErrno, errnoCode } from './errors.js';
import { readOptional, sleepSync } from './fs.js';

/** mkdir -p that returns the directories it created, outermost first. */
export function mkdirTracked(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      statSync(d);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || d === dirname(d)) throw new CgroupError(`creating cgroup ${dir}: ${describeErrno(err)}`, errnoCode(err));
      missing.unshift(d);
    }
  }
  const made: string[] = [];
  for (const d of missing) {
    try {
      mkdirSync(d);
      made.push(d);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw new CgroupError(`creating cgroup ${d}: ${describeErrno(err)}`, errnoCode(err));
    }
  }
  return made;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/**
 * rmdir a cgroup and the cgroups the container made inside it, deepest first. A cgroup
 * whose last task has just exited can still be busy for a moment (EBUSY): retry briefly.
 * A missing directory is fine: it is already gone.
 */
export function removeCgroupDir(dir: string, retries = 8): void {
  for (const sub of subdirs(dir)) removeCgroupDir(sub, retries);
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      if ((code === 'EBUSY' || code === 'ENOTEMPTY') && attempt < retries) {
        sleepSync(5 << attempt);
        continue;
      }
      const pids = readOptional(dir, 'cgroup.procs');
      throw new CgroupError(`removing cgroup ${dir}: ${describeErrno(err)}${pids ? ` (processes still in it: ${pids.split('\n').join(' ')})` : ''}`, code);
    }
  }
}

/** Undo a failed create: remove what was made, innermost first, ignoring what cannot go. */
export function removeCreated(made: string[]): void {
  for (const d of [...made].reverse()) {
    try {
      removeCgroupDir(d, 3);
    } catch {
      // Another container may have started using a shared parent meanwhile.
    }
  }
}

/** Every pid in dir's cgroup.procs and in its descendants'. */
export function pidsInTree(dir: string): number[] {
  const out: number[] = [];
  const text = readOptional(dir, 'cgroup.procs');
  if (text === undefined) return out;
  for (const line of text.split('\n')) if (line) out.push(Number(line));
  for (const sub of subdirs(dir)) out.push(...pidsInTree(sub));
  return out;
}

export function signalPids(pids: number[], signal: number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw new CgroupError(`sending signal ${signal} to process ${pid}: ${describeErrno(err)}`, errnoCode(err));
    }
  }
}
