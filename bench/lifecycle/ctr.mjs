// `ctr run --rm` timings (issue 6): the whole containerd stack (ctr -> containerd ->
// io.containerd.runc.v2 shim -> runtime) with lxr-runtime as the runc binary, against
// runc. A private containerd (own root, state, socket and config under WORK/ctd, the
// overlayfs snapshotter) runs only for the benchmark and is stopped afterwards.
//
// The image is the benchmark's busybox rootfs, packed as a docker-archive (`docker
// save` format) and loaded with `ctr images import`: no registry is involved.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const IMAGE = 'localhost/lxr-bench:1';

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

function run(argv, what, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, ...opts });
  if (r.error || r.status !== 0) {
    throw new Error(`${what}: \`${argv.join(' ')}\` ${r.error ? r.error.message : `exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`}`);
  }
  return r.stdout;
}

/** A docker-archive of rootfsDir in dir/image.tar. */
function imageArchive(rootfsDir, dir) {
  const out = join(dir, 'image.tar');
  if (existsSync(out)) return out;
  const stage = join(dir, 'image');
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const layerTar = join(stage, 'layer.tar');
  run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfsDir, '-cf', layerTar, '.'], 'packing the rootfs');
  const diff = sha256(readFileSync(layerTar));
  mkdirSync(join(stage, diff));
  run(['mv', layerTar, join(stage, diff, 'layer.tar')], 'staging the layer');
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] },
  });
  const cfg = sha256(Buffer.from(config));
  writeFileSync(join(stage, `${cfg}.json`), config);
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify([{ Config: `${cfg}.json`, RepoTags: [IMAGE], Layers: [`${diff}/layer.tar`] }]));
  run(['tar', '-C', stage, '-cf', out, 'manifest.json', `${cfg}.json`, diff], 'packing the image');
  rmSync(stage, { recursive: true, force: true });
  return out;
}

function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && (p === dir || p.startsWith(dir + '/')));
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
}

function removeCgroups(rel) {
  for (const h of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const d = join('/sys/fs/cgroup', h, rel);
    if (existsSync(d)) spawnSync('rmdir', [d]);
  }
}

/**
 * Time `ctr run --rm IMAGE ID /bin/true` for each tool ({ name, path }). Returns
 * { name: samples[] } and a list of [name, reason] for tools that failed.
 * timeCommand(argv) is the caller's timer (wall time, throws on failure).
 */
export async function benchCtrRun({ tools, rootfs, work, runs, warmup, timeCommand }) {
  const ctd = join(work, 'ctd');
  rmSync(ctd, { recursive: true, force: true });
  mkdirSync(ctd, { recursive: true });
  const socket = join(ctd, 'c.sock');
  const ns = `lxrbench${process.pid}`;
  writeFileSync(join(ctd, 'config.toml'), [
    'version = 2', `root = "${ctd}/root"`, `state = "${ctd}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `  address = "${socket}"`, '[ttrpc]', `  address = "${socket}.ttrpc"`, '',
  ].join('\n'));
  const log = openSync(join(ctd, 'containerd.log'), 'w');
  const daemon = spawn('containerd', ['--config', join(ctd, 'config.toml')], { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise((r) => daemon.once('exit', r));
  const ctr = (...args) => ['ctr', '-a', socket, '-n', ns, ...args];
  const samples = {};
  const failed = [];
  try {
    const end = Date.now() + 20_000;
    while (spawnSync('ctr', ['-a', socket, 'version'], { stdio: 'ignore' }).status !== 0) {
      if (daemon.exitCode !== null || Date.now() > end) throw new Error(`containerd did not start (log: ${ctd}/containerd.log)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    run(ctr('images', 'import', imageArchive(rootfs, work)), 'ctr images import');
    let seq = 0;
    for (const tool of tools) {
      const flags = ['--fifo-dir', join(ctd, 'fifo'), '--runc-root', join(ctd, `runc-root-${tool.name}`), ...(tool.name === 'runc' ? [] : ['--runc-binary', tool.path])];
      samples[tool.name] = [];
      try {
        for (let i = 0; i < warmup + runs; i++) {
          const ms = timeCommand(ctr('run', ...flags, '--rm', IMAGE, `bench-${seq++}`, '/bin/true'));
          if (i >= warmup) samples[tool.name].push(ms);
        }
      } catch (e) {
        delete samples[tool.name];
        failed.push([tool.name, e.message]);
      }
    }
  } finally {
    for (const id of spawnSync('ctr', ['-a', socket, '-n', ns, 'containers', 'list', '-q'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? []) {
      spawnSync('ctr', ['-a', socket, '-n', ns, 'task', 'delete', '-f', id], { stdio: 'ignore' });
      spawnSync('ctr', ['-a', socket, '-n', ns, 'containers', 'delete', id], { stdio: 'ignore' });
    }
    if (daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await exited;
    }
    unmountUnder(ctd);
    removeCgroups(ns);
    rmSync(ctd, { recursive: true, force: true });
  }
  return { samples, failed };
}
