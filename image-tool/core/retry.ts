// Retry with exponential backoff for transient registry failures: 429, 5xx, and
// connection errors (reset, refused, timeouts). Everything else fails at once.
import { ImageError } from './errors.js';

export interface RetryPolicy {
  /** Total tries, including the first one. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 15_000 };

export function retryPolicy(p?: Partial<RetryPolicy>): RetryPolicy {
  return { ...DEFAULT_RETRY, ...(p ?? {}) };
}

/** Delay before try number `attempt + 1` (attempt counts from 1), honouring Retry-After when given. */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + Math.random() * (exp / 2);
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs));
  return jittered;
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isRetryable(e: unknown): boolean {
  if (e instanceof ImageError) return e.retryable;
  let cur: any = e;
  for (let i = 0; cur && i < 4; i++, cur = cur.cause) {
    if (typeof cur.code === 'string' && RETRYABLE_CODES.has(cur.code)) return true;
  }
  return false;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Parse a Retry-After header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const n = Number(s);
  if (Number.isFinite(n)) return n * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
