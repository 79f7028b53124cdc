// The runtime side of CNI (SPEC.md section 3): load network configuration lists, derive
// each plugin's request configuration, execute the chain and read results and errors.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LxrError } from '../../../common/errors.js';
import { compareVersions, type CniResult, type NetworkConfList, type PluginConf } from './types.js';
import { runPlugin, type LocalPlugins, type PluginReply, type PluginRequest } from './skel.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface LoadedNetwork {
  file: string;
  list: NetworkConfList;
}

/** Parse and validate one .conflist file; errors name the file. */
export function parseConfList(file: string, text: string): NetworkConfList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LxrError(`network configuration ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const l = raw as NetworkConfList;
  if (typeof l !== 'object' || l === null || Array.isArray(l)) throw new LxrError(`network configuration ${file} is not a JSON object`);
  if (typeof l.name !== 'string' || !NAME_RE.test(l.name)) throw new LxrError(`network configuration ${file}: invalid or missing "name"`);
  if (typeof l.cniVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(l.cniVersion)) {
    throw new LxrError(`network configuration ${file}: invalid or missing "cniVersion"`);
  }
  if (!Array.isArray(l.plugins) || l.plugins.length === 0) throw new LxrError(`network configuration ${file}: "plugins" must be a non-empty list`);
  for (const [i, p] of l.plugins.entries()) {
    if (typeof p?.type !== 'string' || !p.type || p.type.includes('/')) {
      throw new LxrError(`network configuration ${file}: plugins[${i}] has an invalid "type"`);
    }
  }
  return l;
}

/** All network configuration lists in `dir` (*.conflist, lexical order; the first file wins a duplicate name). */
export function loadNetworks(dir: string): LoadedNetwork[] {
  if (!existsSync(dir)) return [];
  const seen = new Set<string>();
  const out: LoadedNetwork[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.conflist')).sort()) {
    const file = join(dir, f);
    const list = parseConfList(file, readFileSync(file, 'utf8'));
    if (seen.has(list.name)) continue;
    seen.add(list.name);
    out.push({ file, list });
  }
  return out;
}

/** Where a chain's plugins come from: CNI_PATH, and which of them may run in this process. */
export interface CniExec {
  path: string[];
  local?: LocalPlugins;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS */
  args?: string;
  /** capability arguments, e.g. { portMappings: [...] } */
  capabilityArgs?: Record<string, unknown>;
}

/** The request configuration of one plugin (SPEC.md "Deriving request configuration"). */
export function requestConfig(
  list: NetworkConfList,
  plugin: NetworkConfList['plugins'][number],
  extra: { capabilityArgs?: Record<string, unknown>; prevResult?: CniResult; gcValid?: { containerID: string; ifname: string }[] },
): PluginConf {
  const { capabilities, ...rest } = plugin;
  const conf: PluginConf = { ...rest, cniVersion: list.cniVersion, name: list.name } as PluginConf;
  for (const k of Object.keys(conf)) if (k.startsWith('cni.dev/')) delete conf[k];
  if (extra.gcValid) {
    conf['cni.dev/valid-attachments'] = extra.gcValid;
    return conf;
  }
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) {
    if (on && extra.capabilityArgs && cap in extra.capabilityArgs) rc[cap] = extra.capabilityArgs[cap];
  }
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  else delete conf.runtimeConfig;
  if (extra.prevResult) conf.prevResult = extra.prevResult;
  return conf;
}

export function findPluginExe(type: string, cniPath: string[]): string {
  for (const dir of cniPath) {
    const p = join(dir, type);
    if (existsSync(p)) return p;
  }
  throw new LxrError(`CNI plugin ${type} not found in ${cniPath.join(':') || '(empty CNI path)'}`);
}

/** Execute one plugin; resolves to its parsed stdout (undefined when empty); rejects with a one-line error. */
export async function execPlugin(
  network: string,
  type: string,
  command: string,
  conf: PluginConf | { cniVersion: string },
  env: Record<string, string>,
  cniPath: string[],
  local?: LocalPlugins,
): Promise<unknown> {
  const exe = findPluginExe(type, cniPath);
  const request = { env: { ...env, CNI_COMMAND: command, CNI_PATH: cniPath.join(':') }, stdin: JSON.stringify(conf) };
  const own = local?.(type, cniPath);
  const r = own ? await runPlugin(own, request, local) : await spawnPlugin(network, exe, request);
  const text = r.stdout.trim();
  if (r.status !== 0) {
    let msg = '';
    try {
      const e = JSON.parse(text) as { code?: number; msg?: string; details?: string };
      msg = `${e.msg ?? 'failed'}${e.details ? ` (${e.details})` : ''} [CNI error ${e.code}]`;
    } catch {
      const lines = (text || (r.stderr ?? '').trim() || `exit status ${r.status}`).split('\n').map((l) => l.trim()).filter(Boolean);
      msg = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit status ${r.status}`;
    }
    throw new LxrError(`network ${network}: CNI plugin ${type} ${command} failed: ${msg}`);
  }
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new LxrError(`network ${network}: CNI plugin ${type} ${command} printed invalid JSON: ${text.slice(0, 200)}`);
  }
}

