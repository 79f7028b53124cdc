import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultSpec } from '../../oci-spec/default.js';
import { LxrError } from '../../common/errors.js';

export function writeDefaultSpec(bundle: string, rootless: boolean): void {
  const file = join(bundle, 'config.json');
  if (existsSync(file)) throw new LxrError(`${file} already exists: remove it first`);
  writeFileSync(file, JSON.stringify(defaultSpec({ rootless }), null, '\t') + '\n');
}
