// Signal names and numbers as runc's `kill` accepts them: KILL, SIGKILL, 9.
import { constants } from 'node:os';
import { LxrError } from '../../common/errors.js';

const SIGNALS = constants.signals as Record<string, number>;

export function parseSignal(s: string | number | undefined): number {
  if (s === undefined || s === '') return SIGNALS.SIGTERM!;
  if (typeof s === 'number' || /^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
    throw new LxrError(`invalid signal "${s}"`);
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rt) return name.startsWith('SIGRTMIN') ? 34 + Number(rt[1] ?? 0) : 64 - Number(rt[1] ?? 0);
  const n = SIGNALS[name];
  if (n === undefined) throw new LxrError(`invalid signal "${s}"`);
  return n;
}
