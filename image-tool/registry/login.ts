// login/logout: check credentials against a registry (GET /v2/ through the auth flow),
// then store them in Docker's config.json; logout removes them.
import { ImageError } from '../core/errors.js';
import { DOCKER_HUB } from '../core/reference.js';
import { clearTokenCache } from './auth.js';
import { clientsFor, type RemoteOptions } from './session.js';
import { parseCreds, removeCredentials, saveCredentials, type Credentials } from './credentials.js';

/** `docker.io`, `index.docker.io`, `https://host:5000/` -> registry name as references use it. */
export function normalizeRegistry(s: string | undefined): string {
  if (!s) return DOCKER_HUB;
  const h = s.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  if (!h) throw new ImageError('BAD_REFERENCE', `invalid registry "${s}"`);
  if (h === 'index.docker.io' || h === 'registry-1.docker.io') return DOCKER_HUB;
  return h;
}

export async function login(opts: RemoteOptions & { registry?: string; credentials: string | Credentials }): Promise<{ registry: string; authFile: string }> {
  const registry = normalizeRegistry(opts.registry);
  const creds = typeof opts.credentials === 'string' ? parseCreds(opts.credentials) : opts.credentials;
  clearTokenCache();
  // No repository: GET /v2/ only needs a token for the user, as `docker login` asks for.
  const clients = await clientsFor(registry, '', { ...opts, credentials: creds }, 'pull,push');
  const client = clients[clients.length - 1]!;
  try {
    await client.ping();
  } catch (e) {
    if (e instanceof ImageError && e.code === 'UNAUTHORIZED') throw new ImageError('UNAUTHORIZED', `login to ${registry} as ${creds.username} failed: ${e.message}`);
    throw e;
  }
  const authFile = await saveCredentials(registry, creds, opts.authFile);
  return { registry, authFile };
}

export async function logout(opts: { registry?: string; authFile?: string }): Promise<{ registry: string; removed: boolean }> {
  const registry = normalizeRegistry(opts.registry);
  return { registry, removed: await removeCredentials(registry, opts.authFile) };
}
