// A client for one repository on one registry endpoint (distribution-spec v1.1).
// It adds authentication, follows redirects itself (so Authorization never goes to
// another host, e.g. blob storage answering 307), and retries 429/5xx and broken
// connections with backoff. Bodies are streamed, never buffered, except manifests
// and configs, which are small and size-capped.
import { Agent, request, type Dispatcher } from 'undici';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ImageError } from '../core/errors.js';
import { USER_AGENT, fetchToken, parseChallenges } from './auth.js';
import type { Credentials } from './credentials.js';
import type { Endpoint, RegistriesConfig } from './config.js';
import { isInsecure } from './config.js';
import { MANIFEST_ACCEPT } from '../core/manifest.js';
import { isRetryable, parseRetryAfter, retryDelay, retryPolicy, sleep, type RetryPolicy } from '../core/retry.js';

export const MAX_MANIFEST_BYTES = 4 << 20;

const agents = new Map<string, Agent>();
/** One connection pool per TLS setting (system CAs, an extra CA file, or no verification). */
export function defaultDispatcher(tls?: Endpoint['tls']): Dispatcher {
  const key = `${tls?.ca ?? ''}|${tls?.skipVerify ? 'noverify' : ''}`;
  let a = agents.get(key);
  if (!a) {
    const connect: Record<string, unknown> = { timeout: 15_000 };
    if (tls?.ca) {
      let pem: string;
      try {
        pem = readFileSync(tls.ca, 'utf8');
      } catch (e) {
        throw new ImageError('CONFIG', `cannot read CA file ${tls.ca}: ${(e as Error).message}`);
      }
      connect.ca = [...rootCertificates, pem];
    }
    if (tls?.skipVerify) connect.rejectUnauthorized = false;
    a = new Agent({ connections: 16, keepAliveTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 120_000, connect });
    agents.set(key, a);
  }
  return a;
}

