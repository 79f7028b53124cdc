// Shared set-up for pull, push and login: registry config, credentials, and a client
// per endpoint for a repository.
import { RegistryClient } from './client.js';
import { endpointsFor, resolveRegistryConfig, type RegistryOptions } from './config.js';
import { getCredentials, parseCreds, type Credentials } from './credentials.js';
import type { RetryPolicy } from '../core/retry.js';
import type { Dispatcher } from 'undici';

export interface RemoteOptions extends RegistryOptions {
  /** `user:pass` or an object; wins over the credentials file. */
  credentials?: string | Credentials;
  /** Docker config.json to read credentials from. */
  authFile?: string;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
}

export async function clientsFor(registry: string, repository: string, opts: RemoteOptions, actions: 'pull' | 'pull,push'): Promise<RegistryClient[]> {
  const config = await resolveRegistryConfig(opts);
  const explicit = typeof opts.credentials === 'string' ? parseCreds(opts.credentials) : opts.credentials;
  const out: RegistryClient[] = [];
  for (const endpoint of endpointsFor(registry, config, actions === 'pull')) {
    const credentials = explicit ?? (await getCredentials(endpoint.mirror ? endpoint.host : registry, opts.authFile));
    const o: ConstructorParameters<typeof RegistryClient>[0] = { endpoint, registry, repository, actions, config };
    if (credentials) o.credentials = credentials;
    if (opts.retry) o.retry = opts.retry;
    if (opts.signal) o.signal = opts.signal;
    if (opts.dispatcher) o.dispatcher = opts.dispatcher;
    out.push(new RegistryClient(o));
  }
  return out;
}
