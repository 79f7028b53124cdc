// Real Debian-based test images, built the way the user built theirs: a debootstrap
// of bookworm (minbase) from Debian's mirror, imported into a private podman, and a
// `podman build` on top of it with a user (gopher, uid 1000, /home/gopher), a layer that
// deletes files and re-creates a directory (whiteouts and an opaque directory), and a layer
// of chown/chmod copy-ups. The result is kept as a `podman save` docker-archive in a cache
// outside the repository ($LXR_TEST_CACHE, default /var/tmp/lxr-test-cache), so that only
// the first run pays for it (a few minutes); later runs take the archive as it is.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withExclusiveLock } from '../../native/lock.js';
import { startPodman, which } from '../engines/helpers/engines.js';

export const DEBIAN_IMAGE = 'localhost/lxr-debian-test:1';

export const CONTAINERFILE = `FROM localhost/lxr-bookworm:base
RUN useradd -m -u 1000 -s /bin/bash gopher && mkdir -p /home/gopher/src && echo 'package main' > /home/gopher/src/main.go && chown -R gopher:gopher /home/gopher/src
RUN rm -rf /usr/share/doc/* /var/cache/debconf && mkdir -p /var/cache/debconf && echo recreated > /var/cache/debconf/marker
RUN chown -R gopher:gopher /usr/share/man && chmod 0750 /home/gopher && chmod 4755 /usr/bin/passwd
STOPSIGNAL SIGQUIT
CMD ["sleep", "600"]
`;

export function cacheDir(): string {
  return process.env.LXR_TEST_CACHE || '/var/tmp/lxr-test-cache';
}

/** The Debian mirror: $LXR_DEBIAN_MIRROR, else the first URIs of the host's apt sources. */
function mirror(): string {
  if (process.env.LXR_DEBIAN_MIRROR) return process.env.LXR_DEBIAN_MIRROR;
  const dir = '/etc/apt/sources.list.d';
  try {
    for (const f of readdirSync(dir)) {
      const m = /^URIs:\s*(\S+)/m.exec(readFileSync(join(dir, f), 'utf8'));
      if (m) return m[1]!;
    }
  } catch {
    /* no deb822 sources */
  }
  return 'http://deb.debian.org/debian';
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 900_000, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 4).join(' ')}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
}

/**
 * The path of the docker-archive of DEBIAN_IMAGE, building it (and the bookworm rootfs
 * tarball under it) if the cache does not have it. Throws with the reason when it cannot
 * (no debootstrap, no podman, no network to the mirror): callers skip then.
 */
export async function debianArchive(): Promise<string> {
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const archive = join(cache, 'lxr-debian-test-1.docker.tar');
  return withExclusiveLock(join(cache, '.debian.lock'), async () => {
    if (existsSync(archive)) return archive;
    for (const c of ['debootstrap', 'podman', 'runc']) if (!which(c)) throw new Error(`${c} is not installed`);
    const rootfsTar = join(cache, 'bookworm-minbase.tar');
    if (!existsSync(rootfsTar)) {
      const tmp = mkdtempSync(join(cache, 'debootstrap-'));
      try {
        run('debootstrap', ['--variant=minbase', 'bookworm', join(tmp, 'root'), mirror()]);
        run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', join(tmp, 'root'), '-cf', join(tmp, 'rootfs.tar'), '.']);
        renameSync(join(tmp, 'rootfs.tar'), rootfsTar);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
    const pod = await startPodman();
    const ctx = mkdtempSync(join(cache, 'build-'));
    try {
      const p = (args: string[]) => {
        const r = pod.podman('runc', args, { timeout: 900_000 });
        if (r.status !== 0) throw new Error(`podman ${args[0]}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        return r;
      };
      p(['import', rootfsTar, 'localhost/lxr-bookworm:base']);
      writeFileSync(join(ctx, 'Containerfile'), CONTAINERFILE);
      p(['build', '--network', 'host', '-t', DEBIAN_IMAGE, '-f', join(ctx, 'Containerfile'), ctx]);
      const tmpArchive = `${archive}.tmp-${process.pid}`;
      p(['save', '--format', 'docker-archive', '-o', tmpArchive, DEBIAN_IMAGE]);
      renameSync(tmpArchive, archive);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
      await pod.stop();
    }
    return archive;
  });
}
