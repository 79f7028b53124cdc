// `lxr-image unpack` as an ordinary user: the unpack runs as root of the user's namespace
// (lxr-image itself, started there by lxr-init), so the rootfs keeps the image's owners,
// shifted into the user's /etc/subuid range; config.json then gets the matching
// uidMappings/gidMappings and a user namespace, so a rootless runtime shows those owners.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LxrError } from '../../common/errors.js';
import type { Spec } from '../../oci-spec/types.js';
import { idMapHint, runInUserns, subIdAdvice, userIdMaps } from '../../native/userns.js';
import { exitCodeOf } from '../../common/proc.js';

export interface UserBundleOptions {
  store: string;
  image: string;
  bundle: string;
  platform?: string;
}

export async function unpackBundleInUserns(o: UserBundleOptions): Promise<void> {
  const maps = userIdMaps();
  if (maps.single) process.stderr.write(`lxr-image: warning: only your own uid is mapped into the user namespace: files of other owners cannot be unpacked. To fix it, ${subIdAdvice(maps.user)}\n`);
  const bundle = resolve(o.bundle);
  const tmp = mkdtempSync(join(tmpdir(), 'lxr-image-unpack-'));
  const errFd = openSync(join(tmp, 'stderr'), 'w', 0o600);
  const nullFd = openSync('/dev/null', 'r+');
  try {
    const env = Object.entries({ ...process.env, LXR_IDMAP_HINT: idMapHint(maps) })
      .filter(([k, v]) => v !== undefined && k !== 'NODE_OPTIONS')
      .map(([k, v]) => `${k}=${v}`);
    const argv = [process.execPath, ...process.execArgv, process.argv[1]!, 'unpack', '--store', resolve(o.store), ...(o.platform ? ['--platform', o.platform] : []), o.image, bundle];
    const status = await runInUserns({ argv, env, stdio: [nullFd, nullFd, errFd], maps });
    if (status !== 0) {
      const text = readFileSync(join(tmp, 'stderr'), 'utf8').trim();
      throw new LxrError(`unpacking in your user namespace: ${(text.split('\n').pop() ?? `exit status ${exitCodeOf(status)}`).replace(/^lxr-image: /, '')}`);
    }
  } finally {
    closeSync(errFd);
    closeSync(nullFd);
    rmSync(tmp, { recursive: true, force: true });
  }
  const file = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as Spec;
  const linux = (spec.linux ??= {});
  linux.namespaces = [...(linux.namespaces ?? []).filter((n) => n.type !== 'user' && n.type !== 'cgroup'), { type: 'user' }];
  linux.uidMappings = maps.uidMappings;
  linux.gidMappings = maps.gidMappings;
  // no cgroup for an ordinary user on most hosts (runc's spec --rootless)
  delete linux.resources;
  spec.mounts = (spec.mounts ?? []).filter((m) => m.type !== 'cgroup' && m.type !== 'cgroup2');
  if (maps.gidCount <= 5) for (const m of spec.mounts) if (m.type === 'devpts') m.options = (m.options ?? []).filter((x) => x !== 'gid=5');
  writeFileSync(file, `${JSON.stringify(spec, null, 2)}\n`);
}