export interface ClientOptions {
  endpoint: Endpoint;
  /** Registry name as in the reference (docker.io), for messages and credentials. */
  registry: string;
  repository: string;
  credentials?: Credentials;
  /** pull or pull,push */
  actions: 'pull' | 'pull,push';
  config: RegistriesConfig;
  retry?: Partial<RetryPolicy>;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

interface SendOptions {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path below the endpoint (/v2/...) or an absolute URL on the registry. */
  url: string;
  headers?: Record<string, string>;
  /** Called for each try, so streamed bodies can be recreated. */
  body?: () => Dispatcher.DispatchOptions['body'];
  /** Cancels this request (on top of the client's own signal). */
  signal?: AbortSignal;
  followRedirects?: boolean;
  /** What the request is about, for messages: "manifest docker.io/library/x:latest". */
  what: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** URL that answered, without query string. */
  url: string;
}

export function redactUrl(u: string | URL): string {
  try {
    const x = new URL(u);
    return `${x.origin}${x.pathname}`;
  } catch {
    return String(u).split('?')[0]!;
  }
}

function header(h: Response['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Read at most `max` bytes of a body; throws if it is larger. */
export async function readLimited(body: AsyncIterable<Uint8Array>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new ImageError('MALFORMED', `${what} is larger than ${max} bytes`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

export class RegistryClient {
  readonly endpoint: Endpoint;
  readonly registry: string;
  readonly repository: string;
  private readonly opts: ClientOptions;
  private readonly dispatcher: Dispatcher;
  private readonly policy: RetryPolicy;
  private authorization: string | undefined;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.endpoint = opts.endpoint;
    this.registry = opts.registry;
    this.repository = opts.repository;
    this.dispatcher = opts.dispatcher ?? defaultDispatcher(opts.endpoint.tls);
    this.policy = retryPolicy(opts.retry);
  }

  private get scopes(): string[] {
    // No repository (login's ping): only what the registry's challenge asks for.
    return this.repository ? [`repository:${this.repository}:${this.opts.actions}`] : [];
  }

  /** Answer a 401's challenge; returns false when there is nothing more to try. */
  private async authenticate(res: Response, refresh: boolean): Promise<boolean> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer?.params.realm) {
      const scopes = this.scopes;
      const cs = bearer.params.scope;
      if (cs) for (const s of cs.split(' ')) if (!scopes.includes(s)) scopes.push(s);
      const req: Parameters<typeof fetchToken>[0] = {
        realm: bearer.params.realm,
        scopes,
        dispatcher: this.dispatcher,
        insecureHosts: (h) => isInsecure(h, this.opts.config),
        refresh,
      };
      if (bearer.params.service !== undefined) req.service = bearer.params.service;
      if (this.opts.credentials) req.credentials = this.opts.credentials;
      this.authorization = `Bearer ${await this.withRetry(`token for ${this.registry}/${this.repository}`, () => fetchToken(req))}`;
      return true;
    }
    if (basic && this.opts.credentials && !this.authorization?.startsWith('Basic ')) {
      const { username, password } = this.opts.credentials;
      this.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      return true;
    }
    return false;
  }

  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!isRetryable(e) || attempt >= this.policy.attempts) throw e;
        await sleep(retryDelay(this.policy, attempt), this.opts.signal);
      }
    }
  }

  /** One request with auth, redirects and retries. The caller owns the response body. */
  async send(o: SendOptions): Promise<Response> {
    let authTries = 0;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.sendOnce(o);
      } catch (e) {
        if (isRetryable(e) && attempt < this.policy.attempts) {
          await sleep(retryDelay(this.policy, attempt), this.opts.signal);
          continue;
        }
        if (e instanceof ImageError) throw e;
        const err = e as NodeJS.ErrnoException;
        const cause = (err.cause as NodeJS.ErrnoException | undefined) ?? err;
        const tlsProblem = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(String(cause.code ?? ''));
        const hint = tlsProblem ? ` (give the registry's CA with "ca" in the registries config, or mark it insecure)` : '';
        throw new ImageError('UNREACHABLE', `cannot reach registry ${this.endpoint.host} (${this.endpoint.base}) for ${o.what}: ${cause.message}${hint}`, { cause: e });
      }
      if (res.status === 401 && authTries < 2) {
        authTries++;
        const had = this.authorization !== undefined;
        if (await this.authenticate(res, had)) {
          await res.body.dump().catch(() => {});
          attempt--;
          continue;
        }
      }
      if ((res.status === 429 || res.status >= 500) && attempt < this.policy.attempts) {
        const after = parseRetryAfter(res.headers['retry-after']);
        await res.body.dump().catch(() => {});
        await sleep(retryDelay(this.policy, attempt, after), this.opts.signal);
        continue;
      }
      return res;
    }
  }

  private async sendOnce(o: SendOptions): Promise<Response> {
    let url = new URL(o.url.startsWith('/') ? this.endpoint.base + o.url : o.url);
    const origin = new URL(this.endpoint.base).origin;
    let method = o.method;
    let body = o.body?.();
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(o.headers ?? {}) };
      if (this.authorization && url.origin === origin) headers.authorization = this.authorization;
      const opts: Parameters<typeof request>[1] = { method, headers, dispatcher: this.dispatcher };
      if (body !== undefined) opts.body = body;
      const signal = o.signal && this.opts.signal ? AbortSignal.any([o.signal, this.opts.signal]) : o.signal ?? this.opts.signal;
      if (signal) opts.signal = signal;
      const r = await request(url, opts);
      const res: Response = { status: r.statusCode, headers: r.headers, body: r.body, url: redactUrl(url) };
      if (o.followRedirects && [301, 302, 303, 307, 308].includes(res.status)) {
        const loc = header(res.headers, 'location');
        await res.body.dump().catch(() => {});
        if (!loc) throw new ImageError('HTTP', `${o.what}: HTTP ${res.status} redirect without Location from ${res.url}`);
        if (hops >= 5) throw new ImageError('HTTP', `${o.what}: too many redirects (last ${res.url})`);
        const next = new URL(loc, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new ImageError('HTTP', `${o.what}: redirect to unsupported URL ${redactUrl(next)}`);
        if (url.protocol === 'https:' && next.protocol === 'http:' && !isInsecure(next.host, this.opts.config)) {
          throw new ImageError('HTTP', `${o.what}: refusing redirect from HTTPS to plain HTTP ${redactUrl(next)}`);
        }
        if (res.status === 303) {
          method = 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      return res;
    }
  }

  /** Build an error for an unexpected answer, with the registry's error code when it sent one. */
  async fail(res: Response, what: string): Promise<ImageError> {
    let detail = '';
    try {
      const text = (await readLimited(res.body, 64 << 10, 'error body')).toString('utf8');
      const doc = JSON.parse(text);
      const e = doc?.errors?.[0];
      if (e?.code) detail = ` ${e.code}${e.message ? `: ${e.message}` : ''}`;
    } catch {
      /* not JSON: the status says enough */
    }
    const where = `(HTTP ${res.status}${detail} from ${res.url})`;
    if (res.status === 404) return new ImageError('NOT_FOUND', `${what} not found ${where}`);
    if (res.status === 401 || res.status === 403) {
      return new ImageError('UNAUTHORIZED', `access to ${what} denied ${where}; the repository may not exist, or log in with "lxr-image login ${this.registry}" or --creds`);
    }
    return new ImageError('HTTP', `${what}: unexpected answer ${where}`, { retryable: res.status === 429 || res.status >= 500 });
  }

  private path(kind: 'manifests' | 'blobs', ref: string): string {
    return `/v2/${this.repository}/${kind}/${ref}`;
  }

  /** GET /v2/ (used by login to check credentials). */
  async ping(): Promise<void> {
    const res = await this.send({ method: 'GET', url: '/v2/', what: `registry ${this.registry}` });
    if (res.status === 200) {
      await res.body.dump();
      return;
    }
    if (res.status === 401) throw new ImageError('UNAUTHORIZED', `registry ${this.registry} refused the credentials (HTTP 401 from ${res.url})`);
    throw await this.fail(res, `registry ${this.registry}`);
  }

  /** Fetch a manifest or index by tag or digest. `what` names it in errors (the full reference). */
  async getManifest(ref: string, what: string): Promise<{ bytes: Buffer; contentType: string | undefined; digest: string; url: string }> {
    const res = await this.send({ method: 'GET', url: this.path('manifests', ref), headers: { accept: MANIFEST_ACCEPT }, what: `manifest ${what}` });
    if (res.status !== 200) throw await this.fail(res, `manifest ${what}`);
    const bytes = await this.withBodyErrors(() => readLimited(res.body, MAX_MANIFEST_BYTES, `manifest ${what} from ${res.url}`), res.url);
    const claimed = header(res.headers, 'docker-content-digest');
    const alg = ref.includes(':') ? ref.slice(0, ref.indexOf(':')) : claimed?.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
    if (ref.includes(':') && digest !== ref) {
      throw new ImageError('DIGEST_MISMATCH', `manifest ${what} from ${res.url} does not match its digest (got ${digest})`);
    }
    if (claimed && claimed.startsWith(`${alg}:`) && claimed !== digest) {
      throw new ImageError('DIGEST_MISMATCH', `manifest ${what} from ${res.url} does not match the Docker-Content-Digest header ${claimed} (got ${digest})`);
    }
    return { bytes, contentType: header(res.headers, 'content-type'), digest, url: res.url };
  }

  private async withBodyErrors<T>(fn: () => Promise<T>, url: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ImageError) throw e;
      if (isRetryable(e)) throw new ImageError('HTTP', `connection to ${url} broke: ${(e as Error).message}`, { retryable: true, cause: e });
      throw e;
    }
  }

  /** Open a blob for reading from `offset` (Range request when > 0). */
  async openBlob(digest: string, offset: number, signal?: AbortSignal): Promise<{ body: AsyncIterable<Uint8Array>; offset: number; url: string }> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const what = `blob ${digest} of ${this.registry}/${this.repository}`;
    const o: SendOptions = { method: 'GET', url: this.path('blobs', digest), headers, followRedirects: true, what };
    if (signal) o.signal = signal;
    const res = await this.send(o);
    if (res.status === 200) return { body: res.body, offset: 0, url: res.url };
    if (res.status === 206) {
      const m = /bytes (\d+)-/.exec(header(res.headers, 'content-range') ?? '');
      const start = m ? Number(m[1]) : -1;
      if (start !== offset) {
        await res.body.dump().catch(() => {});
        return this.openBlob(digest, 0, signal);
      }
      return { body: res.body, offset, url: res.url };
    }
    if (res.status === 416 && offset > 0) {
      await res.body.dump().catch(() => {});
      return this.openBlob(digest, 0, signal);
    }
    throw await this.fail(res, what);
  }

  /** Fetch a small blob (an image config) into memory and verify it. */
  async getSmallBlob(digest: string, size: number): Promise<Buffer> {
    const what = `blob ${digest} of ${this.registry}/${this.repository}`;
    if (size > MAX_MANIFEST_BYTES * 4) throw new ImageError('MALFORMED', `${what}: config of ${size} bytes is too large`);
    for (let attempt = 1; ; attempt++) {
      try {
        const { body, url } = await this.openBlob(digest, 0);
        const data = await this.withBodyErrors(() => readLimited(body, size, `${what} from ${url}`), url);
        const alg = digest.slice(0, digest.indexOf(':'));
        const got = `${alg}:${createHash(alg).update(data).digest('hex')}`;
        if (got !== digest || data.length !== size) throw new ImageError('DIGEST_MISMATCH', `${what} from ${url} does not match its digest (got ${got}, ${data.length} bytes)`);
        return data;
      } catch (e) {
        if (!isRetryable(e) || attempt >= this.policy.attempts) throw e;
        await sleep(retryDelay(this.policy, attempt), this.opts.signal);
      }
    }
  }

  async blobExists(digest: string): Promise<boolean> {
    const what = `blob ${digest} of ${this.registry}/${this.repository}`;
    const res = await this.send({ method: 'HEAD', url: this.path('blobs', digest), followRedirects: true, what });
    await res.body.dump().catch(() => {});
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.fail(res, what);
  }

  /** Monolithic upload: POST to start a session, PUT the whole blob with ?digest=. */
  async uploadBlob(digest: string, size: number, body: () => Dispatcher.DispatchOptions['body']): Promise<void> {
    const what = `upload of blob ${digest} to ${this.registry}/${this.repository}`;
    const start = await this.send({ method: 'POST', url: `/v2/${this.repository}/blobs/uploads/`, headers: { 'content-length': '0' }, what });
    if (start.status !== 202) throw await this.fail(start, what);
    await start.body.dump().catch(() => {});
    const loc = header(start.headers, 'location');
    if (!loc) throw new ImageError('HTTP', `${what}: registry sent no upload Location (${start.url})`);
    const u = new URL(loc, this.endpoint.base + '/');
    u.searchParams.set('digest', digest);
    const put = await this.send({
      method: 'PUT',
      url: u.toString(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body,
      what,
    });
    if (put.status !== 201 && put.status !== 204) throw await this.fail(put, what);
    await put.body.dump().catch(() => {});
  }

  async putManifest(ref: string, bytes: Buffer, mediaType: string, what: string): Promise<string | undefined> {
    const res = await this.send({
      method: 'PUT',
      url: this.path('manifests', ref),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      what: `manifest ${what}`,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, `manifest ${what}`);
    await res.body.dump().catch(() => {});
    return header(res.headers, 'docker-content-digest');
  }
}
