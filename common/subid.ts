// The caller's subordinate id ranges (/etc/subuid, /etc/subgid), as newuidmap reads them:
// used by `lxr-runtime spec --rootless`, the runtime's mapping checks and lxr's rootless store.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

export type IdKind = 'uid' | 'gid';
export const SUBID_FILE: Record<IdKind, string> = { uid: '/etc/subuid', gid: '/etc/subgid' };

/** The caller's subordinate id ranges from /etc/subuid or /etc/subgid (entries by name or by number). */
export function subIdRanges(kind: IdKind, user: { name: string; id: number }, file = SUBID_FILE[kind]): { start: number; size: number }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: { start: number; size: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, size] = line.trim().split(':');
    if (!who || start === undefined || size === undefined) continue;
    if (who !== user.name && who !== String(user.id)) continue;
    const s = Number(start);
    const n = Number(size);
    if (Number.isInteger(s) && Number.isInteger(n) && n > 0) out.push({ start: s, size: n });
  }
  return out;
}

/** The name of the calling user (its uid as text where the passwd database has no entry). */
export function userName(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return String(uid);
  }
}
