// User namespaces created by root: the mapped range outside, idmapped bind mounts
// (idmap / ridmap, the container's maps or the mount's own), and the errors of bad maps.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, keyValues } from './helpers/bundle.js';
import type { Spec } from '../../oci-spec/types.js';

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

/** A bundle with a new user namespace mapping 0-65535 to 100000-165535, readable by the mapped root. */
function usernsBundle(t: Test, edit: (s: Spec) => void, dirs: string[] = []): { dir: string; rootfs: string } {
  const b = makeBundle((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = MAP.map((m) => ({ ...m }));
    s.linux!.gidMappings = MAP.map((m) => ({ ...m }));
    s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup');
    edit(s);
  });
  t.teardown(b.cleanup);
  chmodSync(b.dir, 0o755);
  // the mapped root cannot create mount points in a rootfs it does not own
  for (const d of dirs) mkdirSync(join(b.rootfs, d), { recursive: true });
  return b;
}

/** A host dir (reachable by anyone) holding a file owned by 1000:1000 and one by root. */
function hostData(t: Test): string {
  const base = mkdtempSync(join(tmpdir(), 'lxr-idmap-'));
  chmodSync(base, 0o755);
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const data = join(base, 'data');
  mkdirSync(data, { mode: 0o777 });
  chmodSync(data, 0o777);
  writeFileSync(join(data, 'user-file'), 'x');
  chownSync(join(data, 'user-file'), 1000, 1000);
  writeFileSync(join(data, 'root-file'), 'x');
  return data;
}

t.test('an idmapped bind mount shows host files with the container\'s ids', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const data = hostData(t);
  const b = usernsBundle(t, (s) => {
    s.mounts!.push({ destination: '/idmapped', type: 'bind', source: data, options: ['rbind', 'idmap'] });
    s.mounts!.push({ destination: '/plain', type: 'bind', source: data, options: ['rbind'] });
    s.mounts!.push({ destination: '/ro', type: 'bind', source: data, options: ['bind', 'ridmap', 'ro'] });
    s.process!.args = ['sh', '-c', [
      'echo user=$(stat -c %u:%g /idmapped/user-file)', 'echo root=$(stat -c %u:%g /idmapped/root-file)',
      'echo plain=$(stat -c %u:%g /plain/user-file)', 'echo ro=$(stat -c %u:%g /ro/user-file)',
      'touch /idmapped/made-inside && echo made=yes', 'touch /ro/nope 2>/dev/null && echo rowrite=yes || echo rowrite=no',
      'echo flags=$(grep " /idmapped " /proc/self/mountinfo | grep -c idmapped)',
      '(echo more >> /plain/root-file) 2>/dev/null && echo plainwrite=yes || echo plainwrite=no',
    ].join('; ')];
  }, ['idmapped', 'plain', 'ro']);
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('idmap')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o.user, '1000:1000', 'host uid 1000 shows as uid 1000 inside (through the container\'s map)');
  t.equal(o.root, '0:0', 'host root shows as root inside');
  t.equal(o.plain, '65534:65534', 'without idmap the same file is unmapped (nobody)');
  t.equal(o.ro, '1000:1000', 'ridmap on a bind mount');
  t.equal(o.rowrite, 'no', 'the ro option still applies to an idmapped mount');
  t.equal(o.flags, '1', 'the mount is idmapped in mountinfo');
  t.equal(o.made, 'yes');
  t.equal(o.plainwrite, 'no', 'root inside cannot write a host root file (0644) it sees without idmap: it is not root outside');
  t.equal(readFileSync(join(data, 'root-file'), 'utf8'), 'x');
  const st = statSync(join(data, 'made-inside'));
  t.equal(st.uid, 0, 'a file root makes inside is owned by root on the host, not by 100000');
  t.equal(st.gid, 0);
});

t.test('a mount\'s own uidMappings and gidMappings', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const data = hostData(t);
  const own = [{ containerID: 0, hostID: 100005, size: 65000 }];
  const b = usernsBundle(t, (s) => {
    s.mounts!.push({ destination: '/own', type: 'bind', source: data, options: ['bind', 'idmap'], uidMappings: own, gidMappings: own });
    // a time namespace makes the init a second clone (unshare, then clone into the pid
    // namespace): the mount must reach that process
    s.linux!.namespaces!.push({ type: 'time' });
    s.process!.args = ['sh', '-c', 'echo user=$(stat -c %u:%g /own/user-file); echo root=$(stat -c %u:%g /own/root-file); echo pid=$$'];
  }, ['own']);
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('idmapown')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  // on disk 1000 -> 100005 + 1000 on the host -> 1005 in the container's namespace
  t.equal(o.user, '1005:1005', 'host uid 1000 goes through the mount\'s map, then the container\'s');
  t.equal(o.root, '5:5');
  t.equal(o.pid, '1');
});

