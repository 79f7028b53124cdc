// The Linux features of config.md / config-linux.md, observed from inside a container.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, keyValues } from './helpers/bundle.js';

t.test('process identity, limits and the filesystem view', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.hostname = 'featured';
    s.domainname = 'example.test';
    s.root!.readonly = true;
    s.process!.user = { uid: 1000, gid: 1000, additionalGids: [10, 20], umask: 0o027 };
    s.process!.cwd = '/tmp';
    s.process!.env = ['PATH=/bin', 'GREETING=hi there'];
    s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }];
    s.process!.oomScoreAdj = 123;
    s.process!.noNewPrivileges = true;
    s.process!.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL'] };
    s.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777'] });
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    s.process!.args = ['sh', '-c', [
      'echo host=$(hostname)', 'echo domain=$(cat /proc/sys/kernel/domainname)', 'echo id=$(id -u):$(id -g):$(id -G)',
      'echo cwd=$(pwd)', 'echo umask=$(umask)', 'echo env=$GREETING',
      'echo nofile=$(grep "Max open files" /proc/self/limits | tr -s " " | cut -d" " -f4,5)',
      'echo oom=$(cat /proc/self/oom_score_adj)', 'echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)',
      'echo capeff=$(grep CapEff /proc/self/status | cut -f2)', 'echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)',
      'echo capamb=$(grep CapAmb /proc/self/status | cut -f2)',
      'touch /rootfs-write 2>/dev/null && echo rootro=no || echo rootro=yes',
      'echo keys=$(wc -c < /proc/keys)', 'echo firmware=$(ls /sys/firmware | wc -l)', 'echo forward=$(cat /proc/sys/net/ipv4/ip_forward)',
      '(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo procsysro=no || echo procsysro=yes',
      'echo pid1=$$', 'echo devnull=$(stat -c %t:%T:%a /dev/null)', 'echo ptmx=$(readlink /dev/ptmx)',
    ].join('; ')];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  // /tmp is a tmpfs, so writing there must work while the rootfs is read-only
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('feat')]);
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o.host, 'featured', 'hostname');
  t.equal(o.domain, 'example.test', 'domainname');
  t.equal(o.id, '1000:1000:1000 10 20', 'uid, gid and additionalGids');
  t.equal(o.cwd, '/tmp', 'cwd');
  t.equal(o.umask, '0027', 'umask');
  t.equal(o.env, 'hi there', 'env');
  t.equal(o.nofile, '100 200', 'rlimits');
  t.equal(o.oom, '123', 'oomScoreAdj');
  t.equal(o.nnp, '1', 'noNewPrivileges');
  t.equal(o.capeff, '0000000000000020', 'effective = CAP_KILL only, for a non-root user');
  t.equal(o.capbnd, '0000000000000021', 'bounding = CAP_CHOWN + CAP_KILL');
  t.equal(o.capamb, '0000000000000020', 'ambient = CAP_KILL');
  t.equal(o.rootro, 'yes', 'root.readonly');
  t.equal(o.keys, '0', 'maskedPaths hides the file /proc/keys behind /dev/null');
  t.equal(o.firmware, '0', 'maskedPaths hides the directory /sys/firmware behind an empty tmpfs');
  t.equal(o.forward, '1', 'sysctl in the new network namespace');
  t.equal(o.procsysro, 'yes', 'readonlyPaths makes /proc/sys read-only');
  t.equal(o.pid1, '1', 'the process is pid 1 of a new pid namespace');
  t.equal(o.devnull, '1:3:666', 'default device /dev/null');
  t.equal(o.ptmx, 'pts/ptmx', '/dev/ptmx symlink');
});

t.test('joining a network namespace by path', async (t) => {
  const { root, cleanup } = makeRoot();
  const ns = `lxrt${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  const b = makeBundle((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: `/var/run/netns/${ns}` } : n));
    s.process!.args = ['sh', '-c', 'readlink /proc/self/ns/net'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('netns')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `net:[${statSync(`/var/run/netns/${ns}`).ino}]\n`, 'the container is in the joined namespace');
  const bad = runtime(root, ['run', '-b', b.dir, uniqueId('netns')].map((a) => (a === b.dir ? b.dir : a)));
  t.equal(bad.status, 0, 'the namespace can be joined again by another container');
  const missing = makeBundle((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: '/var/run/netns/nope' } : n));
  });
  t.teardown(missing.cleanup);
  const m = runtime(root, ['run', '-b', missing.dir, uniqueId('netns')]);
  t.not(m.status, 0);
  t.match(m.stderr, /linux\.namespaces\[1\]\.path: cannot open network namespace "\/var\/run\/netns\/nope": ENOENT/);
});

t.test('a user namespace maps root inside to an unprivileged range outside', async (t) => {
  const { root, cleanup } = makeRoot();
  const shared = mkdtempSync(join(tmpdir(), 'lxr-userns-'));
  chmodSync(shared, 0o777);
  const b = makeBundle((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup');
    s.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind'] });
    s.process!.args = ['sh', '-c', 'id -u; cat /proc/self/uid_map; touch /shared/made-inside'];
  });
  t.teardown(() => (b.cleanup(), cleanup(), rmSync(shared, { recursive: true, force: true })));
  chmodSync(b.dir, 0o755); // the mapped root must be able to reach its rootfs
  mkdirSync(join(b.rootfs, 'shared')); // and cannot create mount points in a rootfs it does not own
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('userns')]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^0\n\s+0\s+100000\s+65536\n/, 'root inside, with the configured map');
  const st = statSync(join(shared, 'made-inside'));
  t.equal(st.uid, 100000, 'a file made by root inside is owned by the mapped uid on the host');
  t.equal(st.gid, 100000);
});

t.test('a time namespace applies linux.timeOffsets', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.linux!.namespaces!.push({ type: 'time' });
    s.linux!.timeOffsets = { boottime: { secs: 864000, nanosecs: 0 } };
    s.process!.args = ['sh', '-c', 'cut -d. -f1 /proc/uptime'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('time')]);
  t.equal(r.status, 0, r.stderr);
  const hostUptime = Number(execFileSync('cut', ['-d.', '-f1', '/proc/uptime']).toString());
  t.ok(Number(r.stdout) >= hostUptime + 864000 - 5, `uptime inside (${r.stdout.trim()}) is shifted by 10 days`);
});

t.test('without a mount namespace the container inherits the runtime\'s, and delete removes its mounts', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.linux!.namespaces = [];
    delete s.hostname;
    s.linux!.maskedPaths = [];
    s.linux!.readonlyPaths = [];
    s.mounts = [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/dev', type: 'tmpfs', source: 'tmpfs' }];
    s.process!.args = ['sh', '-c', 'readlink /proc/self/ns/mnt; test -c /dev/null && echo devnull'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('nomntns')]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `${execFileSync('readlink', ['/proc/self/ns/mnt']).toString().trim()}\ndevnull\n`, 'same mount namespace as the runtime, with its mounts in the rootfs');
  const left = execFileSync('cat', ['/proc/self/mountinfo']).toString().split('\n').filter((l) => l.includes(b.rootfs));
  t.same(left, [], 'no mount left under the rootfs after delete');
});
