// docker run's everyday flags beyond the basic ones (issue 22): their yargs options, their
// parsing into RunFlags (kept in the container's record), and what they change in the
// runtime spec. Each bad value is refused before anything is made, in docker's words:
// `invalid argument "VALUE" for "--FLAG" flag: REASON`.
import { lstatSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createServer, isIP } from 'node:net';
import { createSocket } from 'node:dgram';
import type { Mount, Spec, NamespaceType } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';
import { nativeBuildPath } from '../../native/paths.js';
import { sysctlNamespace } from '../../runtime/index.js';
import { readFileInRoot } from '../../image-tool/index.js';
import { parseHealthFlags } from './health.js';
import { parseLogFlags } from './logrotate.js';
import type { DeviceFlag, PortMapping, RunFlags, UlimitFlag } from '../core/types.js';

const bad = (flag: string, value: string, why: string) => new LxrError(`invalid argument "${value}" for "${flag}" flag: ${why}`, { exitCode: 125 });

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker's RAMInBytes: 64m, 1g, 1024, 1.5g (binary units). */
export function parseSize(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw bad(flag, s, 'expected a size such as 64m or 1g');
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

function parseInteger(flag: string, s: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(s.trim())) throw bad(flag, s, 'expected an integer');
  const n = Number(s);
  if (n < min || n > max) throw bad(flag, s, `must be between ${min} and ${max}`);
  return n;
}

const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as'];

export function parseUlimit(s: string): UlimitFlag {
  const m = /^([a-z]+)=([^:]*)(?::(.*))?$/.exec(s);
  if (!m) throw bad('--ulimit', s, 'expected NAME=SOFT[:HARD]');
  const name = m[1]!;
  if (!ULIMITS.includes(name)) throw bad('--ulimit', s, `invalid ulimit type: ${name}`);
  const num = (v: string) => {
    if (v === '-1' || v === 'unlimited') return -1;
    if (!/^\d+$/.test(v)) throw bad('--ulimit', s, `"${v}" is not a number`);
    return Number(v);
  };
  const soft = num(m[2]!);
  const hard = m[3] === undefined ? soft : num(m[3]);
  if (hard !== -1 && (soft === -1 || soft > hard)) throw bad('--ulimit', s, `ulimit soft limit must be less than or equal to hard limit: ${m[2]} > ${m[3]}`);
  return { name, soft, hard };
}

function cpuset(flag: string, s: string): string {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(s)) throw bad(flag, s, 'expected a list such as 0-2,4');
  return s;
}

