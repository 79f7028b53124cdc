// A tmpfs over a directory keeps the directory's mode unless the mount gives "mode="
// (runc's behaviour); the mode is read inside the rootfs, never through a symlink to the host.
import t from 'tap';
import { chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { keyValues, makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

t.test('tmpfs mountpoint modes', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.mounts!.push(
      { destination: '/kept', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] },
      { destination: '/given', type: 'tmpfs', source: 'tmpfs', options: ['mode=750'] },
      { destination: '/missing', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/sticky', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/link', type: 'tmpfs', source: 'tmpfs' },
    );
    s.process!.args = ['sh', '-c', 'for d in kept given missing sticky; do echo $d=$(stat -c %a /$d)/$(grep " /$d " /proc/mounts | cut -d" " -f3); done; echo link=$(stat -L -c %a /link)'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  for (const [d, mode] of [['kept', 0o712], ['given', 0o700], ['sticky', 0o1755]] as const) {
    mkdirSync(join(b.rootfs, d));
    chmodSync(join(b.rootfs, d), mode);
  }
  // an absolute symlink to a host directory with a telling mode
  const host = join(b.dir, 'hostdir');
  mkdirSync(host);
  chmodSync(host, 0o701);
  symlinkSync(host, join(b.rootfs, 'link'));

  const r = runtime(root, ['run', '-b', b.dir, uniqueId('tmpfs')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o.kept, '712/tmpfs', 'the mountpoint\'s mode is kept');
  t.equal(o.given, '750/tmpfs', 'mode= wins');
  t.equal(o.missing, '1777/tmpfs', 'a new mountpoint: the tmpfs default');
  t.equal(o.sticky, '1755/tmpfs', 'special bits are kept too');
  t.equal(o.link, '1777', 'a symlink is followed inside the rootfs, not to the host directory');
});
