// Parsing the flags users know from podman and docker into CreateSettings pieces. Each bad
// value gets a one-line error naming the flag and the value.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createServer, isIPv4 } from 'node:net';
import { LxrError } from '../../common/errors.js';
import { readProfile, type SeccompProfile } from '../security/profile.js';
import type { PortMapping, RestartPolicy, VolumeMount } from '../core/types.js';

/**
 * The lines of an --env-file or --label-file, as docker reads them: blank lines and lines
 * starting with # are skipped; each other line goes to `each` with where it came from.
 */
export function readFlagFile(flag: string, file: string, each: (line: string, where: string) => void): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LxrError(`${flag} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  text.split('\n').forEach((line, i) => {
    const l = line.replace(/\r$/, '').trim();
    if (l && !l.startsWith('#')) each(l, `${flag} ${file} line ${i + 1}`);
  });
}

/** "-e KEY=VAL" as given; "-e KEY" takes KEY from lxr's own environment (skipped if unset). */
export function parseEnv(items: string[], envFiles: string[] = []): string[] {
  const out: string[] = [];
  const add = (item: string, where: string) => {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key || /\s/.test(key)) throw new LxrError(`${where}: invalid environment variable "${item}"`);
    if (eq < 0) {
      const v = process.env[key];
      if (v !== undefined) out.push(`${key}=${v}`);
      return;
    }
    out.push(item);
  };
  for (const f of envFiles) readFlagFile('--env-file', f, add);
  for (const e of items) add(e, '-e');
  return out;
}

/** Later entries win: KEY=1 then KEY=2 gives KEY=2 at the first position. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (const e of extra) {
    const key = e.slice(0, e.indexOf('='));
    const i = out.findIndex((x) => x === key || x.startsWith(`${key}=`));
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

/** -p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], or CONTAINERPORT (same host port). */
export function parsePort(s: string): PortMapping {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(s);
  if (!m) throw new LxrError(`-p ${s}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]`);
  const containerPort = Number(m[3]);
  const hostPort = m[2] ? Number(m[2]) : containerPort;
  for (const p of [containerPort, hostPort]) if (p < 1 || p > 65535) throw new LxrError(`-p ${s}: port ${p} is out of range 1-65535`);
  const r: PortMapping = { hostPort, containerPort, protocol: (m[4] as 'tcp' | 'udp') ?? 'tcp' };
  if (m[1]) r.hostIp = m[1];
  return r;
}

/** Fail early (before anything is made) when a published host port is taken. */
export async function checkPortFree(p: PortMapping): Promise<void> {
  if (p.protocol !== 'tcp') return;
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LxrError(`-p ${p.hostPort}:${p.containerPort}: host port ${p.hostIp ?? '0.0.0.0'}:${p.hostPort} is already in use (${e.code})`)),
    );
    srv.listen({ port: p.hostPort, host: p.hostIp ?? '0.0.0.0', exclusive: true }, () => srv.close(() => resolve()));
  });
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** -v HOST:CONTAINER[:ro|rw] with HOST an absolute path (must exist) or a volume name. */
export function parseVolume(s: string): VolumeMount {
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw new LxrError(`-v ${s}: expected HOST:CONTAINER[:OPTIONS] or NAME:CONTAINER[:OPTIONS]`);
  const [source, destination, options] = parts as [string, string, string | undefined];
  const opts = options === undefined ? [] : options.split(',');
  for (const o of opts) if (!['ro', 'rw', 'nocopy'].includes(o)) throw new LxrError(`-v ${s}: unknown option "${o}" (use ro, rw or nocopy)`);
  if (!isAbsolute(destination)) throw new LxrError(`-v ${s}: the container path "${destination}" must be absolute`);
  const named = !source.startsWith('/') && !source.startsWith('.');
  if (named) {
    if (!VOLUME_NAME.test(source)) throw new LxrError(`-v ${s}: "${source}" is neither an absolute host path nor a valid volume name`);
  } else {
    if (opts.includes('nocopy')) throw new LxrError(`-v ${s}: nocopy applies to named volumes only`);
    if (!isAbsolute(source)) throw new LxrError(`-v ${s}: the host path "${source}" must be absolute`);
    try {
      statSync(source);
    } catch (e) {
      throw new LxrError(`-v ${s}: host path ${source} does not exist (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  return { source, destination, readonly: opts.includes('ro'), named, ...(opts.includes('nocopy') ? { nocopy: true } : {}) };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** --memory 512m, 1g, 1048576 */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(s.trim());
  if (!m) throw new LxrError(`--memory ${s}: expected a size such as 512m or 2g`);
  const n = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (n < 6 * 1024 * 1024) throw new LxrError(`--memory ${s}: the minimum is 6m`);
  return n;
}

export function parseCpus(s: string | number): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new LxrError(`--cpus ${s}: expected a positive number such as 0.5 or 2`);
  return n;
}

export function parseRestart(s: string): RestartPolicy {
  if (s === 'no' || s === 'on-failure' || s === 'always') return s;
  if (s === 'unless-stopped') return 'always';
  throw new LxrError(`--restart ${s}: use no, on-failure or always`);
}

export function parseCap(s: string): string {
  const up = s.toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!/^CAP_[A-Z_]+$/.test(name)) throw new LxrError(`invalid capability "${s}"`);
  return name;
}

export interface SecurityOptions {
  seccomp?: string;
  seccompProfile?: SeccompProfile;
  noNewPrivileges?: boolean;
}

/**
 * --security-opt, as docker and podman take it: seccomp=unconfined, seccomp=PROFILE.json
 * (read and checked now), no-new-privileges[=true|false]. lxr applies no SELinux or
 * AppArmor, so only label=disable and apparmor=unconfined are accepted (they change nothing).
 */
export function parseSecurityOpts(items: string[]): SecurityOptions {
  const o: SecurityOptions = {};
  for (const item of items) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/s.exec(item);
    const key = m?.[1];
    const value = m?.[2];
    if (key === 'seccomp' && value) {
      // the file by its absolute path: that is what inspect shows
      o.seccomp = value === 'unconfined' ? value : resolve(value);
      if (value === 'unconfined') delete o.seccompProfile;
      else o.seccompProfile = readProfile(o.seccomp, `--security-opt seccomp=${value}`);
    } else if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) {
      o.noNewPrivileges = value !== 'false';
    } else if ((key === 'label' && value === 'disable') || (key === 'apparmor' && value === 'unconfined')) {
      /* nothing to turn off */
    } else {
      throw new LxrError(`--security-opt ${item}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]`);
    }
  }
  return o;
}

/**
 * --ide-bind ADDR: the host address code-server is served on (an IPv4 address; the default
 * is 127.0.0.1). Anything but a loopback address puts code-server, with only its password in
 * front of it, within reach of other machines: the warning says so.
 */
export function parseIdeBind(addr: string): { address: string; warning?: string } {
  if (!isIPv4(addr)) throw new LxrError(`--ide-bind ${addr}: expected an IPv4 address such as 127.0.0.1`);
  if (addr.startsWith('127.')) return { address: addr };
  return { address: addr, warning: `--ide-bind ${addr} is not a loopback address: code-server will be reachable from other machines, with only its password in front of it` };
}
