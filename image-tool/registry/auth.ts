// Registry authentication (distribution-spec, Docker's token auth): parse the
// WWW-Authenticate challenge, get a Bearer token from the realm (anonymously or with
// Basic credentials), or answer a Basic challenge directly. Tokens are cached per
// realm+service+scope until they expire.
import { request, type Dispatcher } from 'undici';
import { ImageError } from '../core/errors.js';
import type { Credentials } from './credentials.js';
import { isLoopback } from './config.js';

export interface Challenge {
  scheme: string; // lower-case: bearer, basic
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header (RFC 9110 §11.6.1): `Bearer realm="...",service="...",scope="..."`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const text = Array.isArray(header) ? header.join(', ') : header ?? '';
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)(?:\s+|$)/y;
  const param = /\s*([\w!#$%&'*+.^`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) break;
    const ch: Challenge = { scheme: m[1]!.toLowerCase(), params: {} };
    i = re.lastIndex;
    for (;;) {
      param.lastIndex = i;
      const p = param.exec(text);
      if (!p) break;
      // A bare token followed by a space is the next challenge's scheme, not a param.
      ch.params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
      i = param.lastIndex;
    }
    out.push(ch);
    while (i < text.length && /[\s,]/.test(text[i]!)) i++;
  }
  return out;
}

interface CachedToken {
  value: string;
  expires: number;
}
const tokenCache = new Map<string, CachedToken>();

export function clearTokenCache(): void {
  tokenCache.clear();
}

export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: string[];
  credentials?: Credentials;
  dispatcher: Dispatcher;
  insecureHosts: (host: string) => boolean;
  /** Forget a cached token (it was just refused). */
  refresh?: boolean;
}

function redact(u: URL): string {
  return `${u.origin}${u.pathname}`;
}

export async function fetchToken(req: TokenRequest): Promise<string> {
  let url: URL;
  try {
    url = new URL(req.realm);
  } catch {
    throw new ImageError('UNAUTHORIZED', `registry sent an invalid token realm "${req.realm}"`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (isLoopback(url.host) || req.insecureHosts(url.host)))) {
    throw new ImageError('UNAUTHORIZED', `refusing token realm ${redact(url)}: plain HTTP to a host not marked insecure`);
  }
  const key = `${req.realm}|${req.service ?? ''}|${req.scopes.join(' ')}|${req.credentials?.username ?? ''}`;
  const cached = tokenCache.get(key);
  if (cached && !req.refresh && cached.expires > Date.now()) return cached.value;
  if (req.service) url.searchParams.set('service', req.service);
  for (const s of req.scopes) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { 'user-agent': USER_AGENT };
  if (req.credentials) {
    url.searchParams.set('account', req.credentials.username);
    headers.authorization = `Basic ${Buffer.from(`${req.credentials.username}:${req.credentials.password}`).toString('base64')}`;
  }
  let res;
  try {
    res = await request(url, { method: 'GET', headers, dispatcher: req.dispatcher });
  } catch (e) {
    throw new ImageError('UNREACHABLE', `cannot reach token service ${redact(url)}: ${(e as Error).message}`, { retryable: true, cause: e });
  }
  const text = await res.body.text().catch(() => '');
  if (res.statusCode === 401 || res.statusCode === 403) {
    throw new ImageError('UNAUTHORIZED', `token service ${redact(url)} refused ${req.credentials ? `the credentials for user ${req.credentials.username}` : 'anonymous access'} (HTTP ${res.statusCode})`);
  }
  if (res.statusCode === 429 || res.statusCode >= 500) {
    throw new ImageError('HTTP', `token service ${redact(url)} answered HTTP ${res.statusCode}`, { retryable: true });
  }
  if (res.statusCode !== 200) throw new ImageError('UNAUTHORIZED', `token service ${redact(url)} answered HTTP ${res.statusCode}`);
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ImageError('UNAUTHORIZED', `token service ${redact(url)} sent malformed JSON`);
  }
  const token = doc.token ?? doc.access_token;
  if (typeof token !== 'string' || !token) throw new ImageError('UNAUTHORIZED', `token service ${redact(url)} sent no token`);
  const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
  tokenCache.set(key, { value: token, expires: Date.now() + Math.max(1, ttl - 10) * 1000 });
  return token;
}

export const USER_AGENT = 'lxr-image/0.1';
