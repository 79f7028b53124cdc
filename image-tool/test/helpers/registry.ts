// Test harness: a real distribution registry (Debian's docker-registry) on 127.0.0.1,
// optionally behind Docker-Hub-style token auth (a Node token service issuing JWTs
// signed with a self-signed certificate that the registry trusts), plus a small
// programmable reverse proxy for fault injection (429/5xx, cut connections, redirects,
// Basic auth). Everything listens on 127.0.0.1 and is removed by stop().
//
// Stable API (used by other lxr test files):
//   startRegistry(opts?)      -> { host, url, dataDir, stop() }   (opts.tls: HTTPS, + caFile)
//   startTokenRegistry(opts?) -> same + { tokenUrl, tokenRequests, service, users }
//   startProxy(target, hook)  -> { host, url, requests, stop() }
//   startBlobHost(target)     -> { host, url, requests, stop() }  (serves redirected blobs)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createHash, randomBytes, sign, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as netServer, type Socket } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryHandle {
  /** 127.0.0.1:PORT */
  host: string;
  /** http://127.0.0.1:PORT */
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface TokenRegistryHandle extends RegistryHandle {
  tokenUrl: string;
  service: string;
  /** Token requests seen: user ('' when anonymous) and the scopes asked for. */
  tokenRequests: Array<{ user: string; scopes: string[]; authorized: boolean }>;
  users: Record<string, string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const get = url.startsWith('https:') ? httpsRequest : httpRequest;
      const r = get(url + '/v2/', { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      r.on('error', () => resolve(false));
      r.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`docker-registry at ${url} did not come up: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function registryConfig(dataDir: string, addr: string, auth?: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dataDir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${addr}`,
    auth ?? '',
  ].join('\n');
}

async function launch(dir: string, config: string, onStop: () => Promise<void> = async () => {}, scheme: 'http' | 'https' = 'http'): Promise<RegistryHandle> {
  // The port is picked before the registry binds it; another test may grab it in between.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchOnce(dir, config, onStop, attempt === 3, scheme);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(String((e as Error).message))) throw e;
    }
  }
}

async function launchOnce(dir: string, config: string, onStop: () => Promise<void>, last: boolean, scheme: 'http' | 'https'): Promise<RegistryHandle> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: apt-get install -y docker-registry`);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const cfgPath = join(dir, 'config.yml');
  writeFileSync(cfgPath, config.replace('__ADDR__', host));
  let out = '';
  const proc = spawn(REGISTRY_BIN, ['serve', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (out = (out + d).slice(-4000)));
  proc.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const url = `${scheme}://${host}`;
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  };
  const stop = async () => {
    await kill();
    await onStop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, proc, () => out);
  } catch (e) {
    await kill();
    if (last || !/address already in use/.test(String((e as Error).message))) {
      await onStop();
      rmSync(dir, { recursive: true, force: true });
    }
    throw e;
  }
  return { host, url, dataDir: dir, stop };
}

export interface RegistryOptions {
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (made with openssl); its PEM is `caFile`. */
  tls?: boolean;
}

/** A registry (no auth) on 127.0.0.1 with storage in a temp dir; plain HTTP unless tls. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryHandle & { caFile?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-registry-'));
  if (!opts.tls) return launch(dir, registryConfig(dir, '__ADDR__'));
  const keyPath = join(dir, 'tls.key');
  const certPath = join(dir, 'tls.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl failed (apt-get install -y openssl): ${r.stderr}`);
  }
  const tls = ['  tls:', `    certificate: ${certPath}`, `    key: ${keyPath}`].join('\n');
  const cfg = registryConfig(dir, '__ADDR__').replace(/^(  addr: .*)$/m, `$1\n${tls}`);
  const h = await launch(dir, cfg, undefined, 'https');
  return { ...h, caFile: certPath };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export interface TokenRegistryOptions {
  /** user -> password accepted by the token service (Basic). Default { alice: 'secret' }. */
  users?: Record<string, string>;
  /** Anonymous users get pull on these repository prefixes (default: all, like public Hub repos). */
  publicRepos?: string[];
  /** The first N tokens issued are already expired (to test refresh on 401). */
  expiredTokens?: number;
}

/**
 * A registry with `auth: token:` pointing at a Node token service, the way Docker Hub
 * works: 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, tokens
 * from the realm (anonymous: pull on public repos; Basic-authenticated users: pull
 * and push), JWTs signed RS256 with a key whose self-signed cert (made with openssl
 * at test time) is the registry's rootcertbundle and travels in the x5c header.
 */
