// The habits on a real Debian image (debootstrap bookworm + podman build, cached
// outside the repository: test/helpers/debian.ts), compared with podman and umoci in the same
// run: HOME follows -u, exit codes of a command that cannot start, dpkg works, and the rootfs
// (whiteouts, opaque directory, copy-ups, nanosecond mtimes) equals umoci's.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lxr, lxrEnv, type LxrEnv } from './helpers/env.js';
import { DEBIAN_IMAGE, debianArchive } from '../../test/helpers/debian.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';
import { describeTree } from '../../image-tool/test/fixtures-image.js';
import { runCli } from '../../image-tool/test/helpers/cli.js';
import { startRegistry } from '../../image-tool/test/helpers/registry.js';

let archive: string | undefined;
let why = '';
try {
  archive = process.env.LXR_TEST_NO_DEBIAN ? undefined : await debianArchive();
  if (!archive) why = 'LXR_TEST_NO_DEBIAN is set';
} catch (e) {
  why = (e as Error).message;
}

if (!archive) {
  t.plan(0, `no Debian test image (${why}): it needs debootstrap, podman, runc and Debian's mirror`);
} else {
  const env: LxrEnv = lxrEnv(t);
  const dir = mkdtempSync(join(tmpdir(), 'lxr-debian-'));
  let pod: Podman | undefined;
  t.teardown(async () => {
    await pod?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  t.before(async () => {
    const l = lxr(env, ['load', '-i', archive!]);
    if (l.status !== 0) throw new Error(`lxr load: ${l.stderr}`);
    if (which('podman') && !process.env.LXR_TEST_NO_PODMAN) {
      pod = await startPodman();
      const p = pod.podman('runc', ['load', '-i', archive!], { timeout: 300_000 });
      if (p.status !== 0) throw new Error(`podman load: ${p.stderr}`);
    }
  });
  const podman = (args: string[]) => pod!.podman('runc', args, { timeout: 120_000 });

  t.test('HOME follows -u on run and exec, as podman', async (t) => {
    for (const [u, home] of [['1000', '/home/gopher'], ['gopher', '/home/gopher'], ['nobody', '/nonexistent'], ['4242', '/'], ['0', '/root']]) {
      const r = lxr(env, ['run', '--rm', '-u', u!, DEBIAN_IMAGE, 'sh', '-c', 'echo $HOME']);
      t.equal(r.stdout, `${home}\n`, `-u ${u}: ${r.stderr}`);
      if (pod) t.equal(podman(['run', '--rm', '--network', 'none', '-u', u!, DEBIAN_IMAGE, 'sh', '-c', 'echo $HOME']).stdout, r.stdout, `podman -u ${u}`);
    }
    t.equal(lxr(env, ['create', '--name', 'goCon', DEBIAN_IMAGE]).status, 0);
    const e = lxr(env, ['exec', '-u', '1000', 'goCon', 'sh', '-c', 'echo $HOME; touch $HOME/.cache-ok && echo writable']);
    t.equal(e.stdout, '/home/gopher\nwritable\n', `exec -u 1000: the user's own home, writable: ${e.stderr}`);
  });

  t.test('exit codes 127 and 126, as podman', async (t) => {
    for (const [cmd, code] of [['/nonexistent', 127], ['no-such-command', 127], ['/etc/passwd', 126]] as const) {
      t.equal(lxr(env, ['run', '--rm', DEBIAN_IMAGE, cmd]).status, code, `run ${cmd}`);
      t.equal(lxr(env, ['exec', 'goCon', cmd]).status, code, `exec ${cmd}`);
      if (pod) t.equal(podman(['run', '--rm', '--network', 'none', DEBIAN_IMAGE, cmd]).status, code, `podman run ${cmd}`);
    }
  });

  t.test('dpkg works; the layers\' whiteouts and opaque directory show', async (t) => {
    const r = lxr(env, ['exec', 'goCon', 'sh', '-c', 'dpkg -s bash | grep -c "^Status: install ok installed"; ls -A /usr/share/doc | wc -l; ls -A /var/cache/debconf; stat -c %U:%a /home/gopher /usr/bin/passwd']);
    t.equal(r.stdout, '1\n0\nmarker\ngopher:750\nroot:4755\n', r.stderr);
    const ps = JSON.parse(lxr(env, ['ps', '--format', 'json']).stdout) as { Name: string; Command: string }[];
    t.equal(ps.find((p) => p.Name === 'goCon')?.Command, 'sleep 600', 'ps shows the image\'s CMD');
  });

  t.test('the unpacked rootfs equals umoci\'s, mtimes to the nanosecond', { skip: !which('umoci') && 'umoci is not installed' }, async (t) => {
    const store = join(env.root, 'images');
    const oci = join(dir, 'oci');
    const c = await runCli(['--store', store, 'copy', DEBIAN_IMAGE, oci]);
    t.equal(c.code, 0, c.stderr);
    const u = spawnSync('umoci', ['unpack', '--image', `${oci}:${DEBIAN_IMAGE}`, join(dir, 'umoci')], { encoding: 'utf8', maxBuffer: 64 << 20 });
    t.equal(u.status, 0, `umoci unpack: ${u.stderr}`);
    const x = await runCli(['--store', store, 'unpack', DEBIAN_IMAGE, join(dir, 'lxr')]);
    t.equal(x.code, 0, x.stderr);
    const want = describeTree(join(dir, 'umoci', 'rootfs'), { mtimes: 'files' });
    const got = describeTree(join(dir, 'lxr', 'rootfs'), { mtimes: 'files' });
    t.same(Object.keys(got).sort(), Object.keys(want).sort(), 'the same paths');
    const differ = Object.keys(want).filter((p) => JSON.stringify(got[p]) !== JSON.stringify(want[p]));
    t.same(differ, [], 'the same owners, modes, contents, xattrs, links');
    const ns: string[] = [];
    const walk = (rel: string) => {
      for (const n of readdirSync(join(dir, 'umoci', 'rootfs', rel))) {
        const r = rel ? `${rel}/${n}` : n;
        const a = lstatSync(join(dir, 'umoci', 'rootfs', r), { bigint: true });
        const b = lstatSync(join(dir, 'lxr', 'rootfs', r), { bigint: true });
        if (a.isFile() && a.mtimeNs !== b.mtimeNs) ns.push(`${r}: umoci ${a.mtimeNs} lxr ${b.mtimeNs}`);
        if (a.isDirectory()) walk(r);
      }
    };
    walk('');
    t.same(ns.slice(0, 10), [], 'every file\'s mtime to the nanosecond');
  });

  t.test('pushed as podman save archives are (digests kept: plain tars labelled gzip) and as zstd, it pulls and unpacks the same', { skip: !which('skopeo') && 'skopeo is not installed' }, async (t) => {
    const reg = await startRegistry();
    t.teardown(() => reg.stop());
    const store = join(env.root, 'images');
    const base = await runCli(['--store', store, 'unpack', DEBIAN_IMAGE, join(dir, 'base')]);
    t.equal(base.code, 0, base.stderr);
    const want = describeTree(join(dir, 'base', 'rootfs'), { mtimes: 'files' });
    for (const [tag, flags] of [['kept', ['--preserve-digests']], ['zstd', ['--dest-compress-format', 'zstd']]] as const) {
      const dest = `${reg.host}/debian:${tag}`;
      const c = spawnSync('skopeo', ['copy', '--dest-tls-verify=false', ...flags, `docker-archive:${archive}`, `docker://${dest}`], { encoding: 'utf8', timeout: 600_000 });
      t.equal(c.status, 0, `skopeo copy ${flags.join(' ')}: ${c.stderr}`);
      const pull = lxr(env, ['pull', dest], { timeout: 600_000 });
      t.equal(pull.status, 0, pull.stderr);
      const u = await runCli(['--store', store, 'unpack', dest, join(dir, tag)]);
      t.equal(u.code, 0, u.stderr);
      if (tag === 'kept') t.match(u.stderr, /says gzip-compressed, but the data is an uncompressed tar/, 'a warning names the mislabelled layers');
      const got = describeTree(join(dir, tag, 'rootfs'), { mtimes: 'files' });
      t.same(Object.keys(got).filter((p) => JSON.stringify(got[p]) !== JSON.stringify(want[p])), [], `${tag}: the same rootfs`);
      const r = lxr(env, ['run', '--rm', '-u', '1000', dest, 'sh', '-c', 'echo $HOME']);
      t.equal(r.stdout, '/home/gopher\n', `${tag}: runs: ${r.stderr}`);
    }
  });
}
