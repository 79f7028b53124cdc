// Named volumes as docker and podman users know them: a new volume starts as a copy of the
// image's directory at the mount point (content, owner, mode, symlinks as symlinks), is not
// copied again once it exists, outlives its containers, and `nocopy` leaves it empty.
import t from 'tap';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, registryImage, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/volumes:1', {
      entryLayers: [[
        { path: 'srv/', type: 'dir' },
        { path: 'srv/app/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
        { path: 'srv/app/config', type: 'file', data: 'from the image\n', mode: 0o640, uid: 1000, gid: 1000 },
        { path: 'srv/app/sub/', type: 'dir', mode: 0o700, uid: 65534, gid: 65534 },
        { path: 'srv/app/passwd', type: 'symlink', link: '/etc/passwd' },
        { path: 'srv/link', type: 'symlink', link: 'app' },
      ]],
    });
  });
  const volumeData = (name: string) => join(env.root, 'volumes', name, '_data');

  t.test('a new named volume is filled from the image, with owners and modes', async (t) => {
    const r = lxr(env, ['run', '--rm', '-v', 'appdata:/srv/app', image, 'sh', '-c',
      'stat -c "%n %u:%g %a" /srv/app /srv/app/config /srv/app/sub; cat /srv/app/config; readlink /srv/app/passwd; echo changed > /srv/app/config']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '/srv/app 1000:1000 750\n/srv/app/config 1000:1000 640\n/srv/app/sub 65534:65534 700\nfrom the image\n/etc/passwd\n');
    const d = volumeData('appdata');
    const st = lstatSync(d);
    t.same([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, 0o750], 'the volume directory on the host has the image directory\'s owner and mode');
    t.equal(readlinkSync(join(d, 'passwd')), '/etc/passwd', 'a symlink is copied as a symlink, not followed to the host\'s or image\'s file');
  });

  t.test('an existing volume is mounted as it is: no second copy', async (t) => {
    const r = lxr(env, ['run', '--rm', '-v', 'appdata:/srv/app', image, 'cat', '/srv/app/config']);
    t.equal(r.stdout, 'changed\n', 'what the first container wrote is kept');
    t.equal(readFileSync(join(volumeData('appdata'), 'config'), 'utf8'), 'changed\n');
  });

  t.test('the mount point is resolved inside the image: a symlink in the image leads to its target', async (t) => {
    const r = lxr(env, ['run', '--rm', '-v', 'viaLink:/srv/link', image, 'cat', '/srv/link/config']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'from the image\n');
  });

  t.test('nocopy, a path the image lacks, and bad options', async (t) => {
    const n = lxr(env, ['run', '--rm', '-v', 'empty1:/srv/app:nocopy', image, 'sh', '-c', 'ls -A /srv/app | wc -l']);
    t.equal(n.status, 0, n.stderr);
    t.equal(n.stdout.trim(), '0', 'nocopy: the new volume starts empty');
    const m = lxr(env, ['run', '--rm', '-v', 'fresh:/not/in/image', image, 'sh', '-c', 'ls -A /not/in/image | wc -l; stat -c "%u %a" /not/in/image']);
    t.equal(m.status, 0, m.stderr);
    t.equal(m.stdout, '0\n0 755\n', 'nothing to copy: an empty root-owned directory');
    const bad = lxr(env, ['run', '--rm', '-v', 'x:/srv/app:rx', image, 'true']);
    t.equal(bad.status, 125);
    t.match(bad.stderr, /-v x:\/srv\/app:rx: unknown option "rx"/);
    const hostNocopy = lxr(env, ['run', '--rm', '-v', '/tmp:/mnt:nocopy', image, 'true']);
    t.match(hostNocopy.stderr, /nocopy applies to named volumes only/);
  });
}
