// The network of a rootless container. An ordinary user cannot make a bridge or a veth, so
// (as rootless podman) the container gets a network namespace of its own, owned by its user
// namespace, and a user-mode network stack attached to it from outside:
//   slirp4netns   podman 4's default: tap0 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3;
//                 -p through its API socket (add_hostfwd), listening on the host
//   pasta         podman 5's default (Debian package passt): the host's addresses copied in,
//                 -p as pasta's -t/-u options
//   none, host    as for root
// The helper is attached, before the container is created, to a holder process whose user and
// network namespaces the container then joins (setupRootlessNetwork); both are recorded with
// their /proc start times and killed when the container stops.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, rmSync, openSync, closeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { LxrError } from '../../common/errors.js';
import { native } from '../../native/index.js';
import type { Mount } from '../../oci-spec/types.js';
import type { LxrContext } from '../core/context.js';
import { procStat } from '../../common/proc.js';
import { findTool } from '../../native/idmap.js';
import type { ContainerRecord, PortMapping } from '../core/types.js';

export const USER_NETWORKS = ['slirp4netns', 'pasta'];

/** The lowest port an ordinary user may bind on this host (net.ipv4.ip_unprivileged_port_start). */
function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** Checked before anything is made. */
export function checkRootlessNetwork(network: string, ports: PortMapping[]): void {
  if (network === 'none' || network === 'host') {
    if (ports.length && network === 'none') throw new LxrError('-p: publishing ports needs a network (--network none has no interfaces)');
    return;
  }
  if (!USER_NETWORKS.includes(network)) {
    throw new LxrError(`--network ${network}: an ordinary user cannot make bridges or veths; a rootless container uses slirp4netns or pasta (the default), none or host`);
  }
  if (!findTool(network)) throw new LxrError(`--network ${network}: ${network} is not installed (Debian package ${network === 'pasta' ? 'passt' : 'slirp4netns'})`);
  const start = unprivilegedPortStart();
  for (const p of ports) {
    // podman's (rootlessport's) answer, word for word in substance
    if (p.hostPort < start) {
      throw new LxrError(`-p ${p.hostPort}:${p.containerPort}: rootless lxr cannot expose privileged port ${p.hostPort}: you can add 'net.ipv4.ip_unprivileged_port_start=${p.hostPort}' to /etc/sysctl.conf (currently ${start}), or choose a larger port number (>= ${start})`);
    }
  }
}

/** /etc/resolv.conf and the rest, before the spec is written. */
export function rootlessNetworkMounts(dir: string, network: string): Mount[] {
  if (!USER_NETWORKS.includes(network)) return [];
  const etc = join(dir, 'etc');
  mkdirSync(etc, { recursive: true });
  // slirp4netns's built-in DNS forwarder, or the address pasta forwards to the host's resolver
  writeFileSync(join(etc, 'resolv.conf'), `nameserver ${network === 'pasta' ? PASTA_DNS : '10.0.2.3'}\n`);
  return [{ destination: '/etc/resolv.conf', type: 'bind', source: join(etc, 'resolv.conf'), options: ['rbind', 'rprivate'] }];
}

interface UserNetProcess {
  pid: number;
  start: string;
}

interface UserNetState {
  /** the process that holds the user and network namespaces the container joins */
  holder?: UserNetProcess;
  /** slirp4netns or pasta */
  helper?: UserNetProcess;
}

function readState(ctx: LxrContext, id: string): UserNetState {
  try {
    return JSON.parse(readFileSync(stateFile(ctx, id), 'utf8')) as UserNetState;
  } catch {
    return {};
  }
}

function writeState(ctx: LxrContext, id: string, st: UserNetState): void {
  writeFileSync(stateFile(ctx, id), JSON.stringify(st));
}

function processOf(pid: number): UserNetProcess {
  return { pid, start: procStat(pid)?.startTime ?? '' };
}

export interface RootlessNetworkSetup {
  netnsPath?: string;
  usernsPath?: string;
  mounts: Mount[];
}

/**
 * Before the container is created: for slirp4netns and pasta, a holder process (sleep, run by
 * lxr-init in a new user namespace with the user's maps and a new network namespace) whose
 * namespaces the container joins, with the user-mode network attached to it. The container's
 * own init cannot be the target: it is not dumpable until it execs, so the helper could not
 * open its namespaces (podman keeps such namespaces in its pause process for the same reason).
 */
export async function setupRootlessNetwork(ctx: LxrContext, rec: ContainerRecord): Promise<RootlessNetworkSetup> {
  const mode = rec.settings.network;
  const dir = join(ctx.containers, rec.id);
  const mounts = rootlessNetworkMounts(dir, mode);
  if (!USER_NETWORKS.includes(mode)) return { mounts };
  await stopUserNetwork(ctx, rec.id); // left over from a run whose clean-up never came
  const { spawnInUserns } = await import('../../native/userns.js');
  const { CLONE } = await import('../../native/idmap.js');
  const nullFd = openSync('/dev/null', 'r+');
  let holder: number;
  try {
    holder = await spawnInUserns({ argv: ['sleep', 'infinity'], env: [], stdio: [nullFd, nullFd, nullFd], extraFlags: CLONE.NEWNET });
  } finally {
    closeSync(nullFd);
  }
  // reaped by whoever outlives us (init, or lxr-monitor, a subreaper): we never wait for it
  writeState(ctx, rec.id, { holder: processOf(holder) });
  try {
    await startUserNetwork(ctx, rec, holder);
  } catch (e) {
    await stopUserNetwork(ctx, rec.id);
    throw e;
  }
  return { netnsPath: `/proc/${holder}/ns/net`, usernsPath: `/proc/${holder}/ns/user`, mounts };
}

