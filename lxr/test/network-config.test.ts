// The network library around the plugins: network configuration lists, subnet checks,
// hosts/hostname/resolv.conf files, GC of containers that are gone, and detaching
// half-attached containers.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from '../network/manager/index.js';
import { inNetns, ping, rulesMentioning, testNetwork } from './helpers/netns.js';

function tmp(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'lxr-netcfg-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function leases(tn: { opts: { stateDir: string }; name: string }): Record<string, { containerId: string }> {
  const f = join(tn.opts.stateDir, 'ipam', tn.name, 'leases.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')).leases : {};
}

t.test('parsePortSpec', async (t) => {
  t.same(net.parsePortSpec('8080:80'), { hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  t.same(net.parsePortSpec('5353:53/udp'), { hostPort: 5353, containerPort: 53, protocol: 'udp' });
  t.same(net.parsePortSpec('127.0.0.1:8080:80/tcp'), { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  t.same(net.parsePortSpec('80'), { hostPort: 80, containerPort: 80, protocol: 'tcp' });
  t.throws(() => net.parsePortSpec('8080:80/icmp'), { message: 'invalid protocol in port spec "8080:80/icmp" (expected tcp or udp)' });
  t.throws(() => net.parsePortSpec('70000:80'), { message: 'host port 70000 in port spec "70000:80" is out of range (1-65535)' });
  t.throws(() => net.parsePortSpec('x:80'), { message: 'invalid host port "x" in port spec "x:80"' });
  t.throws(() => net.parsePortSpec('1.2.3:80:80'), { message: 'invalid host address "1.2.3" in port spec "1.2.3:80:80"' });
  t.throws(() => net.parsePortSpec('a:b:c:d'), /invalid port spec/);
});

t.test('resolv.conf: loopback resolvers are dropped; none left means no nameserver line', async (t) => {
  const host = 'search corp.example\nnameserver 127.0.0.53\nnameserver 10.1.2.3\nnameserver ::1\noptions ndots:2\n';
  const c = net.resolvConfContent(host);
  t.match(c, /^search corp\.example$/m);
  t.match(c, /^nameserver 10\.1\.2\.3$/m);
  t.notMatch(c, /127\.0\.0\.53|::1/);
  t.match(c, /^options ndots:2$/m);
  const only = net.resolvConfContent('nameserver 127.0.0.53\n');
  t.notMatch(only, /^nameserver/m, 'no nameserver when only loopback ones exist');
  t.match(only, /No nameserver.*1 loopback resolver\(s\) dropped/);
  t.match(net.resolvConfContent(host, { servers: ['10.9.9.9'] }), /^nameserver 10\.9\.9\.9$/m, 'explicit servers win');
});

t.test('networks: default network, listing, overlap refusals, bad files', async (t) => {
  const d = tmp(t);
  const o = { confDir: join(d, 'net.d'), stateDir: join(d, 'state') };
  t.same(net.listNetworks(o), [], 'no directory, no networks');
  const def = await net.ensureDefaultNetwork({ ...o, bridge: 'lxrt6def', subnet: '10.123.6.0/24' });
  t.match(def, { name: 'lxr', bridge: 'lxrt6def', subnet: '10.123.6.0/24', gateway: '10.123.6.1', plugins: ['lxr-bridge', 'lxr-portmap'], cniVersion: '1.1.0' });
  t.ok(existsSync(join(o.confDir, 'lxr.conflist')), 'written as lxr.conflist');
  t.same(await net.ensureDefaultNetwork({ ...o, bridge: 'other', subnet: '10.123.7.0/24' }), def, 'an existing default network is returned as is');
  t.same(net.listNetworks(o), [def]);

  await t.rejects(net.createNetwork({ ...o, name: 'two', bridge: 'lxrt6two', subnet: '10.123.6.128/25' }), {
    message: 'subnet 10.123.6.128/25 overlaps subnet 10.123.6.0/24 of network lxr',
  });
  await t.rejects(net.createNetwork({ ...o, name: 'lxr', bridge: 'lxrt6x', subnet: '10.123.8.0/24' }), { message: /network lxr already exists/ });
  // A subnet that overlaps a route of the host (e.g. the subnet of its own uplink).
  const routes = JSON.parse(spawnSync('ip', ['-4', '-json', 'route', 'show'], { encoding: 'utf8' }).stdout) as { dst: string; dev: string }[];
  const hostRoute = routes.find((r) => r.dst !== 'default' && r.dst.includes('/') && !r.dev.startsWith('lxrt'));
  if (hostRoute) {
    await t.rejects(net.createNetwork({ ...o, name: 'clash', bridge: 'lxrt6c', subnet: hostRoute.dst }), {
      message: new RegExp(`^subnet ${hostRoute.dst.replace(/\./g, '\\.')} overlaps host route ${hostRoute.dst.replace(/\./g, '\\.')} dev ${hostRoute.dev}: choose another subnet$`),
    });
    await t.rejects(net.ensureDefaultNetwork({ confDir: join(d, 'other.d'), stateDir: o.stateDir, bridge: 'lxrt6d', subnet: hostRoute.dst }), {
      message: /overlaps host route/,
    }, 'the default network refuses it too');
  } else t.comment('the host has no non-default route to clash with');
  await t.rejects(net.createNetwork({ ...o, name: 'bad', bridge: 'lxrt6b', subnet: '10.123.9.0/99' }), { message: 'invalid IPv4 subnet "10.123.9.0/99" (expected ADDRESS/PREFIX, e.g. 10.88.0.0/16)' });

  writeFileSync(join(o.confDir, 'zz.conflist'), '{"cniVersion":"1.0.0","name":"zz"}');
  t.throws(() => net.listNetworks(o), { message: `network configuration ${join(o.confDir, 'zz.conflist')}: "plugins" must be a non-empty list` });
  writeFileSync(join(o.confDir, 'zz.conflist'), '{oops');
  t.throws(() => net.listNetworks(o), { message: new RegExp(`^network configuration ${join(o.confDir, 'zz.conflist')} is not valid JSON`) });
  unlinkSync(join(o.confDir, 'zz.conflist'));

  const ns = join(d, 'not-a-netns');
  await t.rejects(net.attachContainer({ ...o, containerId: 'x1', name: 'x', netnsPath: ns, network: 'nope' }), {
    message: `network nope not found (no nope in ${o.confDir}/*.conflist)`,
  });
  await t.rejects(net.attachContainer({ ...o, containerId: 'x1', name: 'x', netnsPath: ns }), { message: `network namespace ${ns} does not exist` });
  await t.rejects(net.attachContainer({ ...o, containerId: 'x1', name: 'x', netnsPath: ns, ports: ['80:80', '80:81'] }), /does not exist|published twice/);
  await net.removeNetwork({ ...o, name: 'lxr' });
  t.same(net.listNetworks(o), []);
});

t.test('hosts, hostname and resolv.conf: names of the network, refreshed in place', async (t) => {
  const tn = await testNetwork(t, 7);
  const d = tmp(t);
  const fakeResolv = join(d, 'resolv.conf');
  writeFileSync(fakeResolv, 'nameserver 127.0.0.53\nnameserver 10.20.30.40\n');
  const nsA = tn.netns('a');
  const nsB = tn.netns('b');
  const nsC = tn.netns('c');
  const idA = `dns-a-${process.pid}`;
  const a = await tn.attach({ containerId: idA, name: 'web', netnsPath: nsA });
  const b = await tn.attach({ containerId: `dns-b-${process.pid}`, name: 'db', netnsPath: nsB });
  const files = await net.dnsFiles({ ...tn.opts, containerId: idA, name: 'web', hostname: 'webhost', hostResolvConf: fakeResolv });
  const hostsA = readFileSync(files.hostsPath, 'utf8');
  t.match(hostsA, /^127\.0\.0\.1\tlocalhost$/m);
  t.match(hostsA, new RegExp(`^${a.ip}\\tweb webhost$`, 'm'), 'itself by name and hostname');
  t.match(hostsA, new RegExp(`^${b.ip}\\tdb$`, 'm'), 'the other container by name');
  t.equal(readFileSync(files.hostnamePath, 'utf8'), 'webhost\n');
  const resolv = readFileSync(files.resolvConfPath, 'utf8');
  t.match(resolv, /^nameserver 10\.20\.30\.40$/m);
  t.notMatch(resolv, /127\.0\.0\.53/);

  // The name resolves inside the container's namespaces with these files (getent reads /etc/hosts).
  const viaHosts = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind ${files.hostsPath} /etc/hosts && nsenter --net=${nsA} getent hosts db`], { encoding: 'utf8' });
  t.match(viaHosts.stdout, new RegExp(`^${b.ip.replace(/\./g, '\\.')}\\s+db`), 'getent resolves db through the bind-mounted hosts file');
  t.ok(ping(nsA, b.ip), 'and it answers');

  const inode = statSync(files.hostsPath).ino;
  const c = await tn.attach({ containerId: `dns-c-${process.pid}`, name: 'cache', netnsPath: nsC });
  t.match(readFileSync(files.hostsPath, 'utf8'), new RegExp(`^${c.ip}\\tcache$`, 'm'), 'a new container shows up in the hosts file');
  t.equal(statSync(files.hostsPath).ino, inode, 'rewritten in place (same inode: bind mounts see it)');
  await net.detachContainer({ ...tn.opts, containerId: `dns-b-${process.pid}` });
  t.notMatch(readFileSync(files.hostsPath, 'utf8'), /\tdb$/m, 'a removed container leaves the hosts file');
  t.equal(statSync(files.hostsPath).ino, inode);
  await net.detachContainer({ ...tn.opts, containerId: idA });
  t.notOk(existsSync(files.hostsPath), 'the files go when the container leaves its last network');
});

t.test('gcNetwork removes what containers that no longer exist left; detach works half-attached', async (t) => {
  const tn = await testNetwork(t, 8);
  const ids = ['gc-a', 'gc-b', 'gc-c', 'gc-d'].map((x) => `${x}-${process.pid}`);
  const ns = ids.map((_, i) => tn.netns(`g${i}`));
  const r = [];
  for (let i = 0; i < ids.length; i++) r.push(await tn.attach({ containerId: ids[i], name: `g${i}`, netnsPath: ns[i], ports: [`${20000 + (process.pid % 1000) * 10 + i}:80`] }));
  const [a, b, c, dd] = ids;
  // C crashed between ADD and its record: only CNI GC can find its lease and rules.
  unlinkSync(join(tn.opts.stateDir, 'attachments', tn.name, `${c}.json`));
  const res = await net.gcNetwork({ ...tn.opts, keep: [b, dd] });
  t.same(res.errors, []);
  t.same(res.removed, [a]);
  t.same(Object.values(leases(tn)).map((l) => l.containerId).sort(), [b, dd].sort(), 'only the kept containers hold leases');
  t.same(rulesMentioning(a), [], "A's rules are gone");
  t.same(rulesMentioning(c), [], "C's rules are gone (CNI GC)");
  t.not(rulesMentioning(b).length, 0, "B's rules stay");
  t.same(net.listAttachments({ ...tn.opts }).map((x) => x.containerId).sort(), [b, dd].sort());
  t.ok(ping(ns[1], r[3].ip), 'kept containers still talk');

  // D: its netns vanished before the detach (the record still has the old path).
  spawnSync('ip', ['netns', 'del', ns[3].split('/').pop()!]);
  await net.detachContainer({ ...tn.opts, containerId: dd });
  t.same(rulesMentioning(dd), []);
  t.notOk(Object.values(leases(tn)).some((l) => l.containerId === dd), "D's lease is released");

  // B: the record is lost (half-attached): detach with the network and netns still cleans up.
  unlinkSync(join(tn.opts.stateDir, 'attachments', tn.name, `${b}.json`));
  await net.detachContainer({ ...tn.opts, containerId: b, network: tn.name, netnsPath: ns[1] });
  t.same(rulesMentioning(b), []);
  t.same(leases(tn), {}, 'no leases left');
  t.notOk(inNetns(ns[1], ['ip', 'link', 'show', 'eth0']).status === 0, "B's eth0 is gone");
});