export async function startTokenRegistry(opts: TokenRegistryOptions = {}): Promise<TokenRegistryHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-registry-'));
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=lxr-test-token-issuer'], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl failed (apt-get install -y openssl): ${r.stderr}`);
  }
  const key = createPrivateKey(readFileSync(keyPath));
  const certDer = new X509Certificate(readFileSync(certPath)).raw;
  const users = opts.users ?? { alice: 'secret' };
  const service = 'lxr-test-registry';
  const issuer = 'lxr-test-issuer';
  const tokenRequests: TokenRegistryHandle['tokenRequests'] = [];
  let expiredLeft = opts.expiredTokens ?? 0;

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let user = '';
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Basic (.+)$/.exec(auth);
      const dec = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const i = dec.indexOf(':');
      const name = dec.slice(0, i);
      if (i <= 0 || users[name] === undefined || users[name] !== dec.slice(i + 1)) {
        tokenRequests.push({ user: name, scopes: u.searchParams.getAll('scope'), authorized: false });
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      user = name;
    }
    const scopes = u.searchParams.getAll('scope');
    tokenRequests.push({ user, scopes, authorized: true });
    const access = [];
    for (const s of scopes) {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) continue;
      const isPublic = opts.publicRepos ? opts.publicRepos.some((p) => name.startsWith(p)) : true;
      const granted = actions.split(',').filter((a) => (user ? a === 'pull' || a === 'push' : a === 'pull' && isPublic));
      if (granted.length) access.push({ type, name, actions: granted });
    }
    const now = Math.floor(Date.now() / 1000);
    const expired = expiredLeft > 0;
    if (expired) expiredLeft--;
    const claims = {
      iss: issuer,
      sub: user,
      aud: service,
      exp: expired ? now - 3600 : now + 300,
      nbf: expired ? now - 7200 : now - 10,
      iat: expired ? now - 7200 : now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signing}.${b64url(sign('sha256', Buffer.from(signing), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const tokenUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  const auth = ['auth:', '  token:', `    realm: ${tokenUrl}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${certPath}`].join('\n');
  try {
    const h = await launch(dir, registryConfig(dir, '__ADDR__', auth), () => new Promise<void>((r) => server.close(() => r())));
    return { ...h, tokenUrl, service, tokenRequests, users };
  } catch (e) {
    server.close();
    throw e;
  }
}

// --- fault-injecting reverse proxy -------------------------------------------

export interface ProxyRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface ProxyContext {
  /** Pass the request on to the target. cutAfter: close the connection after that many body bytes. */
  forward(opts?: { cutAfter?: number }): void;
}

export type ProxyHook = (req: IncomingMessage, res: ServerResponse, ctx: ProxyContext) => void;

export interface ProxyHandle {
  host: string;
  url: string;
  requests: ProxyRequest[];
  stop(): Promise<void>;
}

function forwardTo(target: string, req: IncomingMessage, res: ServerResponse, path: string, cutAfter?: number, dropAuth = false): void {
  const [hostname, port] = target.split(':');
  const headers = { ...req.headers, host: target };
  if (dropAuth) delete headers.authorization;
  const up = httpRequest({ hostname, port: Number(port), method: req.method, path, headers }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    if (cutAfter === undefined) {
      ur.pipe(res);
      return;
    }
    let sent = 0;
    ur.on('data', (chunk: Buffer) => {
      if (sent >= cutAfter) return;
      const part = chunk.subarray(0, Math.max(0, cutAfter - sent));
      sent += part.length;
      res.write(part);
      if (sent >= cutAfter) {
        ur.destroy();
        res.socket?.destroy();
      }
    });
    ur.on('end', () => res.end());
  });
  up.on('error', () => res.socket?.destroy());
  req.pipe(up);
}

/** A reverse proxy in front of `target` (host:port). The hook decides per request; default forwards. */
export async function startProxy(target: string, hook?: ProxyHook): Promise<ProxyHandle> {
  const requests: ProxyRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const ctx: ProxyContext = { forward: (o = {}) => forwardTo(target, req, res, req.url ?? '/', o.cutAfter) };
    if (hook) hook(req, res, ctx);
    else ctx.forward();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    url: `http://${host}`,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * A stand-in for blob storage (S3, a CDN): GET /blob/<repo>/<digest>?sig=... is served
 * from the registry `target`. It records the Authorization headers it receives, which
 * must be none, since a client must not forward registry credentials to another host.
 */
export async function startBlobHost(target: string): Promise<ProxyHandle> {
  return startProxy(target, (req, res) => {
    const m = /^\/blob\/(.+)\/(sha256:[a-f0-9]{64})/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    forwardTo(target, req, res, `/v2/${m[1]}/blobs/${m[2]}`, undefined, true);
  });
}

/** Hash helper for tests. */
export function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
