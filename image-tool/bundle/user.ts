// Config.User ("user", "uid", "user:group", "uid:gid", ...) to ids, through the rootfs's own
// /etc/passwd and /etc/group (image-spec conversion.md, "Config.User").
import { readFileSync } from 'node:fs';
import { lstatOrNullSync, resolveInRootSync } from '../unpack/root-path.js';
import { LxrError } from '../../common/errors.js';

export class UserError extends LxrError {
  override name = 'UserError';
}

/** Reads a file of the rootfs, resolving symlinks inside the rootfs (never out of it). Null if absent. */
export function readFileInRoot(root: string, path: string): string | null {
  let r;
  try {
    r = resolveInRootSync(root, path.split('/'), { followLast: true });
  } catch {
    return null; // a symlink loop, or a parent that is not a directory
  }
  if (!r || !lstatOrNullSync(r.host)?.isFile()) return null;
  return readFileSync(r.host, 'utf8');
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The entries of /etc/passwd or /etc/group: colon-separated, at least `fields` of them, no comments. */
function colonRecords(text: string | null, fields: number): string[][] {
  return (text ?? '').split('\n').filter((l) => !l.startsWith('#')).map((l) => l.split(':')).filter((f) => f.length >= fields);
}

function parsePasswd(text: string | null): PasswdEntry[] {
  return colonRecords(text, 7)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }))
    .filter((e) => Number.isInteger(e.uid) && Number.isInteger(e.gid));
}

function parseGroup(text: string | null): GroupEntry[] {
  return colonRecords(text, 4)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter((m) => m !== '') }))
    .filter((e) => Number.isInteger(e.gid));
}

const NUMERIC = /^[0-9]+$/;

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
  home?: string;
}

export function resolveUser(root: string, user: string | undefined): ResolvedUser {
  // No Config.User: root, as runtimes do (implementation-defined in conversion.md).
  if (!user) user = '0';
  const colon = user.indexOf(':');
  const u = colon < 0 ? user : user.slice(0, colon);
  const g = colon < 0 ? undefined : user.slice(colon + 1);
  const passwd = parsePasswd(readFileInRoot(root, '/etc/passwd'));
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  let home: string | undefined;
  if (NUMERIC.test(u)) {
    uid = Number(u);
    const p = passwd.find((e) => e.uid === uid);
    if (p) {
      gid = p.gid;
      home = p.home;
    }
  } else {
    const p = passwd.find((e) => e.name === u);
    if (!p) throw new UserError(`user "${u}" (Config.User "${user}") is not in the image's /etc/passwd`);
    uid = p.uid;
    gid = p.gid;
    name = p.name;
    home = p.home;
  }
  const res: ResolvedUser = { uid, gid };
  if (home) res.home = home;
  if (g !== undefined && g !== '') {
    if (NUMERIC.test(g)) res.gid = Number(g);
    else {
      const grp = parseGroup(readFileInRoot(root, '/etc/group')).find((e) => e.name === g);
      if (!grp) throw new UserError(`group "${g}" (Config.User "${user}") is not in the image's /etc/group`);
      res.gid = grp.gid;
    }
  } else if (name !== undefined) {
    // Supplementary groups only for a user given by name without a group (conversion.md).
    const gids = parseGroup(readFileInRoot(root, '/etc/group'))
      .filter((e) => e.members.includes(name!) && e.gid !== gid)
      .map((e) => e.gid);
    if (gids.length > 0) res.additionalGids = [...new Set(gids)];
  }
  return res;
}
