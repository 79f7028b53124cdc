// Load a bundle's config.json and check it: JSON, then the official schema (compiled at
// build time by scripts/build.mjs), then the rules the schema cannot say. Every problem
// is reported with its JSON path, e.g. `config.json: process.user.uid: must be integer`.
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { validateConfig } from '../../oci-spec/validators.generated.js';
import type { Spec } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { forSchema } from './leniency.js';

/** `/mounts/2/destination` -> `mounts[2].destination` */
export function jsonPath(pointer: string): string {
  if (!pointer) return '(root)';
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function describe(e: ErrorObject): string {
  const path = jsonPath(e.instancePath);
  if (e.keyword === 'required') return `${path === '(root)' ? '' : path + '.'}${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'enum') return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${path}: ${e.message ?? e.keyword}`;
}

/** The schema errors that matter: drop the "must match a schema in anyOf/oneOf" summaries when details exist. */
export function schemaErrors(errors: ErrorObject[]): string[] {
  const detailed = errors.filter((e) => !['anyOf', 'oneOf', 'if', 'allOf'].includes(e.keyword));
  const list = (detailed.length ? detailed : errors).map(describe);
  return [...new Set(list)];
}

export function validateSpecObject(spec: unknown, file = 'config.json'): Spec {
  // the schema sees the config with lxr's listed leniencies (leniency.ts) replaced
  if (!validateConfig(forSchema(spec))) {
    const errs = schemaErrors(validateConfig.errors ?? []);
    const shown = errs.slice(0, 5).join('; ');
    throw new LxrError(`${file}: ${shown}${errs.length > 5 ? ` (and ${errs.length - 5} more)` : ''}`);
  }
  return spec as Spec;
}

export interface LoadedSpec {
  spec: Spec;
  bundle: string;
  rootfs: string;
}

/** Load and check `<bundle>/config.json`. */
export function loadSpec(bundleDir: string): LoadedSpec {
  const bundle = resolve(bundleDir);
  let st;
  try {
    st = statSync(bundle);
  } catch {
    throw new LxrError(`bundle "${bundle}" does not exist`);
  }
  if (!st.isDirectory()) throw new LxrError(`bundle "${bundle}" is not a directory`);
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LxrError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LxrError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  const spec = validateSpecObject(json, file);
  checkSemantics(spec, file);
  // process.user is optional: without it the process runs as uid 0, gid 0 (as runc does)
  if (spec.process && !spec.process.user) spec.process.user = { uid: 0, gid: 0 };
  const rootfs = resolve(bundle, spec.root!.path);
  try {
    if (!statSync(rootfs).isDirectory()) throw new Error();
  } catch {
    throw new LxrError(`${file}: root.path: "${rootfs}" is not a directory`);
  }
  return { spec, bundle, rootfs };
}

/** Rules from the spec's prose that its schema does not encode. */
export function checkSemantics(spec: Spec, file = 'config.json'): void {
  const fail = (msg: string): never => {
    throw new LxrError(`${file}: ${msg}`);
  };
  const major = /^(\d+)\./.exec(spec.ociVersion)?.[1];
  if (major !== '1') fail(`ociVersion: "${spec.ociVersion}" is not a 1.x runtime-spec version`);
  if (!spec.root?.path) fail('root.path: is required on Linux');
  // Without process a container can be created, but `start` MUST fail (runtime.md).
  const p = spec.process;
  if (p && !p.args?.length && !p.commandLine) fail('process.args: must have at least one entry');
  if (p && !p.cwd.startsWith('/')) fail(`process.cwd: "${p.cwd}" must be an absolute path`);
  // Security settings this runtime cannot apply are refused, never silently dropped:
  // a container must not run with less confinement than its config asks for.
  if (p?.apparmorProfile) fail('process.apparmorProfile: AppArmor profiles are not supported by lxr-runtime');
  if (p?.selinuxLabel) fail('process.selinuxLabel: SELinux labels are not supported by lxr-runtime');
  if (spec.linux?.mountLabel) fail('linux.mountLabel: SELinux mount labels are not supported by lxr-runtime');
  if (spec.linux?.intelRdt) fail('linux.intelRdt: Intel RDT is not supported by lxr-runtime');
  const ns = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  if (spec.hostname && !ns.has('uts')) fail('hostname: setting a hostname needs a new uts namespace (linux.namespaces)');
  if (spec.domainname && !ns.has('uts')) fail('domainname: setting a domainname needs a new uts namespace (linux.namespaces)');
}
