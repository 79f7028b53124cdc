// Test helpers for lxr/network: a private network per test (test-only bridge and subnet,
// temp conf/state dirs), named netns, HTTP servers inside a netns, HTTP GETs from the host
// or from a netns, ping. Everything is undone in teardown.
import type { Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as net from '../../network/manager/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let built = false;
/** Bundle lxr's CNI plugins into dist/cni (once per test process). */
export function buildPlugins(): string {
  if (!built) {
    const r = spawnSync(process.execPath, [join(root, 'lxr', 'network', 'build.mjs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the CNI plugins failed: ${r.stderr}`);
    built = true;
  }
  return join(root, 'dist', 'cni');
}

export interface TestNetwork {
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  opts: { confDir: string; stateDir: string; cniPath: string[] };
  /** create a netns for the test (removed in teardown) */
  netns(label: string): string;
  /** attach (and detach in teardown) */
  attach(o: Omit<net.AttachOptions, 'confDir' | 'stateDir' | 'cniPath' | 'network'>): Promise<net.AttachResult>;
}

/**
 * A network for one test: bridge lxrt<slot><pid%1000>, subnet 10.123.<slot>.0/24 (each test
 * file uses its own slots, so files running in parallel do not collide).
 */
export async function testNetwork(t: Test, slot: number, plugins: 'lxr' | 'reference' = 'lxr'): Promise<TestNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-net-test-'));
  const opts = { confDir: join(dir, 'net.d'), stateDir: join(dir, 'state'), cniPath: [buildPlugins(), '/usr/lib/cni'] };
  const name = `t${slot}`;
  const bridge = `lxrt${slot}p${process.pid % 10000}`;
  const subnet = `10.123.${slot}.0/24`;
  const netnsNames: string[] = [];
  const attached: { containerId: string; netnsPath: string }[] = [];
  const info = await net.createNetwork({ ...opts, name, bridge, subnet, plugins });
  t.teardown(async () => {
    for (const a of attached) await net.detachContainer({ ...opts, containerId: a.containerId, netnsPath: a.netnsPath }).catch((e) => console.error(`teardown: detaching ${a.containerId} failed: ${(e as Error).message}`));
    for (const n of netnsNames) net.removeNetns(n);
    await net.removeNetwork({ ...opts, name }).catch(() => undefined);
    spawnSync('ip', ['link', 'del', 'dev', bridge]);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    name,
    bridge,
    subnet,
    gateway: info.gateway!,
    opts,
    netns(label: string) {
      const n = `lxrt-${process.pid}-${slot}-${label}`;
      netnsNames.push(n);
      return net.createNetns(n);
    },
    async attach(o) {
      attached.push({ containerId: o.containerId, netnsPath: o.netnsPath });
      return net.attachContainer({ ...opts, network: name, ...o });
    },
  };
}

/** Run a command inside a netns (by path) and return its output. */
export function inNetns(netnsPath: string, cmd: string[], input?: string) {
  return spawnSync('nsenter', [`--net=${netnsPath}`, ...cmd], { encoding: 'utf8', input, timeout: 30_000 });
}

export function ping(netnsPath: string, ip: string): boolean {
  return inNetns(netnsPath, ['ping', '-c', '1', '-W', '3', ip]).status === 0;
}

/** A Node HTTP server in a netns whose handler is the JS expression `handler` (killed in teardown). */
async function serveIn(t: Test, netnsPath: string, port: number, handler: string): Promise<ChildProcess> {
  const code = `require('http').createServer(${handler}).listen(${port}, '0.0.0.0', () => console.log('ready'))`;
  const child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`HTTP server in ${netnsPath} exited with ${c}`)));
  });
  return child;
}

/** An HTTP server in a netns answering "hello from <label>" (killed in teardown). */
export function httpServerIn(t: Test, netnsPath: string, port: number, label: string): Promise<ChildProcess> {
  return serveIn(t, netnsPath, port, `(q, s) => s.end('hello from ${label}')`);
}

