import type { ContainerRecord } from '../core/types.js';
// What the Dev Containers CLI records on a dev container, read back by lxr: the
// devcontainer.metadata label is a JSON array of config fragments (image metadata first, the
// devcontainer.json last); a later remoteUser wins, as in the CLI's own merge.

/** The dev container's remoteUser (or containerUser), if the CLI labelled one. */
export function devcontainerRemoteUser(rec: Pick<ContainerRecord, 'settings'>): string | undefined {
  const raw = rec.settings.labels?.['devcontainer.metadata'];
  if (!raw) return undefined;
  let parts: unknown;
  try {
    parts = JSON.parse(raw);
  } catch {
    return undefined;
  }
  let user: string | undefined;
  for (const p of Array.isArray(parts) ? parts : [parts]) {
    const o = p as { remoteUser?: unknown; containerUser?: unknown } | null;
    if (typeof o?.containerUser === 'string' && !user) user = o.containerUser;
    if (typeof o?.remoteUser === 'string') user = o.remoteUser;
  }
  return user;
}
