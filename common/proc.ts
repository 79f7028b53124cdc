// /proc/PID/stat, read the one way: the state, the parent and the start time (field 22),
// which together with the pid name a process across pid reuse.
import { readFileSync } from 'node:fs';

export interface ProcStat {
  state: string;
  startTime: string;
  ppid: number;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the command name is in parentheses and may contain anything: split after the last ')'
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, ppid: Number(rest[1]), startTime: rest[19]! };
}

/** A wait status as a shell's exit code: the code, or 128 + the signal that ended it. */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}
