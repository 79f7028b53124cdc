// lxr's network plumbing without `ip` processes: network namespaces made natively
// (netns.ts + native/netns.c) and links, addresses and routes through rtnetlink (netlink.ts,
// link.ts), checked against `ip -json` as the oracle. Everything is made under names unique
// to this test process and removed in teardown; the test's own network namespace must never
// change.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, removeNetns } from '../network/netns.js';
import { detachContainer } from '../network/manager/index.js';
import { Netlink, NetlinkError } from '../network/netlink.js';
import { addresses, bridgeMac, deleteLink, deleteLinkAsync, ensureAddress, ensureBridge, linkInfo, overlappingRoutes } from '../network/link.js';
import { parseSubnet } from '../network/ipv4.js';
import { testNetwork } from './helpers/netns.js';

const haveIp = spawnSync('ip', ['-V']).status === 0;
const ourNetns = readlinkSync('/proc/self/ns/net');
const tag = `${process.pid % 10000}`;
const nsName = (label: string) => `lxrt-nl-${process.pid}-${label}`;
const made = { netns: [] as string[], links: [] as string[] };

function ipJson<T = any>(args: string[]): T {
  const r = spawnSync('ip', ['-json', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip -json ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]') as T;
}
const netnsList = () => (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0]);
const mountedAt = (path: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);

function newNetns(label: string): string {
  const n = nsName(label);
  made.netns.push(n);
  return createNetns(n);
}