export function parseDevice(s: string): DeviceFlag {
  const parts = s.split(':');
  let access = 'rwm';
  if (parts.length > 1 && /^[rwm]+$/.test(parts[parts.length - 1]!)) access = parts.pop()!;
  if (parts.length > 2 || !parts[0]) throw bad('--device', s, 'expected HOSTDEVICE[:CONTAINERPATH][:rwm]');
  const path = parts[0];
  const containerPath = parts[1] ?? path;
  if (!isAbsolute(path) || !isAbsolute(containerPath)) throw bad('--device', s, 'device paths must be absolute');
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new LxrError(`error gathering device information while adding custom device "${path}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, { exitCode: 125 });
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new LxrError(`error gathering device information while adding custom device "${path}": not a device node`, { exitCode: 125 });
  return { path, containerPath, access };
}

function parseNsMode(flag: string, s: string, allowed: string[]): string {
  if (allowed.includes(s)) return s;
  if (/^container:[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(s) && flag !== '--uts') return s;
  throw bad(flag, s, `use ${allowed.join(' | ')}${flag !== '--uts' ? ' | container:NAME' : ''}`);
}

const SIGNALS = ['HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'PWR', 'SYS'];

export function parseSignal(flag: string, s: string): string {
  if (/^\d+$/.test(s) && Number(s) > 0 && Number(s) < 65) return s;
  const n = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(n) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(n)) return `SIG${n}`;
  throw bad(flag, s, 'invalid signal');
}

/** The RunFlags of parsed arguments; throws on the first bad value. */
export function parseRunFlags(a: Record<string, unknown>): { flags?: RunFlags } {
  const f: RunFlags = {};
  const dns = list(a.dns);
  for (const d of dns) if (!isIP(d)) throw bad('--dns', d, 'not an IP address');
  if (dns.length) f.dns = dns;
  if (list(a['dns-search']).length) f.dnsSearch = list(a['dns-search']);
  if (list(a['dns-option']).length) f.dnsOption = list(a['dns-option']);
  const hosts = list(a['add-host']).map((h) => {
    const i = h.search(/[:=]/);
    const name = h.slice(0, i);
    const ip = h.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
    if (i <= 0 || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw bad('--add-host', h, 'expected NAME:IP');
    if (!isIP(ip)) throw bad('--add-host', h, `invalid IP address in add-host: "${ip}"`);
    return { name, ip };
  });
  if (hosts.length) f.addHost = hosts;
  if (a['shm-size'] !== undefined) {
    f.shmSize = parseSize('--shm-size', String(a['shm-size']));
    if (f.shmSize <= 0) throw bad('--shm-size', String(a['shm-size']), 'must be greater than 0');
  }
  const ul = list(a.ulimit).map(parseUlimit);
  if (ul.length) f.ulimits = ul;
  if (a['memory-swap'] !== undefined) {
    const v = String(a['memory-swap']);
    f.memorySwap = v === '-1' ? -1 : parseSize('--memory-swap', v);
    // docker's rules and words
    if (a.memory === undefined) throw new LxrError('You should always set the Memory limit when using Memoryswap limit, see usage', { exitCode: 125 });
    if (f.memorySwap !== -1 && f.memorySwap < parseSize('--memory', String(a.memory))) throw new LxrError('Minimum memoryswap limit should be larger than memory limit, see usage', { exitCode: 125 });
  }
  if (a['memory-reservation'] !== undefined) f.memoryReservation = parseSize('--memory-reservation', String(a['memory-reservation']));
  if (a['cpu-shares'] !== undefined) f.cpuShares = parseInteger('--cpu-shares', String(a['cpu-shares']), 2, 262144);
  if (a['cpuset-cpus'] !== undefined) f.cpusetCpus = cpuset('--cpuset-cpus', String(a['cpuset-cpus']));
  if (a['cpuset-mems'] !== undefined) f.cpusetMems = cpuset('--cpuset-mems', String(a['cpuset-mems']));
  if (a['oom-score-adj'] !== undefined) f.oomScoreAdj = parseInteger('--oom-score-adj', String(a['oom-score-adj']), -1000, 1000);
  const dev = list(a.device).map(parseDevice);
  if (dev.length) f.devices = dev;
  const tmpfs = list(a.tmpfs).map((t) => {
    const i = t.indexOf(':');
    const path = i < 0 ? t : t.slice(0, i);
    if (!isAbsolute(path)) throw bad('--tmpfs', t, 'the mount path must be absolute');
    const options = i < 0 ? [] : t.slice(i + 1).split(',').filter(Boolean);
    for (const o of options) if (!/^[a-z_]+(=[A-Za-z0-9.:+-]+)?$/.test(o)) throw bad('--tmpfs', t, `invalid mount option "${o}"`);
    return { path, options };
  });
  if (tmpfs.length) f.tmpfs = tmpfs;
  if (a.pid !== undefined) f.pid = parseNsMode('--pid', String(a.pid), ['host', 'private']);
  if (a.ipc !== undefined) f.ipc = parseNsMode('--ipc', String(a.ipc), ['private', 'shareable', 'none', 'host']);
  if (a.uts !== undefined) f.uts = parseNsMode('--uts', String(a.uts), ['host', 'private']);
  for (const kv of list(a.sysctl)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw bad('--sysctl', kv, 'expected KEY=VALUE');
    const key = kv.slice(0, eq);
    // docker's list: the IPC and network ones (kernel.hostname is --hostname's)
    const ns = sysctlNamespace(key);
    if ((ns !== 'ipc' && ns !== 'network') || key.includes('..')) throw bad('--sysctl', kv, `sysctl '${key}' is not allowed: it is not namespaced, so it would change the host`);
    const net = String(a.net ?? a.network ?? '');
    if (ns === 'network' && (net === 'host' || net.startsWith('container:'))) throw bad('--sysctl', kv, `sysctl '${key}' is not allowed in the host network namespace`);
    if (ns === 'ipc' && (a.ipc === 'host' || String(a.ipc ?? '').startsWith('container:'))) throw bad('--sysctl', kv, `sysctl '${key}' is not allowed with --ipc ${String(a.ipc)}`);
    (f.sysctl ??= {})[key] = kv.slice(eq + 1);
  }
  if (a.init) f.init = true;
  const log = parseLogFlags(a['log-driver'], list(a['log-opt']));
  if (log) f.log = log;
  const health = parseHealthFlags(a);
  if (health) f.health = health;
  const expose = list(a.expose).flatMap((e) => {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(e);
    const lo = Number(m?.[1]);
    const hi = m?.[2] ? Number(m[2]) : lo;
    if (!m || lo < 1 || hi > 65535 || hi < lo) throw bad('--expose', e, 'expected PORT[/tcp|udp] or START-END[/tcp|udp] within 1-65535');
    return Array.from({ length: hi - lo + 1 }, (_, i) => `${lo + i}/${m[3] ?? 'tcp'}`);
  });
  if (expose.length) f.expose = expose;
  if (a['publish-all']) f.publishAll = true;
  for (const g of list(a['group-add'])) if (!/^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/.test(g)) throw bad('--group-add', g, 'expected a group name or number');
  if (list(a['group-add']).length) f.groupAdd = list(a['group-add']);
  if (a['stop-signal'] !== undefined) f.stopSignal = parseSignal('--stop-signal', String(a['stop-signal']));
  if (a['stop-timeout'] !== undefined) f.stopTimeout = parseInteger('--stop-timeout', String(a['stop-timeout']), -1, 2 ** 31);
  if (a.platform !== undefined) {
    const p = String(a.platform);
    if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(p)) throw bad('--platform', p, 'expected OS/ARCH[/VARIANT], e.g. linux/amd64');
    f.platform = p;
  }
  if (a.cidfile !== undefined) f.cidfile = resolve(String(a.cidfile));
  return Object.keys(f).length ? { flags: f } : {};
}

/** Where a namespace of another container is: /proc/PID/ns/X of its running init. */
export type NamespaceOf = (container: string, type: NamespaceType) => string;

const NS_FILE: Partial<Record<NamespaceType, string>> = { pid: 'pid', ipc: 'ipc', uts: 'uts' };

function setNamespace(spec: Spec, type: NamespaceType, mode: string | undefined, nsOf: NamespaceOf): void {
  if (!mode || mode === 'private' || mode === 'shareable') return;
  const linux = (spec.linux ??= {});
  let ns = (linux.namespaces ?? []).filter((n) => n.type !== type);
  if (mode.startsWith('container:')) ns = [...ns, { type, path: nsOf(mode.slice(10), type) }];
  else if (mode === 'none') ns = [...ns, { type }];
  linux.namespaces = ns;
  void NS_FILE;
}

/**
 * The flags' changes to the spec. `dir` is the container's directory (generated files go
 * to dir/etc); `haveFiles` the /etc files the network brought (bridge), whose content this
 * replaces or extends.
 */
export function applyRunFlags(spec: Spec, f: RunFlags | undefined, o: { dir: string; rootfs: string; network: string; nsOf: NamespaceOf }): void {
  if (!f) return;
  const linux = (spec.linux ??= {});
  const proc = spec.process!;
  const mounts = (spec.mounts ??= []);
  const res = (linux.resources ??= {});
  if (f.shmSize !== undefined) {
    const shm = mounts.find((m) => m.destination === '/dev/shm');
    if (shm) shm.options = [...(shm.options ?? []).filter((x) => !x.startsWith('size=')), `size=${Math.ceil(f.shmSize / 1024)}k`];
  }
  if (f.ulimits) {
    const rl = (proc.rlimits ?? []).filter((r) => !f.ulimits!.some((u) => r.type === `RLIMIT_${u.name.toUpperCase()}`));
    const big = (n: number) => (n < 0 ? 0xffffffffffffffff : n);
    for (const u of f.ulimits) rl.push({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: big(u.soft), hard: big(u.hard) });
    proc.rlimits = rl;
  }
  if (f.memorySwap !== undefined || f.memoryReservation !== undefined) {
    const mem = (res.memory ??= {});
    if (f.memorySwap !== undefined) mem.swap = f.memorySwap;
    if (f.memoryReservation !== undefined) mem.reservation = f.memoryReservation;
  }
  if (f.cpuShares !== undefined || f.cpusetCpus || f.cpusetMems) {
    const cpu = (res.cpu ??= {});
    if (f.cpuShares !== undefined) cpu.shares = f.cpuShares;
    if (f.cpusetCpus) cpu.cpus = f.cpusetCpus;
    if (f.cpusetMems) cpu.mems = f.cpusetMems;
  }
  if (f.oomScoreAdj !== undefined) proc.oomScoreAdj = f.oomScoreAdj;
  for (const d of f.devices ?? []) {
    const st = lstatSync(d.path, { bigint: true });
    const rdev = st.rdev;
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    const type = st.isBlockDevice() ? 'b' : 'c';
    linux.devices = [...(linux.devices ?? []).filter((x) => x.path !== d.containerPath), { path: d.containerPath, type, major, minor, fileMode: Number(st.mode & 0o777n), uid: 0, gid: 0 }];
    res.devices = [...(res.devices ?? []), { allow: true, type, major, minor, access: d.access }];
  }
  for (const t of f.tmpfs ?? []) {
    const user = t.options;
    const defaults = ['nosuid', 'nodev', 'noexec'].filter((d) => !user.includes(d.slice(2)) && !user.includes(d));
    const m: Mount = { destination: t.path, type: 'tmpfs', source: 'tmpfs', options: [...defaults, ...user] };
    const at = mounts.findIndex((x) => x.destination === t.path);
    if (at >= 0) mounts.splice(at, 1);
    mounts.push(m);
  }
  setNamespace(spec, 'pid', f.pid, o.nsOf);
  setNamespace(spec, 'ipc', f.ipc, o.nsOf);
  setNamespace(spec, 'uts', f.uts, o.nsOf);
  if (f.ipc === 'none') spec.mounts = (spec.mounts ?? []).filter((m) => m.destination !== '/dev/shm');
  if (f.ipc === 'host' || f.ipc?.startsWith('container:')) spec.mounts = (spec.mounts ?? []).filter((m) => m.destination !== '/dev/shm' || m.type !== 'tmpfs');
  if (f.ipc === 'host') spec.mounts!.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
  if (f.sysctl) linux.sysctl = { ...linux.sysctl, ...f.sysctl };
  if (f.init) {
    // docker 1.13's place for its init: /dev is the container's own tmpfs, so nothing is
    // made in the rootfs; read-only, so that the container cannot write the host's file
    spec.mounts!.push({ destination: INIT_PATH, type: 'bind', source: pid1Exe(), options: ['bind', 'ro', 'nosuid', 'nodev'] });
    proc.args = [INIT_PATH, '--', ...(proc.args ?? [])];
  }
  if (f.uts === 'host') delete spec.hostname;
  if (f.groupAdd?.length) {
    const groups = readFileInRoot(o.rootfs, '/etc/group') ?? '';
    const gids = f.groupAdd.map((g) => {
      if (/^\d+$/.test(g)) return Number(g);
      const line = groups.split('\n').find((l) => l.split(':')[0] === g);
      const gid = line?.split(':')[2];
      if (!gid || !/^\d+$/.test(gid)) throw new LxrError(`--group-add ${g}: no group "${g}" in the image's /etc/group`, { exitCode: 125 });
      return Number(gid);
    });
    const user = (proc.user ??= { uid: 0, gid: 0 });
    user.additionalGids = [...new Set([...(user.additionalGids ?? []), ...gids])];
  }
  // resolv.conf and /etc/hosts: written here for networks that bring none (none, host); a
  // bridge network writes them itself (dnsFiles, with these options)
  if (o.network === 'none' || o.network === 'host') writeEtcFiles(spec, f, o.dir, o.network);
}

