// Attach containers (network namespaces made by the test) to a bridge network, both with
// lxr's own CNI plugins and with Debian's containernetworking-plugins (bridge, host-local,
// portmap, firewall): addresses, routes, ping through the bridge, published ports from the
// host on 127.0.0.1 and the host address, hairpin from containers, and a clean detach.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as net from '../network/manager/index.js';
import { echoAddressServerIn, freePort, hostAddress, httpGet, httpServerIn, inNetns, outsideHost, ping, rulesMentioning, testNetwork, udpAsk, udpEchoIn } from './helpers/netns.js';

function portsOnBridge(bridge: string): string[] {
  const r = spawnSync('ip', ['-json', 'link', 'show', 'master', bridge], { encoding: 'utf8' });
  return (JSON.parse(r.stdout || '[]') as { ifname: string }[]).map((l) => l.ifname);
}

/** every file under dir whose content or name mentions s (leases of both IPAMs) */
function leaseFilesMentioning(dir: string, s: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return out;
  }
  for (const e of entries) {
    try {
      if (readFileSync(join(dir, e), 'utf8').includes(s)) out.push(e);
    } catch {
      /* a directory */
    }
  }
  return out;
}

for (const [slot, plugins] of [
  [1, 'lxr'],
  [2, 'reference'],
] as const) {
  t.test(`attach, ping and published ports with ${plugins === 'lxr' ? "lxr's" : "Debian's"} plugins`, async (t: Test) => {
    if (plugins === 'reference' && spawnSync('test', ['-x', '/usr/lib/cni/bridge']).status !== 0) {
      t.fail('containernetworking-plugins is not installed (apt-get install -y containernetworking-plugins)');
      return;
    }
    const tn = await testNetwork(t, slot, plugins);
    const nsA = tn.netns('a');
    const nsB = tn.netns('b');
    const idA = `ctr-a-${process.pid}-${slot}`;
    const idB = `ctr-b-${process.pid}-${slot}`;
    const hostPort = await freePort();
    const localPort = await freePort();
    const udpPort = await freePort();
    const a = await tn.attach({
      containerId: idA, name: 'alpha', netnsPath: nsA, ports: [`${hostPort}:8080`, `127.0.0.1:${localPort}:8080/tcp`, `${udpPort}:5353/udp`],
    });
    const b = await tn.attach({ containerId: idB, name: 'beta', netnsPath: nsB });

    t.match(a.ip, new RegExp(`^10\\.123\\.${slot}\\.\\d+$`), 'address from the subnet');
    t.not(a.ip, b.ip, 'two containers, two addresses');
    t.equal(a.gateway, tn.gateway);
    t.equal(a.prefixLength, 24);
    t.equal(a.network, tn.name);

    // Inside A: eth0 with the address and the MAC reported, loopback up, default route via the gateway.
    const link = JSON.parse(inNetns(nsA, ['ip', '-json', 'addr', 'show']).stdout) as {
      ifname: string; address: string; flags: string[]; addr_info: { local: string; prefixlen: number }[];
    }[];
    const eth0 = link.find((l) => l.ifname === 'eth0');
    t.ok(eth0, 'eth0 exists in the netns');
    t.ok(eth0!.addr_info.some((x) => x.local === a.ip && x.prefixlen === 24), 'eth0 has the address');
    t.equal(eth0!.address, a.mac, 'MAC as reported');
    t.ok(link.find((l) => l.ifname === 'lo')!.flags.includes('UP'), 'loopback is up');
    t.match(inNetns(nsA, ['ip', 'route', 'show', 'default']).stdout, `default via ${tn.gateway} dev eth0`);

    t.ok(ping(nsB, a.ip), 'B pings A through the bridge');
    t.ok(ping(nsA, b.ip), 'A pings B');
    t.ok(ping(nsA, tn.gateway), 'A pings the gateway');
    await t.resolves(net.checkContainer({ ...tn.opts, containerId: idA }), 'CNI CHECK passes');

    await httpServerIn(t, nsA, 8080, 'alpha');
    t.equal(httpGet(a.ip, 8080, nsB), 'hello from alpha', 'B reaches A directly');
    t.equal(httpGet('127.0.0.1', hostPort), 'hello from alpha', 'published port on 127.0.0.1 from the host');
    t.equal(httpGet('127.0.0.1', localPort), 'hello from alpha', 'a port published on 127.0.0.1 only');
    await udpEchoIn(t, nsA, 5353);
    t.equal(udpAsk('127.0.0.1', udpPort, 'ping'), 'udp:ping', 'a published UDP port answers on 127.0.0.1');
    const hostIp = hostAddress();
    if (hostIp) {
      t.match(httpGet(hostIp, localPort), /^ERROR/, 'is not published on the host address');
      t.equal(httpGet(hostIp, hostPort), 'hello from alpha', `published port on the host address ${hostIp}`);
      t.equal(httpGet(hostIp, hostPort, nsB), 'hello from alpha', 'another container reaches it on the host address');
      t.equal(httpGet(hostIp, hostPort, nsA), 'hello from alpha', 'hairpin: the container reaches its own published port');
    } else t.comment('no global host address: host-address and hairpin checks skipped');

    // Outbound NAT: a host outside the network sees the host's address, not the container's.
    const outside = outsideHost(t, slot);
    await echoAddressServerIn(t, outside.netns, 8000);
    t.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '1', 'ip_forward is on');
    t.equal(httpGet(outside.address, 8000, nsB), outside.hostSide, 'outbound traffic is masqueraded');

    // The same port again is refused at attach time (published by A), and nothing is left behind.
    const nsC = tn.netns('c');
    const idC = `ctr-c-${process.pid}-${slot}`;
    const before = portsOnBridge(tn.bridge);
    await t.rejects(tn.attach({ containerId: idC, name: 'gamma', netnsPath: nsC, ports: [`${hostPort}:80`] }), {
      message: new RegExp(`host port 0\\.0\\.0\\.0:${hostPort}/tcp is already published by container ${idA}`),
    });
    t.same(portsOnBridge(tn.bridge), before, 'no veth left by the refused attach');
    t.same(rulesMentioning(idC), [], 'no rules left by the refused attach');
    t.same(leaseFilesMentioning(join(tn.opts.stateDir, 'ipam'), idC), [], 'no lease left by the refused attach');

    // Detach A: veth, rules and lease go; B stays reachable; a second detach is fine.
    t.not(rulesMentioning(idA).length, 0, "A's rules exist while it is attached");
    t.not(leaseFilesMentioning(join(tn.opts.stateDir, 'ipam'), idA).length, 0, "A's lease exists while it is attached");
    await net.detachContainer({ ...tn.opts, containerId: idA, netnsPath: nsA });
    t.equal(portsOnBridge(tn.bridge).length, before.length - 1, "A's veth is gone from the bridge");
    t.same(rulesMentioning(idA), [], "A's rules are gone");
    t.same(leaseFilesMentioning(join(tn.opts.stateDir, 'ipam'), idA), [], "A's lease is released");
    t.notOk(inNetns(nsA, ['ip', 'link', 'show', 'eth0']).status === 0, 'eth0 is gone from A');
    t.match(httpGet('127.0.0.1', hostPort), /^ERROR/, 'the published port is gone');
    await t.resolves(net.detachContainer({ ...tn.opts, containerId: idA, netnsPath: nsA }), 'detach is idempotent');
    t.ok(ping(nsB, tn.gateway), 'B is still connected');
  });
}

