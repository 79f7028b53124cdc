// Benchmark: cold pull + unpack of a multi-layer image of a few hundred MB from a
// registry on 127.0.0.1, `skopeo copy` + `umoci unpack` versus `lxr-image pull` +
// `lxr-image unpack`, wall time and peak RSS (GNU time -v) side by side.
//
//   npx tsx bench/pull/run.ts [--runs 5] [--keep] [--dir /dev/shm/lxr-bench-pull]
//                             [--only lxr|skopeo] [--lxr path/to/lxr-image.js]
//
// The image is built once from local files into bench/work/pull-image-5 and reused: five
// gzip layers, Debian's Go toolchain (golang-1.19-go: /usr/lib/go-1.19, /usr/share/go-1.19),
// C headers (/usr/include) and Python's library (/usr/lib/python3.11), the last layer also
// replacing a file of the first. Stores and bundles go to --dir, tmpfs by default, so the
// numbers measure the tools rather than the disk. Every run is cold: empty store, no bundle.
// Not part of `npm test`. Needs: docker-registry, skopeo, umoci, time, golang-1.19-go,
// libc6-dev, libpython3.11-stdlib (Debian packages), and root for unpack.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../../image-tool/test/helpers/registry.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', 'work');
const imageDir = join(work, 'pull-image-5');
const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(opt('--runs') ?? 0) || 5;
const keep = args.includes('--keep');
const runDir = opt('--dir') ?? '/dev/shm/lxr-bench-pull';
const only = opt('--only');

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
need('/usr/include/stdio.h', 'libc6-dev');
need('/usr/lib/python3.11', 'libpython3.11-stdlib');

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

/** Build the OCI layout once: five gzip layers and a config, named "bench". */
async function buildImage(): Promise<void> {
  if (existsSync(join(imageDir, 'index.json'))) return;
  console.error('bench/pull: building the test image from /usr/lib/go-1.19, /usr/include, /usr/lib/python3.11 (once)...');
  const tmp = `${imageDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'blobs', 'sha256'), { recursive: true });
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  const diffIds: string[] = [];
  const specs: Array<{ cwd: string; paths: string[] }> = [
    { cwd: '/', paths: ['usr/lib/go-1.19/pkg'] },
    { cwd: '/', paths: ['usr/share/go-1.19/src'] },
    { cwd: '/', paths: ['usr/lib/go-1.19/bin', 'usr/lib/go-1.19/VERSION', 'usr/share/go-1.19/test', 'usr/share/go-1.19/api', 'usr/share/go-1.19/misc'] },
    { cwd: '/', paths: ['usr/include'] },
    { cwd: '/', paths: ['usr/lib/python3.11', 'usr/lib/go-1.19/VERSION'] },
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
  /** User + system CPU seconds: steadier than wall time on a loaded machine. */
  cpu: number;
  rssKb: number;
}

// Node reads NODE_EXTRA_CA_CERTS at start-up (a CA bundle parsed for nothing on loopback):
// the tools run without it, as on a machine that does not set it.
const benchEnv = { ...process.env };
delete benchEnv.NODE_EXTRA_CA_CERTS;

function timed(cmd: string, argv: string[]): Measure {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 26, env: benchEnv });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr.slice(-2000)}`);
  const wallS = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr);
  if (!wallS || !rss || !user || !sys) throw new Error(`cannot parse /usr/bin/time output:\n${r.stderr.slice(-1000)}`);
  const wall = Number(wallS[1] ?? 0) * 3600 + Number(wallS[2]) * 60 + Number(wallS[3]);
  return { wall, cpu: Number(user[1]) + Number(sys[1]), rssKb: Number(rss[1]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await buildImage();
  const lxrImage = opt('--lxr') ?? join(root, 'dist', 'lxr-image.js');
  if (!existsSync(lxrImage)) sh(process.execPath, [join(root, 'scripts', 'build.mjs'), 'bundle']);
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/bench/go:1`;
    sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${imageDir}:bench`, `docker://${ref}`]);
    const size = Number(sh('du', ['-sb', join(imageDir, 'blobs')]).split('\t')[0]);
    const index = JSON.parse(readFileSync(join(imageDir, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(imageDir, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    console.log(`image ${ref}: ${manifest.layers.length} gzip layers, ${(size / 2 ** 20).toFixed(0)} MiB compressed; ${runs} cold run(s) each into ${runDir}, medians shown`);
    console.log(`load before: ${sh('uptime', []).trim()}\n`);
    const results: Record<string, { pull: Measure[]; unpack: Measure[]; total: number[] }> = {};
    if (only !== 'lxr') results['skopeo + umoci'] = { pull: [], unpack: [], total: [] };
    if (only !== 'skopeo') results['lxr-image'] = { pull: [], unpack: [], total: [] };
    let paths = '';
    for (let i = 0; i < runs; i++) {
      for (const tool of Object.keys(results)) {
        const dir = join(runDir, `run-${tool.replace(/\W+/g, '-')}`);
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
        const r = results[tool]!;
        r.total.push(r.pull[r.pull.length - 1]!.wall + r.unpack[r.unpack.length - 1]!.wall);
        if (i === 0) paths += `${tool}: ${sh('sh', ['-c', `find ${bundle}/rootfs | wc -l`]).trim()} paths, ${sh('du', ['-sm', `${bundle}/rootfs`]).split('\t')[0]} MiB; `;
        if (!keep) rmSync(dir, { recursive: true, force: true });
      }
    }
    const row = (cols: string[]) => console.log(cols.map((c, i) => (i === 0 ? c.padEnd(16) : c.padStart(14))).join(''));
    console.log(`rootfs: ${paths}\n`);
    row(['tool', 'pull s', 'pull CPU s', 'pull RSS MB', 'unpack s', 'unpack CPU s', 'unpack RSS MB', 'total s']);
    const totals: Record<string, number> = {};
    for (const [tool, r] of Object.entries(results)) {
      const p = median(r.pull.map((m) => m.wall));
      const u = median(r.unpack.map((m) => m.wall));
      totals[tool] = median(r.total);
      const cpu = (ms: Measure[]) => median(ms.map((m) => m.cpu)).toFixed(2);
      const rss = (ms: Measure[]) => (Math.max(...ms.map((m) => m.rssKb)) / 1024).toFixed(0);
      row([tool, p.toFixed(2), cpu(r.pull), rss(r.pull), u.toFixed(2), cpu(r.unpack), rss(r.unpack), totals[tool]!.toFixed(2)]);
    }
    for (const [tool, r] of Object.entries(results)) {
      console.log(`\n${tool} runs (pull+unpack s): ${r.pull.map((p, i) => `${p.wall.toFixed(2)}+${r.unpack[i]!.wall.toFixed(2)}`).join('  ')}`);
    }
    if (totals['skopeo + umoci'] && totals['lxr-image']) console.log(`\nlxr-image is ${(totals['skopeo + umoci'] / totals['lxr-image']).toFixed(2)}x as fast as skopeo + umoci (median totals); RSS shown is the peak over all runs`);
    console.log(`load after: ${sh('uptime', []).trim()}`);
  } finally {
    await reg.stop();
  }
}

await main();