/** GET http://host:port/ from the host (no netns) or from inside a netns; the body, or "ERROR: ..." */
export function httpGet(host: string, port: number, netnsPath?: string): string {
  const code = `require('http').get({host:'${host}',port:${port},path:'/',timeout:5000},(r)=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>process.stdout.write(b))}).on('error',e=>process.stdout.write('ERROR: '+e.message)).on('timeout',function(){this.destroy(new Error('timeout'))})`;
  const cmd = [process.execPath, '-e', code];
  const r = netnsPath ? inNetns(netnsPath, cmd) : spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 30_000 });
  return r.stdout || `ERROR: exit ${r.status} ${r.stderr}`;
}

/** A TCP port that was free a moment ago on the host. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '0.0.0.0', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** The host's first global IPv4 address outside lxr's test bridges (for hairpin tests). */
export function hostAddress(): string | undefined {
  const r = spawnSync('ip', ['-4', '-json', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
  const links = JSON.parse(r.stdout || '[]') as { ifname: string; addr_info: { local: string }[] }[];
  for (const l of links) if (!l.ifname.startsWith('lxr') && l.addr_info[0]) return l.addr_info[0].local;
  return undefined;
}

/** The nat and filter rules (iptables -S) mentioning `s`. */
export function rulesMentioning(s: string): string[] {
  const out: string[] = [];
  for (const table of ['nat', 'filter']) {
    const r = spawnSync('iptables', ['-w', '-t', table, '-S'], { encoding: 'utf8' });
    out.push(...r.stdout.split('\n').filter((l) => l.includes(s)));
  }
  return out;
}

/**
 * A stand-in for "the outside world": a netns connected to the host by its own veth
 * (10.126.<slot>.1 on the host, 10.126.<slot>.2 inside), reachable from containers only
 * through the host's routing and NAT. Removed in teardown.
 */
export function outsideHost(t: Test, slot: number): { netns: string; hostSide: string; address: string } {
  const name = `lxrt-${process.pid}-${slot}-ext`;
  const hostIf = `lxrte${slot}p${process.pid % 10000}`;
  const must = (args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', 'dev', hostIf]);
    spawnSync('ip', ['netns', 'del', name]);
  });
  must(['netns', 'add', name]);
  must(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  must(['addr', 'add', `10.126.${slot}.1/30`, 'dev', hostIf]);
  must(['link', 'set', 'dev', hostIf, 'up']);
  must(['-n', name, 'addr', 'add', `10.126.${slot}.2/30`, 'dev', 'eth0']);
  must(['-n', name, 'link', 'set', 'dev', 'eth0', 'up']);
  must(['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
  return { netns: `/run/netns/${name}`, hostSide: `10.126.${slot}.1`, address: `10.126.${slot}.2` };
}

/** An HTTP server in a netns that answers with the client's address. */
export async function echoAddressServerIn(t: Test, netnsPath: string, port: number): Promise<void> {
  await serveIn(t, netnsPath, port, `(q, s) => s.end(q.socket.remoteAddress.replace('::ffff:', ''))`);
}

/** A UDP server in a netns that answers every datagram with "udp:<datagram>" (killed in teardown). */
export async function udpEchoIn(t: Test, netnsPath: string, port: number): Promise<void> {
  const code = `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send('udp:' + m, r.port, r.address)); s.bind(${port}, '0.0.0.0', () => console.log('ready'))`;
  const child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`UDP server in ${netnsPath} exited with ${c}`)));
  });
}

/** Send one datagram from the host and return the answer, or "ERROR: ..." (gives up after 5 s). */
export function udpAsk(host: string, port: number, text: string): string {
  const code = `const s = require('dgram').createSocket('udp4'); const tm = setTimeout(() => { process.stdout.write('ERROR: no answer'); process.exit(0) }, 5000); s.on('message', (m) => { clearTimeout(tm); process.stdout.write(String(m)); s.close() }); s.send(${JSON.stringify(text)}, ${port}, '${host}')`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
  return r.stdout || `ERROR: exit ${r.status} ${r.stderr}`;
}
