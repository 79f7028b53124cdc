// linux.resources.unified (config-linux.md "Unified"): key = interface file, value written
// verbatim, after every other field so that it wins, as runc does.
import type { Resources } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readOptional, writeCgroupFile } from '../fs.js';
import { V2_CONTROLLERS } from './controllers.js';

export function setUnified(dir: string, r: Resources): void {
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    const field = `linux.resources.unified[${JSON.stringify(key)}]`;
    if (!hasFile(dir, key)) {
      const ctrl = key.split('.')[0]!;
      const enabled = (readOptional(dir, 'cgroup.controllers') ?? '').split(/\s+/);
      const why = V2_CONTROLLERS.includes(ctrl) && !enabled.includes(ctrl) ? `the ${ctrl} controller is not enabled for ${dir}` : `no such file in ${dir}`;
      throw new CgroupError(`${field}: unknown cgroup v2 key (${why})`);
    }
    writeCgroupFile(dir, key, value, field);
  }
}