t.test('a container without a user namespace can still use a mount\'s own maps', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const data = hostData(t);
  const own = [{ containerID: 0, hostID: 5000, size: 2000 }];
  const b = makeBundle((s) => {
    s.mounts!.push({ destination: '/own', type: 'bind', source: data, options: ['bind', 'idmap'], uidMappings: own, gidMappings: own });
    s.process!.args = ['sh', '-c', 'stat -c %u:%g /own/user-file'];
  });
  t.teardown(b.cleanup);
  mkdirSync(join(b.rootfs, 'own'));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('idmaphost')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '6000:6000\n', 'without a user namespace the host sees 1000 shifted by the mount\'s map');
});

t.test('a user namespace that does not own the network namespace gets the host\'s /sys bound', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const b = usernsBundle(t, (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network');
    s.process!.args = ['sh', '-c', 'echo kernel=$(test -d /sys/kernel && echo yes); echo dev=$(stat -c %d /sys); touch /sys/x 2>/dev/null && echo ro=no || echo ro=yes'];
  });
  t.ok(JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')).mounts.some((m: { type?: string }) => m.type === 'sysfs'), 'the config asks for sysfs');
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sysfs')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o.kernel, 'yes', '/sys is there');
  t.equal(o.dev, String(statSync('/sys').dev), 'it is the host\'s sysfs (the same superblock: sysfs has one per network namespace)');
  t.equal(o.ro, 'yes', 'with the mount\'s ro option');
});

t.test('user namespace errors name the config field, and a failed create leaves nothing behind', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const data = hostData(t);
  const fails = (edit: (s: Spec) => void, re: RegExp, msg: string, userns = true): void => {
    const b = userns ? usernsBundle(t, edit, ['m']) : (() => {
      const x = makeBundle(edit);
      t.teardown(x.cleanup);
      mkdirSync(join(x.rootfs, 'm'));
      return x;
    })();
    const id = uniqueId('usernserr');
    const r = runtime(root, ['run', '-b', b.dir, id]);
    t.not(r.status, 0, msg);
    t.match(r.stderr, re, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, `${msg}: one line: ${r.stderr}`);
    t.notOk(existsSync(join(root, id)), `${msg}: no state left`);
  };
  fails((s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 500, hostID: 300000, size: 10 }];
  }, /linux\.uidMappings\[1\]: container IDs 500-509 overlap linux\.uidMappings\[0\] \(0-999\)/, 'overlapping container ids');
  fails((s) => {
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 1000, hostID: 100500, size: 10 }];
  }, /linux\.gidMappings\[1\]: host IDs 100500-100509 overlap linux\.gidMappings\[0\] \(100000-100999\)/, 'overlapping host ids');
  fails((s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 0 }];
  }, /linux\.uidMappings\[0\]\.size: must be at least 1/, 'an empty mapping');
  fails((s) => {
    s.process!.user = { uid: 70000, gid: 0 };
  }, /process\.user\.uid: 70000 is not mapped by linux\.uidMappings/, 'an unmapped process.user.uid');
  fails((s) => {
    s.process!.user = { uid: 0, gid: 0, additionalGids: [99999] };
  }, /process\.user\.additionalGids\[0\]: 99999 is not mapped by linux\.gidMappings/, 'an unmapped additional gid');
  fails((s) => {
    s.mounts!.push({ destination: '/m', type: 'bind', source: data, options: ['bind', 'idmap'] });
  }, /mounts\[\d+\]\.options: "idmap" needs the mount's own uidMappings and gidMappings, or a user namespace in linux\.namespaces/, 'idmap without any maps', false);
  fails((s) => {
    s.mounts!.push({ destination: '/m', type: 'bind', source: data, options: ['bind', 'idmap'], uidMappings: MAP });
  }, /mounts\[\d+\]: uidMappings and gidMappings must be given together/, 'uidMappings without gidMappings');
  fails((s) => {
    s.mounts!.push({ destination: '/m', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] });
  }, /mounts\[\d+\]\.options: idmapped mounts are supported for bind mounts only/, 'idmap on a tmpfs');
  fails((s) => {
    s.mounts!.push({ destination: '/m', type: 'bind', source: data, options: ['bind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 1, size: 5 }, { containerID: 2, hostID: 10, size: 5 }], gidMappings: MAP });
  }, /mounts\[\d+\]\.uidMappings\[1\]: container IDs 2-6 overlap mounts\[\d+\]\.uidMappings\[0\] \(0-4\)/, 'a mount\'s overlapping maps');
  fails((s) => {
    s.mounts!.push({ destination: '/m', type: 'bind', source: '/sys/kernel', options: ['rbind', 'idmap'] });
  }, /idmap the mount of "\/sys\/kernel" \(config\.json mounts\[\d+\]\): EINVAL .*\(the filesystem of "\/sys\/kernel" does not support idmapped mounts\)/, 'idmap of a filesystem that cannot be idmapped');
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(data));
  t.same(left, [], 'no idmapped mount is left on the host');
  t.equal(execFileSync('ls', [root]).toString(), '', 'no state dir is left');
});
