// What one cgroup v1 controller knows: which spec fields need it, how to write them, and
// which statistics it reads. One file per controller, as youki's libcgroups/v1 does.
import type { Resources } from '../../../oci-spec/types.js';
import type { Stats } from '../stats.js';

export interface SetContext {
  /** true while the container's cgroup is being created (nothing in it yet) */
  creating: boolean;
  /** A non-fatal notice, e.g. a field runc also ignores. */
  warn(message: string): void;
}

export interface V1Controller {
  /** hierarchy key in CgroupPaths.dirs */
  name: string;
  /** The first spec field set in r that this controller must write, e.g. "linux.resources.pids.limit". */
  needed(r: Resources): string | undefined;
  set?(dir: string, r: Resources, ctx: SetContext): void;
  stats?(dir: string, s: Stats): void;
}

/** First of the given fields of obj that has a meaningful value (not undefined, not 0 where 0 means unset). */
export function firstSet(prefix: string, obj: object | undefined, fields: string[], zeroIsUnset: string[] = []): string | undefined {
  if (!obj) return undefined;
  const rec = obj as Record<string, unknown>;
  for (const f of fields) {
    const v = rec[f];
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (v === 0 && zeroIsUnset.includes(f)) continue;
    return `${prefix}.${f}`;
  }
  return undefined;
}
