// linux.devices paths are cleaned as runc cleans them: a trailing slash or "." does not
// make the device fail.
import t from 'tap';
import { keyValues, makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

t.test('a device path with a trailing slash', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.linux!.devices = [
      { type: 'c', path: '/dev/mynull/', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
      { type: 'c', path: '/mnt/', major: 1, minor: 5, fileMode: 0o640, uid: 0, gid: 0 },
      { type: 'c', path: '/dev/./myzero', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
    ];
    s.process!.args = ['sh', '-c', 'for d in /dev/mynull /mnt /dev/myzero; do echo "$d=$(stat -c %F:%t:%T:%a $d)"; done'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('devpath')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o['/dev/mynull'], 'character special file:1:3:666');
  t.equal(o['/mnt'], 'character special file:1:5:640');
  t.equal(o['/dev/myzero'], 'character special file:1:5:666');
});
