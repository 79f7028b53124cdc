// Mount targets and device paths are resolved inside the rootfs, so an image that plants
// symlinks pointing at host paths cannot make the runtime create or mount anything on
// the host (the class of runc's CVE-2024-21626 and CVE-2025-31133).
import t from 'tap';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

t.test('hostile absolute and relative symlinks stay inside the rootfs', async (t) => {
  const { root, cleanup } = makeRoot();
  const host = `/tmp/lxr-hostile-${process.pid}`;
  const b = makeBundle((s) => {
    s.mounts!.push({ destination: '/evil/sub/dir', type: 'tmpfs', source: 'tmpfs' });
    s.mounts!.push({ destination: '/up/escaped', type: 'tmpfs', source: 'tmpfs' });
    s.linux!.devices = [{ type: 'c', path: '/evil/devnull', major: 1, minor: 3, fileMode: 0o666 }];
    s.process!.args = ['sh', '-c', 'grep -c " /tmp/lxr-hostile-[0-9]*/sub/dir " /proc/self/mountinfo; grep -c " /tmp/escaped " /proc/self/mountinfo; test -c /tmp/lxr-hostile-*/devnull && echo devnode-inside'];
  });
  t.teardown(() => {
    b.cleanup();
    cleanup();
    rmSync(host, { recursive: true, force: true });
  });
  symlinkSync(host, join(b.rootfs, 'evil'));
  mkdirSync(join(b.rootfs, 'a', 'b'), { recursive: true });
  symlinkSync('../../../../../../../../tmp', join(b.rootfs, 'up'));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sym')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '1\n1\ndevnode-inside\n', 'the mounts and the device landed inside the container');
  t.notOk(existsSync(host), `nothing was created at ${host} on the host`);
  t.notOk(existsSync('/tmp/escaped'), 'the relative ../ symlink did not reach the host /tmp');
  t.ok(existsSync(join(b.rootfs, 'tmp', 'escaped')), 'it was clamped to the rootfs /tmp');
  t.ok(existsSync(join(b.rootfs, host.slice(1), 'sub', 'dir')), 'the mount point was made under the rootfs');
});

t.test('a bind mount onto a symlinked target lands inside the rootfs', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.mounts!.push({ destination: '/etc/target', type: 'bind', source: '/etc/hostname', options: ['bind', 'ro'] });
    s.process!.args = ['sh', '-c', 'cat /root/hostetc/hostname >/dev/null && echo visible'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  // /etc/target -> /root/hostetc/hostname: resolved in the rootfs, never the host's /root
  mkdirSync(join(b.rootfs, 'root', 'hostetc'), { recursive: true });
  symlinkSync('/root/hostetc/hostname', join(b.rootfs, 'etc', 'target'));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('bind')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'visible\n');
  t.notOk(existsSync('/root/hostetc'), 'the host /root was not touched');
});
