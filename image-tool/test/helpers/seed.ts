// Seed a test registry: build an image (or index) in a temp layout and push it with
// lxr-image's own push (or with skopeo, as an independent tool).
// Stable API: seedImage(host, repoTag, spec), seedIndex(host, repoTag, spec), skopeoCopyToRegistry(layout, refName, dest), tempDir(t, prefix).
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushImage } from '../../registry/push.js';
import { buildImage, buildIndex, type BuiltImage, type ImageSpec, type IndexSpec } from './images.js';

/** A temp dir removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'lxr-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Build an image and push it to `host` as `repoTag` (e.g. "test/app:1"). Returns the image and its full name. */
export async function seedImage(host: string, repoTag: string, spec: Omit<ImageSpec, 'name'>): Promise<BuiltImage & { name: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-seed-'));
  try {
    const name = `${host}/${repoTag}`;
    const img = buildImage(dir, { ...spec, name });
    await pushImage({ store: dir, reference: name, retry: { attempts: 1 } });
    return { ...img, name };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function seedIndex(host: string, repoTag: string, spec: Omit<IndexSpec, 'name'>): Promise<ReturnType<typeof buildIndex> & { name: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-seed-'));
  try {
    const name = `${host}/${repoTag}`;
    const built = buildIndex(dir, { ...spec, name });
    await pushImage({ store: dir, reference: name, allPlatforms: true, retry: { attempts: 1 } });
    return { ...built, name };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** skopeo copy oci:<layout>:<refName> docker://<dest> over plain HTTP. */
export function skopeoCopyToRegistry(layout: string, refName: string, dest: string): void {
  const r = spawnSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${refName}`, `docker://${dest}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skopeo copy failed (apt-get install -y skopeo): ${r.stderr}`);
}