t.test('concurrent attaches get distinct addresses; leases survive a new process and are released on detach', async (t) => {
  const tn = await testNetwork(t, 3);
  const n = 8;
  const ns = Array.from({ length: n }, (_, i) => tn.netns(`p${i}`));
  const results = await Promise.all(ns.map((p, i) => tn.attach({ containerId: `par-${process.pid}-${i}`, name: `par${i}`, netnsPath: p })));
  const ips = results.map((r) => r.ip);
  t.equal(new Set(ips).size, n, `${n} distinct addresses: ${ips.join(' ')}`);
  t.notOk(ips.includes(tn.gateway), 'the gateway is never handed out');
  // Leases are on disk: a fresh process reads them.
  const r = spawnSync(process.execPath, ['-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(join(tn.opts.stateDir, 'ipam', tn.name, 'leases.json'))}, 'utf8'))`], { encoding: 'utf8' });
  const leases = JSON.parse(r.stdout).leases as Record<string, { containerId: string }>;
  t.same(Object.keys(leases).sort(), [...ips].sort(), 'the lease file holds exactly these addresses');
  await Promise.all(results.map((_, i) => net.detachContainer({ ...tn.opts, containerId: `par-${process.pid}-${i}` })));
  const after = JSON.parse(readFileSync(join(tn.opts.stateDir, 'ipam', tn.name, 'leases.json'), 'utf8')).leases;
  t.same(after, {}, 'all leases released');
});

t.test('a failing plugin later in the chain: everything the attach made is removed', async (t) => {
  const tn = await testNetwork(t, 4);
  // Same network, plus a plugin that does not exist at the end of the chain.
  const file = join(tn.opts.confDir, `${tn.name}.conflist`);
  const list = JSON.parse(readFileSync(file, 'utf8'));
  list.plugins.push({ type: 'lxr-no-such-plugin' });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, JSON.stringify(list));
  const nsA = tn.netns('a');
  const id = `fail-${process.pid}`;
  const hostPort = await freePort();
  await t.rejects(tn.attach({ containerId: id, name: 'failing', netnsPath: nsA, ports: [`${hostPort}:80`] }), {
    message: /CNI plugin lxr-no-such-plugin not found/,
  });
  t.same(portsOnBridge(tn.bridge), [], 'no veth on the bridge');
  t.notOk(inNetns(nsA, ['ip', 'link', 'show', 'eth0']).status === 0, 'no eth0 in the netns');
  t.same(rulesMentioning(id), [], 'no rules (the port mapping was added, then removed)');
  t.same(leaseFilesMentioning(join(tn.opts.stateDir, 'ipam'), id), [], 'no lease');
  t.same(net.listAttachments({ ...tn.opts, containerId: id }), [], 'no attachment record');
});

t.test('a port taken by a host listener is refused at attach time', async (t) => {
  const tn = await testNetwork(t, 5);
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const nsA = tn.netns('a');
  await t.rejects(tn.attach({ containerId: `busy-${process.pid}`, name: 'busy', netnsPath: nsA, ports: [`${port}:80`] }), {
    message: `host port 0.0.0.0:${port}/tcp is already in use`,
  });
  t.same(portsOnBridge(tn.bridge), [], 'nothing was attached');
  // UDP on the same number is a different port.
  const a = await tn.attach({ containerId: `udp-${process.pid}`, name: 'udp', netnsPath: nsA, ports: [`${port}:53/udp`] });
  t.match(a.ip, /^10\.123\.5\./);
});

t.test('two concurrent attaches publishing the same host port: exactly one wins', async (t) => {
  const tn = await testNetwork(t, 9);
  const port = await freePort();
  const ids = [`race-a-${process.pid}`, `race-b-${process.pid}`];
  const ns = [tn.netns('ra'), tn.netns('rb')];
  const results = await Promise.allSettled(ids.map((id, i) => tn.attach({ containerId: id, name: `r${i}`, netnsPath: ns[i], ports: [`${port}:80`] })));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(ok.length, 1, 'one attach succeeds');
  t.equal(failed.length, 1, 'the other fails');
  // Either the mapping check (under the rules' lock) or the two bind probes colliding says no.
  t.match(failed[0]?.reason?.message, new RegExp(`host port 0\\.0\\.0\\.0:${port}/tcp is already (published by container race-|in use)`));
  const loser = ids[results.indexOf(failed[0])];
  t.same(rulesMentioning(loser), [], "the loser's rules are gone");
  t.equal(portsOnBridge(tn.bridge).length, 1, 'one veth on the bridge');
  t.equal(rulesMentioning(`--dport ${port} `).length, 1, 'one DNAT rule for the port');
});
