// `ps` (runc's): the container's processes, as a JSON list of pids (what containerd
// reads) or a table like `ps -ef`, read from /proc.
import { readFileSync, readlinkSync } from 'node:fs';
import { containerPids } from './processes.js';
import { readRecord } from './state.js';
import { table } from '../../common/cli/format.js';

export function listProcesses(root: string, id: string): number[] {
  return containerPids(readRecord(root, id));
}

export function processTable(pids: number[]): string {
  const rows = [['UID', 'PID', 'PPID', 'STAT', 'TTY', 'CMD']];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const uid = /Uid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
      let cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      if (!cmd) cmd = `[${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}]`;
      let tty = '?';
      try {
        const t = readlinkSync(`/proc/${pid}/fd/0`);
        if (t.startsWith('/dev/pts/')) tty = t.slice(5);
      } catch {
        /* no access */
      }
      rows.push([uid, String(pid), rest[1]!, rest[0]!, tty, cmd]);
    } catch {
      /* exited */
    }
  }
  return table(rows, 2);
}
