// A published port must not open the host's 127.0.0.1 to containers (issue 11, item 5;
// CVE-2020-8558 class). lxr-portmap sets route_localnet on the bridge so that 127.0.0.1:PORT
// reaches a container; a container with CAP_NET_RAW could then send its own frames to
// 127.0.0.1 on the host side of the bridge. The whole test runs in a network namespace made
// for it, which stands in for the host: lxr itself runs there (bridge, iptables rules,
// sysctls all in it), and the "host service" listens on that namespace's 127.0.0.1.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, until, type CliResult, type LxrEnv } from './helpers/env.js';
import { httpGet } from './helpers/netns.js';

const RAWSEND_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* rawsend IFNAME DSTMAC SRCIP DSTIP DPORT PAYLOAD: one UDP datagram built by hand and sent
   as a link-layer frame to DSTMAC, whatever the routing table says about DSTIP */
static unsigned short csum(const void *p, int n) {
  const unsigned short *w = p;
  unsigned long s = 0;
  for (; n > 1; n -= 2) s += *w++;
  if (n) s += *(const unsigned char *)w;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (unsigned short)~s;
}

int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: rawsend IFNAME DSTMAC SRCIP DSTIP DPORT PAYLOAD\n"); return 2; }
  int s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
  if (s < 0) { perror("socket(AF_PACKET)"); return 1; }
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_IP);
  to.sll_ifindex = if_nametoindex(argv[1]);
  to.sll_halen = 6;
  if (sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &to.sll_addr[0], &to.sll_addr[1], &to.sll_addr[2], &to.sll_addr[3], &to.sll_addr[4], &to.sll_addr[5]) != 6) { fprintf(stderr, "bad MAC %s\n", argv[2]); return 2; }
  size_t len = strlen(argv[6]);
  unsigned char pkt[1500];
  struct iphdr *ip = (struct iphdr *)pkt;
  struct udphdr *udp = (struct udphdr *)(pkt + sizeof *ip);
  memset(pkt, 0, sizeof *ip + sizeof *udp);
  memcpy(pkt + sizeof *ip + sizeof *udp, argv[6], len);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(sizeof *ip + sizeof *udp + len);
  ip->saddr = inet_addr(argv[3]);
  ip->daddr = inet_addr(argv[4]);
  ip->check = csum(ip, sizeof *ip);
  udp->source = htons(40000);
  udp->dest = htons(atoi(argv[5]));
  udp->len = htons(sizeof *udp + len);
  if (sendto(s, pkt, sizeof *ip + sizeof *udp + len, 0, (struct sockaddr *)&to, sizeof to) < 0) { perror("sendto"); return 1; }
  return 0;
}
`;

const tools = ['ip', 'nsenter', 'iptables', 'cc'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);

function buildRawsend(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ln-'));
  try {
    writeFileSync(join(dir, 'rawsend.c'), RAWSEND_C);
    const r = spawnSync('cc', ['-static', '-O1', '-o', join(dir, 'rawsend'), join(dir, 'rawsend.c')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cc -static rawsend.c: ${r.stderr}`);
    return readFileSync(join(dir, 'rawsend'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!BUSYBOX || !tools || process.getuid?.() !== 0) {
  t.plan(0, 'needs root, busybox, iproute2, util-linux nsenter, iptables and cc');
} else {
  const env: LxrEnv = lxrEnv(t);
  const host = `lxrln-${process.pid}`;
  const hostNs = `/run/netns/${host}`;
  const bridge = 'lxrln0';
  const SECRET = 5353;
  const CONTROL = 5354;
  env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: `${env.root}-net.d`, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: '10.219.7.0/24' };
  let image: string;

  /** lxr run in the stand-in host namespace; output through files (a monitor must not hold our pipes). */
  const lxrH = (args: string[]): CliResult => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-ln-cli-'));
    const outFd = openSync(join(dir, 'out'), 'w+');
    const errFd = openSync(join(dir, 'err'), 'w+');
    try {
      const r = spawnSync('nsenter', [`--net=${hostNs}`, process.execPath, LXR, ...args], { stdio: ['ignore', outFd, errFd], timeout: 60000, env: env.env });
      return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
    } finally {
      closeSync(outFd);
      closeSync(errFd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const inHost = (cmd: string[]) => spawnSync('nsenter', [`--net=${hostNs}`, ...cmd], { encoding: 'utf8' });
  const localnet = () => inHost(['cat', `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`]).stdout.trim();

  t.before(async () => {
    image = await registryImage(t, 'test/ln:1', {
      cmd: ['httpd', '-f', '-p', '80', '-h', '/www'],
      extraLayers: [{ 'www/': '', 'www/index.html': 'published\n' }],
      entryLayers: [[{ path: 'bin/rawsend', type: 'file', data: buildRawsend(), mode: 0o755 }]],
    });
    // the registry is on the real host's loopback: pull from there, run in the stand-in
    const p = lxr(env, ['pull', image]);
    if (p.status !== 0) throw new Error(p.stderr);
    const r = spawnSync('ip', ['netns', 'add', host], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${host}: ${r.stderr}`);
    inHost(['ip', 'link', 'set', 'lo', 'up']);
  });
  t.teardown(() => {
    lxrH(['rm', '-f', 'web', 'web2']);
    spawnSync('ip', ['netns', 'del', host]);
    rmSync(`${env.root}-net.d`, { recursive: true, force: true });
  });

  t.test('a container with NET_RAW cannot reach the host\'s 127.0.0.1 through a bridge with route_localnet; published ports still work', async (t) => {
    // the "host service" on 127.0.0.1, and a control listener on every address
    const code = `const d = require('dgram');
      for (const [name, port, addr] of [['secret', ${SECRET}, '127.0.0.1'], ['control', ${CONTROL}, '0.0.0.0']]) {
        const s = d.createSocket('udp4'); s.on('message', (m) => console.log(name + ' ' + m)); s.bind(port, addr);
      }
      console.log('ready');`;
    const listener = spawn('nsenter', [`--net=${hostNs}`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => {
      if (listener.exitCode === null) listener.kill('SIGKILL');
    });
    let heard = '';
    listener.stdout!.setEncoding('utf8').on('data', (d: string) => (heard += d));
    t.ok(await until(() => heard.includes('ready')), 'the listeners are up');

    const port = 18080;
    const c = lxrH(['run', '-d', '--name', 'web', '-p', `${port}:80`, '--cap-add', 'NET_RAW', '--pull', 'never', image]);
    t.equal(c.status, 0, c.stderr);
    t.equal(localnet(), '1', 'route_localnet is on while a port is published');
    t.match(inHost(['iptables', '-w', '-S', 'LXR-INPUT']).stdout, new RegExp(`-d 127\\.0\\.0\\.0/8 -i ${bridge} .*! --ctstate DNAT.* -j DROP`), 'with a rule that drops the rest of what the bridge sends to 127.0.0.0/8');
    t.equal(await until(() => httpGet('127.0.0.1', port, hostNs).includes('published') || undefined, 15000), true, 'the published port answers on the host\'s 127.0.0.1');

    const [info] = JSON.parse(lxrH(['inspect', 'web']).stdout);
    const ip = info.NetworkSettings.IPAddress as string;
    const link = JSON.parse(inHost(['ip', '-j', 'addr', 'show', 'dev', bridge]).stdout)[0];
    const mac = link.address as string;
    const gateway = link.addr_info.find((a: { family: string }) => a.family === 'inet').local as string;
    // frames for 127.0.0.1 first, then one for the gateway's own address along the same path:
    // once that one is heard, the earlier ones had their chance
    const send = lxrH(['exec', 'web', 'sh', '-c', [
      ...[1, 2, 3].map((i) => `rawsend eth0 ${mac} ${ip} 127.0.0.1 ${SECRET} leak${i}`),
      `rawsend eth0 ${mac} ${ip} ${gateway} ${CONTROL} marker`,
    ].join(' && ')]);
    t.equal(send.status, 0, `the container sent its frames: ${send.stderr}`);
    t.ok(await until(() => heard.includes('control marker')), 'the control frame reached the host side of the bridge');
    t.notMatch(heard, /secret/, 'nothing reached the service on the host\'s 127.0.0.1');

    const other = lxrH(['run', '-d', '--name', 'web2', '-p', `${port + 1}:80`, '--pull', 'never', image]);
    t.equal(other.status, 0, other.stderr);
    const rm = lxrH(['rm', '-f', 'web']);
    t.equal(rm.status, 0, rm.stderr);
    t.equal(localnet(), '1', 'route_localnet stays on while another container publishes a port on the bridge');
    t.equal(await until(() => httpGet('127.0.0.1', port + 1, hostNs).includes('published') || undefined, 15000), true, 'and that port still answers');
    const rm2 = lxrH(['rm', '-f', 'web2']);
    t.equal(rm2.status, 0, rm2.stderr);
    t.equal(localnet(), '0', 'route_localnet is off again once the last published port is gone');
    t.notMatch(inHost(['iptables', '-w', '-S']).stdout, /127\.0\.0\.0\/8.*DROP/, 'and its drop rule is gone too');
  });
}
