// The pure parts of user namespaces: /etc/subuid parsing, map checks, the rootless state dir.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkIdMappings, isMapped } from '../linux/namespaces.js';
import { subIdRanges } from '../../common/subid.js';
import { DEFAULT_ROOT, defaultRoot } from '../container/state.js';
import { defaultSpec } from '../../oci-spec/default.js';

t.test('subIdRanges reads entries by user name or by uid, and skips junk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-subid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'subuid');
  writeFileSync(file, ['alice:100000:65536', 'bob:200000:65536', '1000:300000:10', 'alice:bad:1', 'alice:400000:0', '', '# comment', 'alice:500000:5'].join('\n'));
  t.same(subIdRanges('uid', { name: 'alice', id: 1000 }, file), [
    { start: 100000, size: 65536 }, { start: 300000, size: 10 }, { start: 500000, size: 5 },
  ]);
  t.same(subIdRanges('uid', { name: 'carol', id: 1001 }, file), []);
  t.same(subIdRanges('uid', { name: 'alice', id: 1000 }, join(dir, 'missing')), [], 'a missing file means no ranges');
});

t.test('checkIdMappings and isMapped', async (t) => {
  const maps = [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }];
  t.equal(checkIdMappings(maps, 'linux.uidMappings'), maps);
  t.ok(isMapped(maps, 0));
  t.ok(isMapped(maps, 65536));
  t.notOk(isMapped(maps, 65537));
  t.throws(() => checkIdMappings([], 'linux.uidMappings'), /linux\.uidMappings: a new user namespace needs at least one mapping/);
  t.throws(() => checkIdMappings([{ containerID: -1, hostID: 0, size: 1 }], 'linux.uidMappings'), /linux\.uidMappings\[0\]\.containerID: -1 is not a valid id/);
  t.throws(
    () => checkIdMappings([{ containerID: 0, hostID: 5, size: 10 }, { containerID: 100, hostID: 0, size: 6 }], 'linux.gidMappings'),
    /linux\.gidMappings\[1\]: host IDs 0-5 overlap linux\.gidMappings\[0\] \(5-14\)/,
  );
});

t.test('defaultRoot: root uses DEFAULT_ROOT, anyone else $XDG_RUNTIME_DIR or /run/user/UID', async (t) => {
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/0' }, 0), DEFAULT_ROOT);
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/lxr-runtime');
  t.equal(defaultRoot({}, 1000), '/run/user/1000/lxr-runtime');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: 'relative' }, 1000), '/run/user/1000/lxr-runtime', 'a relative XDG_RUNTIME_DIR is ignored');
});

t.test('defaultSpec rootless without subordinate ids maps only the caller', async (t) => {
  const s = defaultSpec({ rootless: true, subIds: false });
  t.same(s.linux!.uidMappings, [{ containerID: 0, hostID: process.geteuid!(), size: 1 }]);
  t.same(s.linux!.gidMappings, [{ containerID: 0, hostID: process.getegid!(), size: 1 }]);
  t.ok(s.linux!.namespaces!.some((n) => n.type === 'user'));
  t.notOk(s.linux!.namespaces!.some((n) => n.type === 'network'));
  t.notOk(s.mounts!.find((m) => m.destination === '/dev/pts')!.options!.includes('gid=5'), 'gid 5 is not mapped');
  t.equal(s.mounts!.find((m) => m.destination === '/sys')!.type, 'none', '/sys is a bind of the host\'s');
});
