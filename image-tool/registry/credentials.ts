// Registry credentials in Docker's config.json format ({"auths": {"host": {"auth": base64(user:pass)}}}).
// Location: --authfile, $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json.
// Credentials are never put into messages or logs.
import { mkdir, readFile, rename, open, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImageError } from '../core/errors.js';
import { DOCKER_HUB } from '../core/reference.js';

export interface Credentials {
  username: string;
  password: string;
}

const HUB_KEY = 'https://index.docker.io/v1/';

export function authFilePath(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.REGISTRY_AUTH_FILE) return process.env.REGISTRY_AUTH_FILE;
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  return join(dir, 'config.json');
}

/** Parse `user:pass` (the password may contain ':'). */
export function parseCreds(s: string): Credentials {
  const i = s.indexOf(':');
  if (i <= 0) throw new ImageError('CONFIG', 'credentials must be given as user:password');
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

async function readAuthFile(path: string): Promise<any> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ImageError('CONFIG', `cannot read credentials file ${path}: ${(e as Error).message}`);
  }
  try {
    const doc = JSON.parse(text);
    return doc && typeof doc === 'object' ? doc : {};
  } catch {
    throw new ImageError('CONFIG', `credentials file ${path} is not valid JSON`);
  }
}

function keysFor(registry: string): string[] {
  if (registry === DOCKER_HUB) return [HUB_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io', 'https://registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

export async function getCredentials(registry: string, authFile?: string): Promise<Credentials | undefined> {
  const path = authFilePath(authFile);
  const doc = await readAuthFile(path);
  const auths = doc.auths ?? {};
  for (const k of keysFor(registry)) {
    const e = auths[k];
    if (!e) continue;
    if (typeof e.auth === 'string' && e.auth) {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i <= 0) throw new ImageError('CONFIG', `credentials file ${path}: the "auth" entry for ${k} is not base64 of user:password`);
      return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

async function writeAuthFile(path: string, doc: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(doc, null, '\t') + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new ImageError('CONFIG', `cannot write credentials file ${path}: ${(e as Error).message}`);
  }
}

export async function saveCredentials(registry: string, creds: Credentials, authFile?: string): Promise<string> {
  const path = authFilePath(authFile);
  const doc = await readAuthFile(path);
  doc.auths = doc.auths ?? {};
  for (const k of keysFor(registry)) delete doc.auths[k];
  doc.auths[registry === DOCKER_HUB ? HUB_KEY : registry] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  await writeAuthFile(path, doc);
  return path;
}

/** Returns false when there was nothing to remove. */
export async function removeCredentials(registry: string, authFile?: string): Promise<boolean> {
  const path = authFilePath(authFile);
  const doc = await readAuthFile(path);
  let removed = false;
  for (const k of keysFor(registry)) {
    if (doc.auths?.[k]) {
      delete doc.auths[k];
      removed = true;
    }
  }
  if (removed) await writeAuthFile(path, doc);
  return removed;
}