function spawnPlugin(network: string, exe: string, req: PluginRequest): Promise<PluginReply> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, [], { env: { ...process.env, ...req.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new LxrError(`network ${network}: running CNI plugin ${exe}: ${e.message}`)));
    child.on('close', (code) => resolve({ status: code ?? 1, stdout: out, stderr: err }));
    child.stdin.on('error', () => {
      /* the plugin may exit without reading stdin */
    });
    child.stdin.end(req.stdin);
  });
}

function attachEnv(a: Attachment): Record<string, string> {
  return { CNI_CONTAINERID: a.containerId, CNI_NETNS: a.netns, CNI_IFNAME: a.ifname, ...(a.args ? { CNI_ARGS: a.args } : {}) };
}

/** ADD the whole list; returns the final result. (On failure the caller must DEL: SPEC.md "Lifecycle".) */
export async function addNetworkList(list: NetworkConfList, a: Attachment, cni: CniExec): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const p of list.plugins) {
    const conf = requestConfig(list, p, { capabilityArgs: a.capabilityArgs, prevResult: prev });
    const r = (await execPlugin(list.name, p.type, 'ADD', conf, attachEnv(a), cni.path, cni.local)) as CniResult | undefined;
    if (!r || typeof r !== 'object') throw new LxrError(`network ${list.name}: CNI plugin ${p.type} ADD returned no result`);
    prev = r;
  }
  return prev as CniResult;
}

/**
 * DEL the list in reverse order with the ADD's final result as prevResult. It halts at the
 * first error, as SPEC.md says, unless `bestEffort` (used to undo a failed ADD, where a
 * plugin that is missing or broken must not keep the others from cleaning up): then every
 * plugin runs and the errors are reported together.
 */
export async function delNetworkList(
  list: NetworkConfList,
  a: Attachment,
  cni: CniExec,
  prevResult?: CniResult,
  bestEffort = false,
): Promise<void> {
  const errors: string[] = [];
  for (const p of [...list.plugins].reverse()) {
    const conf = requestConfig(list, p, { capabilityArgs: a.capabilityArgs, prevResult });
    try {
      await execPlugin(list.name, p.type, 'DEL', conf, attachEnv(a), cni.path, cni.local);
    } catch (e) {
      if (!bestEffort) throw e;
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new LxrError(errors.join('; '));
}

export async function checkNetworkList(list: NetworkConfList, a: Attachment, cni: CniExec, prevResult: CniResult): Promise<void> {
  if (list.disableCheck) return;
  for (const p of list.plugins) {
    const conf = requestConfig(list, p, { capabilityArgs: a.capabilityArgs, prevResult });
    await execPlugin(list.name, p.type, 'CHECK', conf, attachEnv(a), cni.path, cni.local);
  }
}

/** GC (CNI 1.1.0+): every plugin runs even if one fails; all errors are reported together. */
export async function gcNetworkList(list: NetworkConfList, valid: { containerID: string; ifname: string }[], cni: CniExec): Promise<void> {
  if (list.disableGC || compareVersions(list.cniVersion, '1.1.0') < 0) return;
  const errors: string[] = [];
  for (const p of list.plugins) {
    try {
      await execPlugin(list.name, p.type, 'GC', requestConfig(list, p, { gcValid: valid }), {}, cni.path, cni.local);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new LxrError(errors.join('; '));
}

/** STATUS (CNI 1.1.0+): resolves when every plugin is ready. */
export async function statusNetworkList(list: NetworkConfList, cni: CniExec): Promise<void> {
  if (compareVersions(list.cniVersion, '1.1.0') < 0) return;
  for (const p of list.plugins) await execPlugin(list.name, p.type, 'STATUS', requestConfig(list, p, {}), {}, cni.path, cni.local);
}
