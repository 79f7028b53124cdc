// Benchmark: cold pull + unpack of a multi-layer image of a few hundred MB from a
// registry on 127.0.0.1, `skopeo copy` + `umoci unpack` versus `lxr-image pull` +
// `lxr-image unpack`, wall time and peak RSS (GNU time -v) side by side.
//
//   npx tsx bench/pull/run.ts [--runs 3] [--keep]
//
// The image is built once from local files (Debian's golang-go: /usr/lib/go-1.19 and
// /usr/share/go-1.19) into bench/work/pull-image and reused. Not part of `npm test`.
// Needs: docker-registry, skopeo, umoci, time (Debian packages), and root for unpack.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../../image-tool/test/helpers/registry.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', 'work');
const imageDir = join(work, 'pull-image');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] ?? 0) || 3;
const keep = args.includes('--keep');

function need(bin: string, pkg: string): void {
  if (!existsSync(bin)) {
    console.error(`bench/pull: ${bin} is missing: apt-get install -y ${pkg}`);
    process.exit(1);
  }
}
need('/usr/bin/docker-registry', 'docker-registry');
need('/usr/bin/skopeo', 'skopeo');
need('/usr/bin/umoci', 'umoci');
need('/usr/bin/time', 'time');
need('/usr/lib/go-1.19', 'golang-1.19-go');

function sh(cmd: string, argv: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Build the OCI layout once: three gzip layers and a config, named "bench". */
async function buildImage(): Promise<void> {
  if (existsSync(join(imageDir, 'index.json'))) return;
  console.error('bench/pull: building the test image from /usr/lib/go-1.19 (once)...');
  const tmp = `${imageDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'blobs', 'sha256'), { recursive: true });
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  const diffIds: string[] = [];
  const specs: Array<{ cwd: string; paths: string[] }> = [
    { cwd: '/', paths: ['usr/lib/go-1.19/pkg'] },
    { cwd: '/', paths: ['usr/share/go-1.19/src'] },
    { cwd: '/', paths: ['usr/lib/go-1.19/bin', 'usr/lib/go-1.19/VERSION', 'usr/share/go-1.19/test', 'usr/share/go-1.19/api', 'usr/share/go-1.19/misc'] },
  ];
  for (const [i, s] of specs.entries()) {
    const tar = join(tmp, `layer${i}.tar`);
    sh('tar', ['--numeric-owner', '--sort=name', '-C', s.cwd, '-cf', tar, ...s.paths]);
    diffIds.push(await sha256File(tar));
    sh('gzip', ['-6', '-n', tar]);
    const gz = `${tar}.gz`;
    const digest = await sha256File(gz);
    const size = statSync(gz).size;
    renameSync(gz, join(tmp, 'blobs', 'sha256', digest.slice(7)));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size });
  }
  const put = (obj: unknown) => {
    const b = Buffer.from(JSON.stringify(obj));
    const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    writeFileSync(join(tmp, 'blobs', 'sha256', d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const config = put({
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/lib/go-1.19/bin:/usr/bin:/bin'], Cmd: ['/usr/lib/go-1.19/bin/go', 'version'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const manifest = put({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers });
  writeFileSync(join(tmp, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(tmp, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }),
  );
  renameSync(tmp, imageDir);
}

interface Measure {
  wall: number;
  rssKb: number;
}

function timed(cmd: string, argv: string[]): Measure {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr.slice(-2000)}`);
  const wallS = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!wallS || !rss) throw new Error(`cannot parse /usr/bin/time output:\n${r.stderr.slice(-1000)}`);
  const wall = Number(wallS[1] ?? 0) * 3600 + Number(wallS[2]) * 60 + Number(wallS[3]);
  return { wall, rssKb: Number(rss[1]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await buildImage();
  const lxrImage = join(root, 'dist', 'lxr-image.js');
  if (!existsSync(lxrImage)) sh(process.execPath, [join(root, 'scripts', 'build.mjs'), 'bundle']);
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/bench/go:1`;
    sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${imageDir}:bench`, `docker://${ref}`]);
    const size = Number(sh('du', ['-sb', join(imageDir, 'blobs')]).split('\t')[0]);
    console.log(`image ${ref}: 3 gzip layers, ${(size / 1e6).toFixed(0)} MB compressed; ${runs} cold run(s) each, medians shown\n`);
    const results: Record<string, { pull: Measure[]; unpack: Measure[] }> = { 'skopeo + umoci': { pull: [], unpack: [] }, 'lxr-image': { pull: [], unpack: [] } };
    for (let i = 0; i < runs; i++) {
      for (const tool of Object.keys(results)) {
        const dir = join(work, `pull-run-${tool.replace(/\W+/g, '-')}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const store = join(dir, 'store');
        const bundle = join(dir, 'bundle');
        if (tool === 'lxr-image') {
          results[tool]!.pull.push(timed(process.execPath, [lxrImage, 'pull', '--quiet', '--store', store, ref]));
          results[tool]!.unpack.push(timed(process.execPath, [lxrImage, 'unpack', '--store', store, ref, bundle]));
        } else {
          results[tool]!.pull.push(timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${store}:bench`]));
          results[tool]!.unpack.push(timed('umoci', ['unpack', '--image', `${store}:bench`, bundle]));
        }
        if (!keep) rmSync(dir, { recursive: true, force: true });
      }
    }
    const row = (cols: string[]) => console.log(cols.map((c, i) => (i === 0 ? c.padEnd(16) : c.padStart(12))).join(''));
    row(['tool', 'pull s', 'pull RSS MB', 'unpack s', 'unpack RSS', 'total s']);
    for (const [tool, r] of Object.entries(results)) {
      const p = median(r.pull.map((m) => m.wall));
      const u = median(r.unpack.map((m) => m.wall));
      row([tool, p.toFixed(2), (median(r.pull.map((m) => m.rssKb)) / 1024).toFixed(0), u.toFixed(2), `${(median(r.unpack.map((m) => m.rssKb)) / 1024).toFixed(0)} MB`, (p + u).toFixed(2)]);
    }
  } finally {
    await reg.stop();
  }
}

await main();