function apiSocket(ctx: LxrContext, id: string): string {
  return join(ctx.runRoot, `slirp4netns-${id.slice(0, 12)}.sock`);
}

function stateFile(ctx: LxrContext, id: string): string {
  return join(ctx.containers, id, 'usernet.json');
}

async function apiCall(sock: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let text = '';
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (d) => (text += d.toString()));
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new LxrError(`slirp4netns API: unexpected answer ${JSON.stringify(text)}`));
      }
    });
  });
}

/** Attach the user-mode network to the namespaces of `pid`. */
async function startUserNetwork(ctx: LxrContext, rec: ContainerRecord, pid: number): Promise<void> {
  const mode = rec.settings.network;
  if (!USER_NETWORKS.includes(mode)) return;
  const tool = findTool(mode);
  if (!tool) throw new LxrError(`--network ${mode}: ${mode} is not installed`);
  const dir = join(ctx.containers, rec.id);
  const logFd = openSync(join(dir, `${mode}.log`), 'a', 0o600);
  let child;
  // a unix socket path has at most 107 bytes: under the run dir, by the short id
  const api = apiSocket(ctx, rec.id);
  try {
    if (mode === 'slirp4netns') {
      rmSync(api, { force: true });
      child = spawn(tool, ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--api-socket', api, '--ready-fd', '3', String(pid), 'tap0'], {
        detached: true, stdio: ['ignore', logFd, logFd, 'pipe'],
      });
    } else {
      return await startPasta(ctx, rec, tool, pid, logFd);
    }
  } finally {
    closeSync(logFd);
  }
  child.unref();
  const cpid = child.pid;
  if (!cpid) throw new LxrError(`--network ${mode}: cannot start ${tool}`);
  writeState(ctx, rec.id, { ...readState(ctx, rec.id), helper: processOf(cpid) });
  // --ready-fd: it writes "1" once tap0 is configured
  const ready = child.stdio[3] as Socket;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new LxrError(`slirp4netns was not ready within 10 s (see ${join(dir, 'slirp4netns.log')})`)), 10000);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      ready.destroy();
      if (ok) resolve();
      else reject(new LxrError(`slirp4netns exited before it was ready: ${whyFailed(join(dir, 'slirp4netns.log'))}`));
    };
    ready.once('data', () => done(true));
    ready.once('close', () => done(false));
    ready.once('error', () => done(false));
  });
  for (const p of rec.settings.ports) {
    const r = await apiCall(api, { execute: 'add_hostfwd', arguments: { proto: p.protocol, host_addr: p.hostIp ?? '0.0.0.0', host_port: p.hostPort, guest_port: p.containerPort } });
    if (r.error) throw new LxrError(`-p ${p.hostPort}:${p.containerPort}: slirp4netns: ${JSON.stringify(r.error)}`);
  }
}

/** The address in the container that pasta answers DNS queries on (podman 5's). */
const PASTA_DNS = '169.254.1.1';

/**
 * pasta, as podman 5 starts it: it configures the namespace, forks into the background and
 * then exits, so its exit says it is ready; --pid names the process that stays.
 */
async function startPasta(ctx: LxrContext, rec: ContainerRecord, tool: string, pid: number, logFd: number): Promise<void> {
  const dir = join(ctx.containers, rec.id);
  const pidFile = join(dir, 'pasta.pid');
  rmSync(pidFile, { force: true });
  const ports = rec.settings.ports.flatMap((p) => [p.protocol === 'udp' ? '-u' : '-t', `${p.hostIp ? `${p.hostIp}/` : ''}${p.hostPort}:${p.containerPort}`]);
  const args = [
    '--config-net', '--quiet', '--pid', pidFile, '--dns-forward', PASTA_DNS, '--no-map-gw',
    ...(ports.includes('-t') ? [] : ['-t', 'none']), ...(ports.includes('-u') ? [] : ['-u', 'none']), ...ports, '-T', 'none', '-U', 'none', String(pid),
  ];
  const child = spawn(tool, args, { stdio: ['ignore', logFd, logFd] });
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.once('error', () => resolve(-1));
  });
  let daemon = NaN;
  try {
    daemon = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    /* none */
  }
  if (Number.isInteger(daemon) && daemon > 0) writeState(ctx, rec.id, { ...readState(ctx, rec.id), helper: processOf(daemon) });
  if (code !== 0) throw new LxrError(`--network pasta: pasta ${args.join(' ')} failed (exit status ${code}): ${whyFailed(join(dir, 'pasta.log'))}`);
  if (!(daemon > 0)) throw new LxrError(`--network pasta: pasta wrote no pid to ${pidFile}`);
}

/** Stop the container's slirp4netns or pasta and its namespace holder, if they still run. Safe to call twice. */
export async function stopUserNetwork(ctx: LxrContext, id: string): Promise<void> {
  const st = readState(ctx, id);
  for (const p of [st.helper, st.holder]) {
    // the same process (pid and start time), never a later one that reuses the pid
    if (p && procStat(p.pid)?.startTime === p.start) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      // ours (a foreground run, or a failed create): reap it, so that no zombie is left
      if (parentOf(p.pid) === process.pid) await native().wait(p.pid);
    }
  }
  rmSync(stateFile(ctx, id), { force: true });
  rmSync(apiSocket(ctx, id), { force: true });
}

function parentOf(pid: number): number | undefined {
  try {
    return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

function whyFailed(file: string): string {
  try {
    // slirp4netns says why first, then how it ends
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return lines.find((l) => /too long|failed|error|cannot|No such/i.test(l)) ?? (lines.pop() || '(no output)');
  } catch {
    return '(no output)';
  }
}
