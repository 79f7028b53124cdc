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
  /** plugins that may run in this process instead of being executed (see plugins/local.ts) */
  local?: LocalPlugins;
}

export interface PluginHandlers {
  add(a: PluginArgs): Promise<CniResult> | CniResult;
  del(a: PluginArgs): Promise<void> | void;
  check(a: PluginArgs): Promise<void> | void;
  status(a: PluginArgs): Promise<void> | void;
  gc(a: PluginArgs): Promise<void> | void;
}

export interface Plugin {
  /** the line printed when the plugin is run by hand, without CNI_COMMAND */
  about: string;
  handlers: PluginHandlers;
}

/**
 * Which plugin types found in a CNI path are lxr's own and can run in the calling process:
 * the same code, with the same inputs and outputs, without a Node start-up per plugin.
 */
export type LocalPlugins = (type: string, path: string[]) => Plugin | undefined;

/** One invocation, as the protocol defines it: the CNI_* environment and the configuration on stdin. */
export interface PluginRequest {
  env: Record<string, string | undefined>;
  stdin: string;
}

/** What a plugin process would have printed and its exit status. */
export interface PluginReply {
  status: number;
  stdout: string;
  stderr?: string;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const failure = (code: number, msg: string, details?: string, version = CNI_VERSION): PluginReply => ({
  status: 1,
  stdout: JSON.stringify({ cniVersion: version, code, msg, ...(details ? { details } : {}) }) + '\n',
});

/** Everything before the handler runs: the protocol's checks, or the reply that ends it early. */
function prepare(p: Plugin, req: PluginRequest, local?: LocalPlugins): { reply: PluginReply } | { a: PluginArgs; version: string } {
  const env = (name: string): string => req.env[name] ?? '';
  const command = env('CNI_COMMAND');
  const stdin = req.stdin;
  if (command === 'VERSION') {
    let v = CNI_VERSION;
    try {
      v = (JSON.parse(stdin) as { cniVersion?: string }).cniVersion ?? CNI_VERSION;
    } catch {
      /* VERSION works with any input */
    }
    return { reply: { status: 0, stdout: JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }) + '\n' } };
  }
  if (command === '') return { reply: { status: 1, stdout: '', stderr: `${p.about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n` } };
  if (!['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'].includes(command)) return { reply: failure(ERR.invalidEnv, `unknown CNI_COMMAND "${command}"`) };
  let conf: PluginConf;
  try {
    conf = JSON.parse(stdin) as PluginConf;
  } catch (e) {
    return { reply: failure(ERR.decode, 'cannot decode the network configuration on stdin', (e as Error).message) };
  }
  if (typeof conf !== 'object' || conf === null) return { reply: failure(ERR.decode, 'the network configuration on stdin is not a JSON object') };
  const version = typeof conf.cniVersion === 'string' ? conf.cniVersion : '';
  if (!SUPPORTED_VERSIONS.includes(version)) {
    return { reply: failure(ERR.incompatibleVersion, `incompatible CNI version "${version}"`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`) };
  }
  if ((command === 'STATUS' || command === 'GC') && compareVersions(version, '1.1.0') < 0) {
    return { reply: failure(ERR.incompatibleVersion, `${command} needs CNI version 1.1.0 or later, the configuration says ${version}`, undefined, version) };
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
    ...(local ? { local } : {}),
  };
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    const missing: string[] = [];
    if (!ID_RE.test(a.containerId)) missing.push('CNI_CONTAINERID');
    if (!a.ifname) missing.push('CNI_IFNAME');
    if (command !== 'DEL' && !a.netns) missing.push('CNI_NETNS');
    if (missing.length) return { reply: failure(ERR.invalidEnv, `missing or invalid environment variables: ${missing.join(', ')}`, undefined, version) };
  }
  return { a, version };
}

function dispatch(h: PluginHandlers, a: PluginArgs): unknown {
  switch (a.command) {
    case 'ADD':
      return h.add(a);
    case 'DEL':
      return h.del(a);
    case 'CHECK':
      return h.check(a);
    case 'STATUS':
      return h.status(a);
    default:
      return h.gc(a);
  }
}

function success(a: PluginArgs, version: string, r: unknown): PluginReply {
  return { status: 0, stdout: a.command === 'ADD' ? JSON.stringify({ ...(r as CniResult), cniVersion: version }) + '\n' : '' };
}

function caught(e: unknown, version: string): PluginReply {
  if (e instanceof CniError) return failure(e.code, e.message, e.details, version);
  return failure(ERR.system, (e as Error)?.message ?? String(e), undefined, version);
}

/** Run one invocation of a plugin: exactly what its process would print, without exiting. */
export async function runPlugin(p: Plugin, req: PluginRequest, local?: LocalPlugins): Promise<PluginReply> {
  const prep = prepare(p, req, local);
  if ('reply' in prep) return prep.reply;
  try {
    return success(prep.a, prep.version, await dispatch(p.handlers, prep.a));
  } catch (e) {
    return caught(e, prep.version);
  }
}

/** runPlugin for a delegation from synchronous code: the handler must not return a promise. */
export function runPluginSync(p: Plugin, req: PluginRequest, local?: LocalPlugins): PluginReply {
  const prep = prepare(p, req, local);
  if ('reply' in prep) return prep.reply;
  try {
    const r = dispatch(p.handlers, prep.a);
    if (r instanceof Promise) {
      r.catch(() => {});
      throw new CniError(ERR.system, `${p.about.split(':')[0]} ${prep.a.command} cannot be delegated to in-process`);
    }
    return success(prep.a, prep.version, r);
  } catch (e) {
    return caught(e, prep.version);
  }
}

/** A plugin executable's main: the environment, stdin, stdout and the exit status. */
export async function pluginMain(p: Plugin): Promise<void> {
  let stdin = '';
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    stdin = '';
  }
  const r = await runPlugin(p, { env: process.env, stdin });
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  process.exitCode = r.status;
}

/**
 * Turn a plugin's exit status and stdout into its result (ADD), undefined (other commands),
 * or a thrown CniError carrying the plugin's own error code and message.
 */
export function parseReply(type: string, command: string, r: PluginReply): CniResult | undefined {
  const out = r.stdout.trim();
  if (r.status !== 0) {
    let e: { code?: number; msg?: string; details?: string } | undefined;
    try {
      e = JSON.parse(out) as typeof e;
    } catch {
      /* not an error object */
    }
    if (e && typeof e === 'object') throw new CniError(e.code ?? ERR.system, `${type}: ${e.msg ?? 'failed'}`, e.details);
    throw new CniError(ERR.system, `${type} failed with exit status ${r.status}${out ? `: ${out}` : ''}`);
  }
  if (command !== 'ADD') return undefined;
  try {
    return JSON.parse(out) as CniResult;
  } catch {
    throw new CniError(ERR.decode, `${type} returned a result that is not JSON: ${out.slice(0, 200)}`);
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
 * Run a delegated plugin (SPEC.md section 4) with the same environment and the complete
 * configuration: in this process when it is one of lxr's own (a.local), else as its
 * executable, whose stderr goes to ours. An error result is rethrown as a CniError.
 */
export function delegate(type: string, command: string, a: PluginArgs): CniResult | undefined {
  const env = {
    CNI_COMMAND: command, CNI_CONTAINERID: a.containerId, CNI_NETNS: a.netns, CNI_IFNAME: a.ifname,
    CNI_ARGS: a.args, CNI_PATH: a.path.join(':'),
  };
  const local = a.local?.(type, a.path);
  if (local) return parseReply(type, command, runPluginSync(local, { env, stdin: a.stdin }, a.local));
  const exe = findPlugin(type, a.path);
  const r = spawnSync(exe, [], { input: a.stdin, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  // EPIPE: the plugin exited without reading all of stdin (an early error); its reply stands
  if (r.error && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && r.status !== null)) {
    throw new CniError(ERR.system, `running ${exe}: ${r.error.message}`);
  }
  return parseReply(type, command, { status: r.status ?? 1, stdout: r.stdout ?? '' });
}