function writeEtcFiles(spec: Spec, f: RunFlags, dir: string, network: string): void {
  const etc = join(dir, 'etc');
  const mounts = spec.mounts!;
  if (f.dns || f.dnsSearch || f.dnsOption) {
    const host = network === 'host' && existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
    writeFileSync(join(etc, 'resolv.conf'), resolvConf(host, f));
    if (!mounts.some((m) => m.destination === '/etc/resolv.conf')) mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: join(etc, 'resolv.conf'), options: ['rbind', 'rprivate'] });
  }
  if (f.addHost?.length && existsSync(join(etc, 'hosts'))) {
    writeFileSync(join(etc, 'hosts'), readFileSync(join(etc, 'hosts'), 'utf8') + hostLines(f));
  }
}

/** The ports a container exposes: the image's EXPOSE, then --expose ("80/tcp"). */
export function exposedPorts(imageExposed: Record<string, object> | undefined, f: RunFlags | undefined): string[] {
  const norm = (p: string) => (p.includes('/') ? p : `${p}/tcp`);
  return [...new Set([...Object.keys(imageExposed ?? {}).map(norm), ...(f?.expose ?? [])])];
}

/** A host port nobody listens on now (the kernel's choice), for -P. */
async function freeHostPort(protocol: 'tcp' | 'udp'): Promise<number> {
  if (protocol === 'udp') {
    return new Promise((res, rej) => {
      const s = createSocket('udp4');
      s.once('error', rej);
      s.bind(0, () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
  }
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen({ port: 0, host: '0.0.0.0', exclusive: true }, () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
}

/**
 * -P: every exposed port that -p does not publish already gets a free host port. Only on a
 * bridge network: with none or host there is nothing to publish (docker does the same).
 */
export async function publishAll(s: { network: string; ports: PortMapping[]; flags?: RunFlags }, imageExposed: Record<string, object> | undefined): Promise<void> {
  if (!s.flags?.publishAll || s.network === 'none' || s.network === 'host' || s.network.startsWith('container:')) return;
  for (const e of exposedPorts(imageExposed, s.flags)) {
    const [port, proto] = e.split('/') as [string, 'tcp' | 'udp'];
    const containerPort = Number(port);
    if (s.ports.some((p) => p.containerPort === containerPort && p.protocol === proto)) continue;
    s.ports.push({ hostPort: await freeHostPort(proto), containerPort, protocol: proto });
  }
}

/** `lxr port`: "80/tcp -> 0.0.0.0:32768" lines, as docker prints them (optionally of one port). */
export function portLines(ports: PortMapping[], only?: string): string[] {
  const want = only ? (only.includes('/') ? only : `${only}/tcp`) : undefined;
  return ports
    .filter((p) => !want || `${p.containerPort}/${p.protocol}` === want)
    .map((p) => (only ? `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}` : `${p.containerPort}/${p.protocol} -> ${p.hostIp ?? '0.0.0.0'}:${p.hostPort}`));
}

/** Where --init's lxr-pid1 is in the container. */
export const INIT_PATH = '/dev/init';

/** native/build/lxr-pid1, the init of --init. */
export function pid1Exe(): string {
  const p = nativeBuildPath('lxr-pid1');
  if (existsSync(p)) return p;
  throw new LxrError('--init: native/build/lxr-pid1 is missing: run "npm install" (it is built with the native library)', { exitCode: 125 });
}

/** The add-host lines of /etc/hosts. */
export function hostLines(f: RunFlags | undefined): string {
  return (f?.addHost ?? []).map((h) => `${h.ip}\t${h.name}\n`).join('');
}

/** resolv.conf with --dns, --dns-search and --dns-option over the host's (as docker: each replaces the host's). */
export function resolvConf(host: string, f: RunFlags): string {
  const lines = host.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !l.startsWith(';'));
  const keep = (k: string) => lines.filter((l) => l.split(/\s+/)[0] === k);
  const out = ['# Generated by lxr'];
  out.push(...(f.dnsSearch ? [`search ${f.dnsSearch.join(' ')}`] : keep('search')));
  out.push(...(f.dns ? f.dns.map((d) => `nameserver ${d}`) : keep('nameserver')));
  out.push(...(f.dnsOption ? [`options ${f.dnsOption.join(' ')}`] : keep('options')));
  return out.join('\n') + '\n';
}
