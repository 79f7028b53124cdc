// Where to reach a registry: the real host, mirrors, and whether plain HTTP is allowed.
// Sources: /etc/lxr/registries.json (or $LXR_REGISTRIES_CONFIG), plus command-line
// --insecure-registry and --registry-mirror. File format:
//   { "insecure-registries": ["host:5000"],
//     "registry-mirrors": ["https://mirror.example"],          // for docker.io, like dockerd
//     "registries": { "docker.io": { "mirrors": ["host:5000"] },
//                     "ghcr.io":   { "location": "127.0.0.1:5001", "insecure": true },
//                     "reg.lan":   { "location": "https://reg.lan:5000", "ca": "/etc/lxr/reg.lan.pem" } } }
// "insecure" allows plain HTTP, and HTTPS without certificate checks; "ca" adds a PEM
// file of trusted certificates for that registry (on top of the system's).
import { readFile } from 'node:fs/promises';
import { ImageError } from '../core/errors.js';
import { DOCKER_HUB } from '../core/reference.js';

export const DEFAULT_REGISTRIES_CONFIG = '/etc/lxr/registries.json';
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface RegistryHostConfig {
  /** host[:port] or URL that serves this registry's API instead of the registry's own name. */
  location?: string;
  insecure?: boolean;
  /** Tried in order before the registry itself (pulls only). */
  mirrors?: string[];
  /** PEM file with extra CA certificates for this registry's HTTPS. */
  ca?: string;
}

export interface RegistriesConfig {
  insecureRegistries: string[];
  /** Mirrors for docker.io. */
  registryMirrors: string[];
  registries: Record<string, RegistryHostConfig>;
}

export interface RegistryOptions {
  /** Path of the config file; default $LXR_REGISTRIES_CONFIG or /etc/lxr/registries.json (missing is fine). */
  registriesConfig?: string;
  /** Already loaded configuration (wins over registriesConfig). */
  config?: RegistriesConfig;
  insecureRegistries?: string[];
  registryMirrors?: string[];
}

export interface Endpoint {
  /** scheme://host[:port], no trailing slash */
  base: string;
  host: string;
  mirror: boolean;
  /** HTTPS settings beyond the defaults. */
  tls?: { ca?: string; skipVerify?: boolean };
}

export function emptyConfig(): RegistriesConfig {
  return { insecureRegistries: [], registryMirrors: [], registries: {} };
}