if (!haveIp) {
  t.plan(0, 'iproute2 is needed as the oracle');
} else {
  t.teardown(() => {
    for (const l of made.links) spawnSync('ip', ['link', 'del', 'dev', l]);
    for (const n of made.netns) {
      if (existsSync(`/run/netns/${n}`)) spawnSync('ip', ['netns', 'del', n]);
    }
  });

  t.test('a network namespace made natively', async (t) => {
    const name = nsName('plain');
    const path = newNetns('plain');
    t.equal(path, `/run/netns/${name}`);
    t.ok(existsSync(path), 'the file is there');
    t.ok(mountedAt(path), 'and the namespace is mounted on it');
    t.ok(netnsList().includes(name), 'ip netns list shows it');
    t.not(statSync(path).ino, statSync('/proc/self/ns/net').ino, 'a namespace other than ours');
    const lo = ipJson(['-n', name, 'link', 'show', 'dev', 'lo'])[0];
    t.ok(lo.flags.includes('UP'), 'lo is up');
    t.same(ipJson(['-n', name, 'link', 'show']).map((l: any) => l.ifname), ['lo'], 'and alone');
    t.same(Netlink.in(path, (nl) => nl.addresses()), [{ index: 1, address: '127.0.0.1', prefixlen: 8 }], '127.0.0.1 on lo, seen through a socket inside');
    t.same(addresses('lo', path), ['127.0.0.1/8']);
    // a different namespace from ours: ip's view from inside has no host links
    t.notOk(Netlink.in(path, (nl) => nl.links()).some((l) => l.ifname !== 'lo'), 'no host interface inside');
    t.equal(readlinkSync('/proc/self/ns/net'), ourNetns, 'our own netns is unchanged');

    t.throws(() => createNetns(name), { message: `network namespace ${path} already exists` });
    t.throws(() => createNetns('../x'), { message: 'invalid network namespace name "../x"' });

    removeNetns(name);
    t.notOk(existsSync(path), 'removal removes the file');
    t.notOk(mountedAt(path), 'and the mount');
    t.notOk(netnsList().includes(name), 'ip netns list no longer shows it');
    t.doesNotThrow(() => removeNetns(name), 'removing a missing one is fine');

    // a file left behind by a create that died before its mount is removed too
    writeFileSync(path, '');
    removeNetns(name);
    t.notOk(existsSync(path), 'a leftover file is removed');
  });

  t.test('a veth through netlink, checked with ip -json', async (t) => {
    const name = nsName('veth');
    const path = newNetns('veth');
    const br = `nlb${tag}`;
    const host = `nlv${tag}`;
    made.links.push(host, br);

    const b = ensureBridge(br, 1400);
    const ipBr = ipJson(['-d', 'link', 'show', 'dev', br])[0];
    t.equal(ipBr.linkinfo.info_kind, 'bridge');
    t.equal(ipBr.address, bridgeMac(br), 'the fixed MAC');
    t.equal(b.address, ipBr.address);
    t.equal(ipBr.mtu, 1400);
    t.ok(ipBr.flags.includes('UP'), 'the bridge is up');
    t.same(ensureBridge(br, 1400).ifindex, ipBr.ifindex, 'ensureBridge again finds the same bridge');
    ensureAddress(br, '10.123.21.1/24');
    ensureAddress(br, '10.123.21.1/24'); // twice is fine
    t.same(addresses(br), ['10.123.21.1/24']);
    t.same(ipJson(['-4', 'addr', 'show', 'dev', br])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`), ['10.123.21.1/24']);

    const nl = Netlink.host();
    nl.addVeth(host, { mtu: 1400, master: b.ifindex, peer: { name: 'eth0', mtu: 1400, netns: path } });
    const v = nl.getLink(host)!;
    nl.setHairpin(v.index, true, host);
    nl.setLink(v.index, { up: true }, host);
    Netlink.in(path, (ns) => {
      const e = ns.getLink('eth0')!;
      ns.addAddress(e.index, '10.123.21.5/24', 'eth0');
      ns.setLink(e.index, { up: true }, 'eth0');
      ns.addRoute({ dst: '0.0.0.0/0', gateway: '10.123.21.1', oif: e.index }, 'eth0');
      ns.addRoute({ dst: '10.123.22.0/24', oif: e.index }, 'eth0');
      ns.addRoute({ dst: '10.123.23.0/24', gateway: '10.123.21.9', oif: e.index }, 'eth0');
    });

    const ipHost = ipJson(['-d', 'link', 'show', 'dev', host])[0];
    t.equal(ipHost.linkinfo.info_kind, 'veth');
    t.equal(ipHost.master, br, 'the host end is on the bridge');
    t.equal(ipHost.mtu, 1400);
    t.equal(ipHost.linkinfo.info_slave_kind, 'bridge');
    t.equal(ipHost.linkinfo.info_slave_data.hairpin, true, 'hairpin on');
    t.ok(ipHost.flags.includes('UP'));
    t.equal(ipHost.link_netnsid !== undefined || ipHost.link_netns !== undefined, true, 'its peer is in another netns');
    const mine = linkInfo(host)!;
    t.match(mine, { ifname: host, ifindex: ipHost.ifindex, address: ipHost.address, mtu: 1400, master: br, operstate: ipHost.operstate, kind: 'veth' });
    t.same(mine.flags, ipHost.flags, 'flags as ip names them');

    const ipCtr = ipJson(['-n', name, '-d', 'link', 'show', 'dev', 'eth0'])[0];
    t.equal(ipCtr.ifname, 'eth0', 'the peer is eth0 inside the netns');
    t.equal(ipCtr.mtu, 1400);
    t.equal(ipCtr.linkinfo.info_kind, 'veth');
    t.equal(ipCtr.link_index, ipHost.ifindex, "its peer is the host's end");
    t.ok(ipCtr.flags.includes('UP'));
    t.match(linkInfo('eth0', path), { ifname: 'eth0', ifindex: ipCtr.ifindex, address: ipCtr.address, mtu: 1400 });
    t.equal(ipJson(['link', 'show', 'dev', 'eth0'])[0].link_index, undefined, "the host's own eth0 (if any) is not the peer");
    t.same(
      ipJson(['-n', name, '-4', 'addr', 'show', 'dev', 'eth0'])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`),
      ['10.123.21.5/24'],
      'the address, as ip shows it',
    );
    t.same(addresses('eth0', path), ['10.123.21.5/24']);
    const routes = ipJson(['-n', name, '-4', 'route', 'show']).map((r: any) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}${r.scope ? ` scope ${r.scope}` : ''}`);
    t.same(routes.sort(), [
      '10.123.21.0/24 dev eth0 scope link',
      '10.123.22.0/24 dev eth0 scope link',
      '10.123.23.0/24 via 10.123.21.9 dev eth0',
      'default via 10.123.21.1 dev eth0',
    ]);
    t.ok(spawnSync('ip', ['netns', 'exec', name, 'ping', '-c', '1', '-W', '3', '10.123.21.1']).status === 0, 'the container side reaches the bridge');

    // overlappingRoutes against ip -json route show table all
    const sub = parseSubnet('10.123.21.0/24');
    const oracle = ipJson(['-4', 'route', 'show', 'table', 'all'])
      .filter((r: any) => r.dst && r.dst !== 'default')
      .filter((r: any) => r.dst.startsWith('10.123.21.'))
      .map((r: any) => `${r.dst.includes('/') ? r.dst : `${r.dst}/32`} dev ${r.dev}`);
    t.same(overlappingRoutes(sub).sort(), [...new Set(oracle)].sort(), 'overlapping host routes, as ip lists them');
    t.ok(overlappingRoutes(sub).includes(`10.123.21.0/24 dev ${br}`));
    t.same(overlappingRoutes(sub, br), [], "none once the bridge's own are left out");
    t.same(overlappingRoutes(parseSubnet('10.123.22.0/24'), br), [], 'the routes inside the netns are not the host\'s');

    // link del of the host end takes the peer with it (on a worker thread, while this one goes on)
    const pending = deleteLinkAsync(host);
    t.equal(Netlink.host().getLink(br)?.ifname, br, 'the host socket serves other requests meanwhile');
    await pending;
    t.equal(spawnSync('ip', ['link', 'show', 'dev', host]).status !== 0, true, 'the host end is gone');
    t.same(ipJson(['-n', name, 'link', 'show']).map((l: any) => l.ifname), ['lo'], 'and with it the peer');
    t.doesNotThrow(() => deleteLink(host), 'deleting a missing link is fine');
    await t.resolves(deleteLinkAsync(host), 'on a worker thread too');
    await t.rejects(Netlink.deleteLinkAsync('eth0', '/run/netns/nosuch-nl'), { message: 'opening a netlink socket in network namespace /run/netns/nosuch-nl: opening the network namespace: ENOENT' });
    deleteLink(br);
    t.equal(spawnSync('ip', ['link', 'show', 'dev', br]).status !== 0, true, 'the bridge is gone');
    removeNetns(name);
    t.equal(readlinkSync('/proc/self/ns/net'), ourNetns, 'our own netns is unchanged');
  });

  t.test('errors name the operation, the thing and the errno', async (t) => {
    const name = nsName('err');
    const path = newNetns('err');
    const host = `nle${tag}`;
    const br = `nlx${tag}`;
    made.links.push(host, br);
    const nl = Netlink.host();
    nl.addVeth(host, { peer: { name: 'eth0', netns: path } });
    t.throws(() => nl.addVeth(host, { peer: { name: 'eth0', netns: path } }), {
      message: `creating veth ${host} (peer eth0 in ${path}): EEXIST`,
      code: 'EEXIST',
    });
    t.throws(() => nl.addVeth(`${host}b`, { peer: { name: 'eth0', netns: path } }), { message: new RegExp(`^creating veth ${host}b \\(peer eth0 in ${path}\\): EEXIST`) }, 'the peer name taken inside the netns');
    t.equal(spawnSync('ip', ['link', 'show', 'dev', `${host}b`]).status !== 0, true, 'and nothing is left of it');
    const missing = `/run/netns/${nsName('missing')}`;
    t.throws(() => nl.addVeth(`${host}c`, { peer: { name: 'eth0', netns: missing } }), { message: `creating veth ${host}c (peer eth0 in ${missing}): opening ${missing}: ENOENT` });
    t.throws(() => Netlink.open(missing), { message: `opening a netlink socket in network namespace ${missing}: opening the network namespace: ENOENT` });
    t.throws(() => linkInfo('eth0', missing), { message: new RegExp(`${missing}.*ENOENT`) });
    t.throws(() => Netlink.open('/etc/hostname'), { message: 'opening a netlink socket in network namespace /etc/hostname: entering the network namespace (setns): EINVAL' });
    t.throws(() => ensureBridge(host), { message: `link ${host} exists and is not a bridge (a veth): choose another bridge name` });
    t.throws(() => nl.addVeth(`${host}d`, { master: 999999, masterName: 'nosuchbr', peer: { name: `${host}p` } }), { message: new RegExp(`^creating veth ${host}d \\(peer ${host}p\\) on bridge nosuchbr: EINVAL`) }, 'a missing master');
    t.equal(spawnSync('ip', ['link', 'show', 'dev', `${host}d`]).status !== 0, true, 'and no veth is left of it');
    t.throws(() => ensureAddress(`${host}z`, '10.1.2.3/24'), { message: `adding 10.1.2.3/24 to ${host}z: there is no link ${host}z` });
    Netlink.in(path, (ns) => {
      const e = ns.getLink('eth0')!;
      t.throws(() => ns.addRoute({ dst: '10.9.0.0/16', gateway: '10.8.0.1', oif: e.index }, 'eth0'), {
        message: new RegExp(`^adding route 10\\.9\\.0\\.0/16 via 10\\.8\\.0\\.1 dev eth0 in ${path}: ENETUNREACH`),
      });
      ns.addAddress(e.index, '10.123.24.2/24', 'eth0');
      t.throws(() => ns.addAddress(e.index, '10.123.24.2/24', 'eth0'), { message: `adding address 10.123.24.2/24 to eth0 in ${path}: EEXIST` });
      t.throws(() => ns.setLink('nosuch0', { up: true }), { message: `setting link nosuch0 in ${path} up: ENODEV` });
    });
    t.throws(() => Netlink.in(path, (ns) => ns.deleteLink('lo')), { message: new RegExp(`^deleting link lo in ${path}: EOPNOTSUPP`) });
    await t.rejects(Netlink.deleteLinkAsync('lo', path), { message: new RegExp(`^deleting link lo in ${path}: EOPNOTSUPP`) }, 'errors from a worker thread too');
    t.throws(() => nl.addAddress(1, '10.1.2.3/33'), { message: 'invalid IPv4 address with prefix "10.1.2.3/33" (expected e.g. 10.88.0.5/16)' });
    t.throws(() => nl.getLink('a/b'), { message: 'invalid interface name "a/b"' });
    t.equal(nl.getLink(`${host}q`), undefined, 'a missing link is undefined, not an error');
    t.equal(nl.deleteLink(`${host}q`), false);
    const err = (() => {
      try {
        nl.addBridge(host);
      } catch (e) {
        return e;
      }
    })();
    t.ok(err instanceof NetlinkError, 'a NetlinkError');
    t.equal((err as NetlinkError).errno, 17);
    deleteLink(host);
    removeNetns(name);
    t.notOk(netnsList().includes(name));
    t.equal(readlinkSync('/proc/self/ns/net'), ourNetns, 'our own netns is unchanged');
  });

  t.test('an attach and a detach on a bridge network start no ip or nsenter', async (t) => {
    const tn = await testNetwork(t, 20);
    const ns = tn.netns('noip');
    const dir = mkdtempSync(join(tmpdir(), 'lxr-noip-'));
    const log = join(dir, 'log');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    for (const cmd of ['ip', 'nsenter']) {
      writeFileSync(join(dir, cmd), `#!/bin/sh\necho "${cmd} $*" >> ${log}\nexit 1\n`);
      chmodSync(join(dir, cmd), 0o755);
    }
    const savedPath = process.env.PATH;
    process.env.PATH = `${dir}:${savedPath}`;
    try {
      const a = await tn.attach({ containerId: `nl-noip-${process.pid}`, name: 'noip', netnsPath: ns });
      t.match(a.ip, /^10\.123\.20\.\d+$/);
      await detachContainer({ ...tn.opts, containerId: `nl-noip-${process.pid}`, netnsPath: ns });
      removeNetns(ns.split('/').pop()!);
      const ns2 = newNetns('noip2');
      removeNetns(ns2.split('/').pop()!);
    } finally {
      process.env.PATH = savedPath;
    }
    t.equal(existsSync(log) ? readFileSync(log, 'utf8') : '', '', 'no ip or nsenter ran');
    t.equal(readlinkSync('/proc/self/ns/net'), ourNetns, 'our own netns is unchanged');
  });

  t.test('nothing is left', async (t) => {
    t.same(netnsList().filter((n) => n.startsWith(`lxrt-nl-${process.pid}-`)), []);
    t.same(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`lxrt-nl-${process.pid}-`)), []);
    for (const l of made.links) t.equal(spawnSync('ip', ['link', 'show', 'dev', l]).status !== 0, true, `no link ${l}`);
    t.equal(readlinkSync('/proc/self/ns/net'), ourNetns);
  });
}
