// Published ports: parsing `-p` specs and checking that a host port is free.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { LxrError } from '../../common/errors.js';
import { isIPv4 } from './ipv4.js';

export interface PublishedPort {
  /** host address to listen on; all host addresses when missing */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

function port(s: string, spec: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new LxrError(`invalid ${what} "${s}" in port spec "${spec}"`);
  const n = Number(s);
  if (n < 1 || n > 65535) throw new LxrError(`${what} ${n} in port spec "${spec}" is out of range (1-65535)`);
  return n;
}

/** Parse `HOST:CONTAINER[/proto]`, `IP:HOST:CONTAINER[/proto]` or `CONTAINER[/proto]` (same port on the host). */
export function parsePortSpec(spec: string): PublishedPort {
  const [body, proto = 'tcp', extra] = spec.split('/');
  if (extra !== undefined || (proto !== 'tcp' && proto !== 'udp')) {
    throw new LxrError(`invalid protocol in port spec "${spec}" (expected tcp or udp)`);
  }
  const parts = body.split(':');
  let hostIp: string | undefined;
  let host: string;
  let ctr: string;
  if (parts.length === 1) [host, ctr] = [parts[0], parts[0]];
  else if (parts.length === 2) [host, ctr] = parts;
  else if (parts.length === 3) [hostIp, host, ctr] = parts;
  else throw new LxrError(`invalid port spec "${spec}" (expected [IP:]HOSTPORT:CONTAINERPORT[/PROTO])`);
  if (hostIp !== undefined && !isIPv4(hostIp)) throw new LxrError(`invalid host address "${hostIp}" in port spec "${spec}"`);
  return {
    ...(hostIp ? { hostIp } : {}),
    hostPort: port(host, spec, 'host port'),
    containerPort: port(ctr, spec, 'container port'),
    protocol: proto,
  };
}

/** Resolves when `hostIp:hostPort/protocol` can be bound now; rejects with a clear message if it is in use. */
export function checkHostPortFree(p: { hostIp?: string; hostPort: number; protocol: string }): Promise<void> {
  const addr = p.hostIp ?? '0.0.0.0';
  const what = `host port ${addr}:${p.hostPort}/${p.protocol}`;
  return new Promise((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) =>
      reject(new LxrError(e.code === 'EADDRINUSE' ? `${what} is already in use` : `${what} cannot be used: ${e.message}`));
    if (p.protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (e) => {
        s.close();
        fail(e);
      });
      s.bind(p.hostPort, addr, () => s.close(() => resolve()));
    } else {
      const s = createServer();
      s.once('error', fail);
      s.listen({ port: p.hostPort, host: addr, exclusive: true }, () => s.close(() => resolve()));
    }
  });
}