export async function loadRegistriesConfig(path?: string): Promise<RegistriesConfig> {
  const explicit = path;
  const file = explicit ?? DEFAULT_REGISTRIES_CONFIG;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return emptyConfig();
    throw new ImageError('CONFIG', `cannot read registries config ${file}: ${(e as Error).message}`);
  }
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ImageError('CONFIG', `registries config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const strs = (v: unknown, what: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ImageError('CONFIG', `registries config ${file}: "${what}" must be an array of strings`);
    return v;
  };
  const cfg: RegistriesConfig = {
    insecureRegistries: strs(doc?.['insecure-registries'], 'insecure-registries'),
    registryMirrors: strs(doc?.['registry-mirrors'], 'registry-mirrors'),
    registries: {},
  };
  const regs = doc?.registries ?? {};
  if (typeof regs !== 'object' || Array.isArray(regs)) throw new ImageError('CONFIG', `registries config ${file}: "registries" must be an object`);
  for (const [host, v] of Object.entries(regs as Record<string, any>)) {
    const h: RegistryHostConfig = {};
    if (v?.location !== undefined) {
      if (typeof v.location !== 'string') throw new ImageError('CONFIG', `registries config ${file}: registries["${host}"].location must be a string`);
      h.location = v.location;
    }
    if (v?.insecure !== undefined) h.insecure = Boolean(v.insecure);
    if (v?.mirrors !== undefined) h.mirrors = strs(v.mirrors, `registries["${host}"].mirrors`);
    if (v?.ca !== undefined) {
      if (typeof v.ca !== 'string') throw new ImageError('CONFIG', `registries config ${file}: registries["${host}"].ca must be a file path`);
      h.ca = v.ca;
    }
    cfg.registries[host] = h;
  }
  return cfg;
}

export async function resolveRegistryConfig(opts: RegistryOptions): Promise<RegistriesConfig> {
  const base = opts.config ?? (await loadRegistriesConfig(opts.registriesConfig));
  return {
    insecureRegistries: [...base.insecureRegistries, ...(opts.insecureRegistries ?? [])],
    registryMirrors: [...(opts.registryMirrors ?? []), ...base.registryMirrors],
    registries: base.registries,
  };
}

export function isLoopback(host: string): boolean {
  const h = hostOnly(host);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function hostOnly(hostport: string): string {
  if (hostport.startsWith('[')) return hostport.slice(1, hostport.indexOf(']'));
  const i = hostport.lastIndexOf(':');
  return i >= 0 && hostport.indexOf(':') === i ? hostport.slice(0, i) : hostport;
}

export function isInsecure(host: string, cfg: RegistriesConfig): boolean {
  return isLoopback(host) || isMarkedInsecure(host, cfg);
}

/** Marked insecure by the user (flag or config), as opposed to loopback. */
export function isMarkedInsecure(host: string, cfg: RegistriesConfig): boolean {
  const strip = (s: string) => s.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  if (cfg.insecureRegistries.map(strip).includes(host)) return true;
  for (const [name, h] of Object.entries(cfg.registries)) {
    if (h.insecure && (name === host || (h.location && strip(h.location) === host))) return true;
  }
  return false;
}

/** Turn `host:port` or `scheme://host:port` into an endpoint, enforcing the plain-HTTP rule. */
export function toEndpoint(spec: string, cfg: RegistriesConfig, mirror: boolean): Endpoint {
  const m = /^([a-z]+):\/\/([^/]+)\/?$/.exec(spec);
  const host = m ? m[2]! : spec.replace(/\/+$/, '');
  if (!host || host.includes('/')) throw new ImageError('CONFIG', `bad registry address "${spec}" (expected host[:port] or https://host[:port])`);
  const insecure = isInsecure(host, cfg);
  let scheme = m ? m[1]! : insecure ? 'http' : 'https';
  if (scheme !== 'http' && scheme !== 'https') throw new ImageError('CONFIG', `bad registry address "${spec}": scheme must be http or https`);
  if (scheme === 'http' && !insecure) {
    throw new ImageError('CONFIG', `plain HTTP to registry ${host} is not allowed; mark it insecure with --insecure-registry ${host} or in the registries config`);
  }
  const ep: Endpoint = { base: `${scheme}://${host}`, host, mirror };
  if (scheme === 'https') {
    const ca = Object.entries(cfg.registries).find(([name, h]) => h.ca && (name === host || (h.location && h.location.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '') === host)))?.[1].ca;
    // Only a registry the user marked insecure gets HTTPS without certificate checks;
    // loopback is allowed plain HTTP, but an HTTPS loopback registry is still verified.
    const skipVerify = isMarkedInsecure(host, cfg);
    if (ca || skipVerify) ep.tls = { ...(ca ? { ca } : {}), ...(skipVerify ? { skipVerify } : {}) };
  }
  return ep;
}

/** Endpoints to try for a registry, mirrors first (when `forPull`), then the registry itself. */
export function endpointsFor(registry: string, cfg: RegistriesConfig, forPull: boolean): Endpoint[] {
  const hc = cfg.registries[registry] ?? {};
  const out: Endpoint[] = [];
  if (forPull) {
    const mirrors = [...(hc.mirrors ?? []), ...(registry === DOCKER_HUB ? cfg.registryMirrors : [])];
    for (const m of mirrors) out.push(toEndpoint(m, cfg, true));
  }
  const location = hc.location ?? (registry === DOCKER_HUB ? DOCKER_HUB_API : registry);
  const main = toEndpoint(location, hc.insecure ? { ...cfg, insecureRegistries: [...cfg.insecureRegistries, location.replace(/^[a-z]+:\/\//, '')] } : cfg, false);
  out.push(main);
  return out;
}
