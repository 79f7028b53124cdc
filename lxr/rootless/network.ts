// The network of a rootless container. An ordinary user cannot make a bridge or a veth, so
// (as rootless podman) the container gets a network namespace of its own, owned by its user
// namespace, and a user-mode network stack attached to it from outside:
//   slirp4netns   podman 4's default: tap0 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3;
//                 -p through its API socket (add_hostfwd), listening on the host
//   pasta         podman 5's default (Debian package passt): the host's addresses copied in,
//                 -p as pasta's -t/-u options
//   none, host    as for root
// The helper is started once the container's namespaces exist (after the runtime's create,
// before start), is recorded with its /proc start time, and killed when the container stops.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, rmSync, openSync, closeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { LxrError } from '../../runtime/errors.js';
import { procStat } from '../../runtime/container/state.js';
import { findTool } from '../../runtime/linux/namespaces.js';
import type { Mount } from '../../runtime/spec/types.js';
import type { LxrContext } from '../context.js';
import type { ContainerRecord, PortMapping } from '../containers/store.js';

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
  if (network !== 'slirp4netns') return [];
  const etc = join(dir, 'etc');
  mkdirSync(etc, { recursive: true });
  // slirp4netns's built-in DNS forwarder
  writeFileSync(join(etc, 'resolv.conf'), 'nameserver 10.0.2.3\n');
  return [{ destination: '/etc/resolv.conf', type: 'bind', source: join(etc, 'resolv.conf'), options: ['rbind', 'rprivate'] }];
}

interface UserNetProcess {
  pid: number;
  start: string;
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

/** Attach the user-mode network to the container whose init is `pid` (its namespaces exist). */
export async function startUserNetwork(ctx: LxrContext, rec: ContainerRecord, pid: number): Promise<void> {
  const mode = rec.settings.network;
  if (!USER_NETWORKS.includes(mode)) return;
  const tool = findTool(mode);
  if (!tool) throw new LxrError(`--network ${mode}: ${mode} is not installed`);
  const dir = join(ctx.containers, rec.id);
  const logFd = openSync(join(dir, `${mode}.log`), 'a', 0o600);
  let child;
  const api = join(dir, 'slirp.sock');
  try {
    if (mode === 'slirp4netns') {
      rmSync(api, { force: true });
      child = spawn(tool, ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--api-socket', api, '--ready-fd', '3', String(pid), 'tap0'], {
        detached: true, stdio: ['ignore', logFd, logFd, 'pipe'],
      });
    } else {
      const ports = rec.settings.ports.flatMap((p) => [p.protocol === 'udp' ? '-u' : '-t', `${p.hostIp ? `${p.hostIp}/` : ''}${p.hostPort}:${p.containerPort}`]);
      // pasta forks into the background once the namespace is configured; -f keeps it ours
      child = spawn(tool, ['--config-net', '--quiet', '-f', ...(ports.some((p) => p === '-t') ? [] : ['-t', 'none']), ...ports, ...(ports.some((p) => p === '-u') ? [] : ['-u', 'none']), '-T', 'none', '-U', 'none', String(pid)], {
        detached: true, stdio: ['ignore', logFd, logFd],
      });
    }
  } finally {
    closeSync(logFd);
  }
  child.unref();
  const cpid = child.pid;
  if (!cpid) throw new LxrError(`--network ${mode}: cannot start ${tool}`);
  const me: UserNetProcess = { pid: cpid, start: procStat(cpid)?.startTime ?? '' };
  writeFileSync(stateFile(ctx, rec.id), JSON.stringify(me));
  try {
    if (mode === 'slirp4netns') {
      // --ready-fd: it writes "1" once tap0 is configured
      const ready = child.stdio[3] as Socket;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new LxrError(`slirp4netns was not ready within 10 s (see ${join(dir, 'slirp4netns.log')})`)), 10000);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          ready.destroy();
          if (ok) resolve();
          else reject(new LxrError(`slirp4netns exited before it was ready (see ${join(dir, 'slirp4netns.log')})`));
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
  } catch (e) {
    stopUserNetwork(ctx, rec.id);
    throw e;
  }
}

/** Stop the container's slirp4netns or pasta, if it still runs. Safe to call twice. */
export function stopUserNetwork(ctx: LxrContext, id: string): void {
  const f = stateFile(ctx, id);
  let p: UserNetProcess;
  try {
    p = JSON.parse(readFileSync(f, 'utf8'));
  } catch {
    return;
  }
  // the same process (pid and start time), never a later one that reuses the pid
  if (procStat(p.pid)?.startTime === p.start) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  rmSync(f, { force: true });
  rmSync(join(ctx.containers, id, 'slirp.sock'), { force: true });
}
