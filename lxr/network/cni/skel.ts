// The plugin side of the CNI protocol (SPEC.md section 2): read the environment and the
// configuration on stdin, dispatch to the plugin's command handlers, and print the result
// or an error object. Each lxr plugin's entry point is one call to `pluginMain`.
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CNI_VERSION, CniError, ERR, SUPPORTED_VERSIONS, compareVersions, type CniResult, type PluginConf } from './types.js';

export interface PluginArgs {
  command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string[];
  conf: PluginConf;
  /** raw stdin, passed unchanged to delegated plugins */
  stdin: string;
}

export interface PluginHandlers {
  add(a: PluginArgs): Promise<CniResult> | CniResult;
  del(a: PluginArgs): Promise<void> | void;
  check(a: PluginArgs): Promise<void> | void;
  status(a: PluginArgs): Promise<void> | void;
  gc(a: PluginArgs): Promise<void> | void;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function env(name: string): string {
  return process.env[name] ?? '';
}

function fail(code: number, msg: string, details?: string, version = CNI_VERSION): never {
  const out = { cniVersion: version, code, msg, ...(details ? { details } : {}) };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(1);
}

export async function pluginMain(about: string, h: PluginHandlers): Promise<void> {
  const command = env('CNI_COMMAND');
  let stdin = '';
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    stdin = '';
  }
  if (command === 'VERSION') {
    let v = CNI_VERSION;
    try {
      v = (JSON.parse(stdin) as { cniVersion?: string }).cniVersion ?? CNI_VERSION;
    } catch {
      /* VERSION works with any input */
    }
    process.stdout.write(JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
    return;
  }
  if (command === '') {
    process.stderr.write(`${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
    process.exit(1);
  }
  if (!['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'].includes(command)) fail(ERR.invalidEnv, `unknown CNI_COMMAND "${command}"`);
  let conf: PluginConf;
  try {
    conf = JSON.parse(stdin) as PluginConf;
  } catch (e) {
    fail(ERR.decode, 'cannot decode the network configuration on stdin', (e as Error).message);
  }
  if (typeof conf !== 'object' || conf === null) fail(ERR.decode, 'the network configuration on stdin is not a JSON object');
  const version = typeof conf.cniVersion === 'string' ? conf.cniVersion : '';
  if (!SUPPORTED_VERSIONS.includes(version)) {
    fail(ERR.incompatibleVersion, `incompatible CNI version "${version}"`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if ((command === 'STATUS' || command === 'GC') && compareVersions(version, '1.1.0') < 0) {
    fail(ERR.incompatibleVersion, `${command} needs CNI version 1.1.0 or later, the configuration says ${version}`, undefined, version);
  }
  const a: PluginArgs = {
    command: command as PluginArgs['command'],
    containerId: env('CNI_CONTAINERID'),
    netns: env('CNI_NETNS'),
    ifname: env('CNI_IFNAME'),
    args: env('CNI_ARGS'),
    path: env('CNI_PATH').split(':').filter(Boolean),
    conf,
    stdin,
  };
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    const missing: string[] = [];
    if (!ID_RE.test(a.containerId)) missing.push('CNI_CONTAINERID');
    if (!a.ifname) missing.push('CNI_IFNAME');
    if (command !== 'DEL' && !a.netns) missing.push('CNI_NETNS');
    if (missing.length) fail(ERR.invalidEnv, `missing or invalid environment variables: ${missing.join(', ')}`, undefined, version);
  }
  try {
    if (command === 'ADD') {
      const r = await h.add(a);
      process.stdout.write(JSON.stringify({ ...r, cniVersion: version }) + '\n');
    } else if (command === 'DEL') await h.del(a);
    else if (command === 'CHECK') await h.check(a);
    else if (command === 'STATUS') await h.status(a);
    else await h.gc(a);
  } catch (e) {
    if (e instanceof CniError) fail(e.code, e.message, e.details, version);
    fail(ERR.system, (e as Error).message ?? String(e), undefined, version);
  }
}

/** Find a plugin executable in CNI_PATH. */
export function findPlugin(type: string, path: string[]): string {
  if (!type || type.includes('/')) throw new CniError(ERR.invalidConfig, `invalid plugin type "${type}"`);
  for (const dir of path) {
    const p = join(dir, type);
    if (existsSync(p)) return p;
  }
  throw new CniError(ERR.invalidConfig, `CNI plugin ${type} not found in CNI_PATH ${path.join(':') || '(empty)'}`);
}

/**
 * Execute a delegated plugin (SPEC.md section 4) with the same environment and the complete
 * configuration. Its stderr goes to ours; an error result is rethrown as a CniError.
 */
export function delegate(type: string, command: string, a: PluginArgs): CniResult | undefined {
  const exe = findPlugin(type, a.path);
  const r = spawnSync(exe, [], {
    input: a.stdin,
    encoding: 'utf8',
    env: { ...process.env, CNI_COMMAND: command },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  if (r.error) throw new CniError(ERR.system, `running ${exe}: ${r.error.message}`);
  const out = (r.stdout ?? '').trim();
  if (r.status !== 0) {
    try {
      const e = JSON.parse(out) as { code?: number; msg?: string; details?: string };
      throw new CniError(e.code ?? ERR.system, `${type}: ${e.msg ?? 'failed'}`, e.details);
    } catch (err) {
      if (err instanceof CniError) throw err;
      throw new CniError(ERR.system, `${type} failed with exit status ${r.status}${out ? `: ${out}` : ''}`);
    }
  }
  if (command !== 'ADD') return undefined;
  try {
    return JSON.parse(out) as CniResult;
  } catch {
    throw new CniError(ERR.decode, `${type} returned a result that is not JSON: ${out.slice(0, 200)}`);
  }
}
