// A seccomp profile in docker's format, as `--security-opt seccomp=PROFILE.json` gives it:
// the runtime-spec's linux.seccomp plus `archMap` and per-rule `includes`/`excludes`.
// Read and checked here (kept apart from lxr's default profile, which only create needs).
import { readFileSync } from 'node:fs';
import { LxrError } from '../../common/errors.js';

export interface ProfileArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface ProfileFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface ProfileRule {
  names?: string[];
  /** docker's older single-name form */
  name?: string;
  action: string;
  errnoRet?: number;
  args?: ProfileArg[] | null;
  comment?: string;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: ProfileRule[];
}

const ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_ALLOW', 'SCMP_ACT_NOTIFY'];
const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];

/** A profile's shape, checked with the JSON path of the first thing wrong. */
export function checkProfile(v: unknown, where: string): SeccompProfile {
  const fail = (path: string, what: string): never => {
    throw new LxrError(`${where}: ${path}: ${what}`);
  };
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const strings = (x: unknown, path: string) => {
    if (x === undefined || x === null) return;
    if (!Array.isArray(x) || x.some((s) => typeof s !== 'string')) fail(path, 'must be a list of strings');
  };
  const uint = (x: unknown, path: string, max = Number.MAX_SAFE_INTEGER) => {
    if (x === undefined) return;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) fail(path, `must be an integer from 0 to ${max}`);
  };
  if (!isObj(v)) return fail('(top level)', 'must be a JSON object');
  if (typeof v.defaultAction !== 'string') fail('defaultAction', 'is missing (e.g. "SCMP_ACT_ERRNO")');
  if (!ACTIONS.includes(v.defaultAction as string)) fail('defaultAction', `unknown action "${v.defaultAction}" (use one of ${ACTIONS.join(', ')})`);
  uint(v.defaultErrnoRet, 'defaultErrnoRet', 4095);
  strings(v.architectures, 'architectures');
  strings(v.flags, 'flags');
  if (v.archMap !== undefined && v.archMap !== null) {
    if (!Array.isArray(v.archMap)) fail('archMap', 'must be a list');
    (v.archMap as unknown[]).forEach((a, i) => {
      if (!isObj(a) || typeof a.architecture !== 'string') fail(`archMap[${i}].architecture`, 'must be a string');
      strings((a as Record<string, unknown>).subArchitectures, `archMap[${i}].subArchitectures`);
    });
  }
  if (v.syscalls !== undefined && v.syscalls !== null) {
    if (!Array.isArray(v.syscalls)) fail('syscalls', 'must be a list');
    (v.syscalls as unknown[]).forEach((r, i) => {
      const at = `syscalls[${i}]`;
      if (!isObj(r)) return fail(at, 'must be an object');
      if (r.names !== undefined && r.name !== undefined) fail(at, 'has both "name" and "names": use one');
      if (r.names === undefined && typeof r.name !== 'string') fail(`${at}.names`, 'is missing');
      strings(r.names, `${at}.names`);
      if (typeof r.action !== 'string' || !ACTIONS.includes(r.action)) fail(`${at}.action`, `unknown action ${JSON.stringify(r.action)} (use one of ${ACTIONS.join(', ')})`);
      uint(r.errnoRet, `${at}.errnoRet`, 4095);
      if (r.args !== undefined && r.args !== null) {
        if (!Array.isArray(r.args)) fail(`${at}.args`, 'must be a list');
        (r.args as unknown[]).forEach((a, j) => {
          const aw = `${at}.args[${j}]`;
          if (!isObj(a)) return fail(aw, 'must be an object');
          uint(a.index, `${aw}.index`, 5);
          if (a.index === undefined) fail(`${aw}.index`, 'is missing');
          uint(a.value, `${aw}.value`);
          uint(a.valueTwo, `${aw}.valueTwo`);
          if (typeof a.op !== 'string' || !OPS.includes(a.op)) fail(`${aw}.op`, `unknown operator ${JSON.stringify(a.op)} (use one of ${OPS.join(', ')})`);
        });
      }
      for (const k of ['includes', 'excludes']) {
        const f = r[k];
        if (f === undefined || f === null) continue;
        if (!isObj(f)) return fail(`${at}.${k}`, 'must be an object');
        strings(f.caps, `${at}.${k}.caps`);
        strings(f.arches, `${at}.${k}.arches`);
        if (f.minKernel !== undefined && (typeof f.minKernel !== 'string' || !/^\d+\.\d+/.test(f.minKernel))) fail(`${at}.${k}.minKernel`, 'must be a kernel version such as "4.8"');
      }
    });
  }
  return v as unknown as SeccompProfile;
}

/** Read and check a profile file (docker's seccomp profile format). */
export function readProfile(path: string, where = `--security-opt seccomp=${path}`): SeccompProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LxrError(`${where}: cannot read the profile (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LxrError(`${where}: the profile is not valid JSON (${(e as Error).message})`);
  }
  return checkProfile(v, where);
}
