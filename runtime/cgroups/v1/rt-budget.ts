// RT group scheduling on cgroup v1 (scheduler/sched-rt-group.rst): a group's
// cpu.rt_runtime_us/cpu.rt_period_us must cover the sum of its children's, so a container
// asking for a realtime budget under lxr's own parent (/lxr, made with a budget of 0)
// gets EINVAL. Give every ancestor below the hierarchy's root the budget its children
// need, top-down, before the container's own is written. The root's budget (the global
// kernel.sched_rt_runtime_us) is never changed: if it is too small, the write below it
// fails and names the directory.
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { readOptional, writeCgroupFile } from '../fs.js';

const RUNTIME = 'cpu.rt_runtime_us';
const PERIOD = 'cpu.rt_period_us';

function num(dir: string, file: string): number | undefined {
  const v = readOptional(dir, file);
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** runtime/period of a group; undefined when unreadable or unlimited (-1). */
function ratio(dir: string): number | undefined {
  const r = num(dir, RUNTIME);
  const p = num(dir, PERIOD);
  if (r === undefined || p === undefined || r < 0 || p <= 0) return undefined;
  return r / p;
}

/** The sum of the ratios of the child groups of `dir`, leaving out `except`. */
function childrenRatio(dir: string, except: string): number | undefined {
  let sum = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === except) continue;
    const r = ratio(join(dir, e.name));
    if (r === undefined) return undefined;
    sum += r;
  }
  return sum;
}

/**
 * Raise the RT budgets of the ancestors of `dir` (the container's cpu cgroup, which
 * exists) so that `runtime` per `period` fits in it. `field` names the spec field for errors.
 */
export function ensureRtBudget(dir: string, runtime: number, period: number, field: string): void {
  if (runtime <= 0 || period <= 0) return;
  // ancestors below the root of the hierarchy, nearest first
  const ancestors: string[] = [];
  for (let d = dirname(dir); existsSync(join(dirname(d), RUNTIME)); d = dirname(d)) ancestors.push(d);
  let need = runtime / period;
  let child = basename(dir);
  const writes: [string, number][] = [];
  for (const a of ancestors) {
    const others = childrenRatio(a, child);
    const have = ratio(a);
    const p = num(a, PERIOD);
    if (others === undefined || have === undefined || p === undefined) return; // unlimited or unreadable: leave it to the kernel
    need += others;
    if (have >= need) break;
    writes.push([a, Math.ceil(need * p)]);
    child = basename(a);
  }
  for (const [a, value] of writes.reverse()) {
    writeCgroupFile(a, RUNTIME, String(value), `${field} (giving the parent cgroup ${a} the realtime budget its children need)`);
  }
}
