// lxr's CNI plugins spoken to directly, the way any CNI runtime would: environment
// variables, configuration on stdin, results and error objects on stdout (SPEC.md).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlugins } from './helpers/netns.js';

const dir = buildPlugins();
const data = mkdtempSync(join(tmpdir(), 'lxr-cni-test-'));
t.teardown(() => rmSync(data, { recursive: true, force: true }));

interface Out {
  status: number | null;
  json: Record<string, unknown> | undefined;
  stdout: string;
}

function cni(plugin: string, env: Record<string, string>, conf: unknown): Out {
  const r = spawnSync(join(dir, plugin), [], {
    env: { PATH: process.env.PATH, CNI_PATH: dir, ...env },
    input: typeof conf === 'string' ? conf : JSON.stringify(conf),
    encoding: 'utf8',
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, stdout: r.stdout };
}

const ipamConf = (extra: Record<string, unknown> = {}, version = '1.1.0') => ({
  cniVersion: version,
  name: 'ipamtest',
  type: 'lxr-bridge',
  ipam: { type: 'lxr-ipam', subnet: '10.124.0.0/24', rangeStart: '10.124.0.10', rangeEnd: '10.124.0.12', dataDir: data, ...extra },
});
const env = (cmd: string, id: string, ifname = 'eth0') => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: ifname });

t.test('VERSION', async (t) => {
  for (const p of ['lxr-bridge', 'lxr-ipam', 'lxr-portmap']) {
    const r = cni(p, { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' });
    t.equal(r.status, 0, `${p} VERSION exits 0`);
    t.same(r.json, { cniVersion: '1.0.0', supportedVersions: ['1.0.0', '1.1.0'] }, `${p} reports its versions`);
  }
});

t.test('lxr-ipam: ADD, repeated ADD, DEL, CHECK, STATUS, GC', async (t) => {
  const a = cni('lxr-ipam', env('ADD', 'c1'), ipamConf());
  t.equal(a.status, 0);
  t.same(a.json, { cniVersion: '1.1.0', ips: [{ address: '10.124.0.10/24', gateway: '10.124.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }, 'abbreviated result, no interfaces');
  t.same(cni('lxr-ipam', env('ADD', 'c1'), ipamConf()).json?.ips, a.json?.ips, 'same attachment, same address');
  t.same((cni('lxr-ipam', env('ADD', 'c1', 'eth1'), ipamConf()).json?.ips as { address: string }[])[0].address, '10.124.0.11/24', 'another interface, another address');
  t.equal(cni('lxr-ipam', env('CHECK', 'c1'), ipamConf()).status, 0, 'CHECK passes for a leased attachment');
  t.equal(cni('lxr-ipam', { CNI_COMMAND: 'STATUS' }, ipamConf()).status, 0, 'STATUS: one address left');
  t.equal(cni('lxr-ipam', env('ADD', 'c2'), ipamConf()).status, 0);
  const full = cni('lxr-ipam', { CNI_COMMAND: 'STATUS' }, ipamConf());
  t.equal(full.status, 1);
  t.match(full.json, { code: 50, msg: /exhausted/ }, 'STATUS says the pool is exhausted (code 50)');
  const none = cni('lxr-ipam', env('ADD', 'c3'), ipamConf());
  t.match(none.json, { cniVersion: '1.1.0', code: 101, msg: 'no free address left in 10.124.0.10-10.124.0.12' });

  t.equal(cni('lxr-ipam', env('DEL', 'c1'), ipamConf()).status, 0, 'DEL');
  t.equal(cni('lxr-ipam', env('DEL', 'c1'), ipamConf()).status, 0, 'DEL again succeeds');
  t.equal(cni('lxr-ipam', env('CHECK', 'c1'), ipamConf()).status, 1, 'CHECK fails once released');
  const again = cni('lxr-ipam', env('ADD', 'c3'), ipamConf());
  t.equal((again.json?.ips as { address: string }[])[0].address, '10.124.0.10/24', 'the released address is handed out again');

  const gc = cni('lxr-ipam', { CNI_COMMAND: 'GC' }, { ...ipamConf(), 'cni.dev/valid-attachments': [{ containerID: 'c3', ifname: 'eth0' }] });
  t.equal(gc.status, 0, 'GC');
  t.equal(cni('lxr-ipam', env('CHECK', 'c3'), ipamConf()).status, 0, 'GC kept the valid attachment');
  t.equal(cni('lxr-ipam', env('CHECK', 'c1', 'eth1'), ipamConf()).status, 1, 'GC released the others');
  t.equal(cni('lxr-ipam', env('CHECK', 'c2'), ipamConf()).status, 1);
});

t.test('errors are CNI error objects with the well-known codes', async (t) => {
  t.match(cni('lxr-ipam', env('ADD', 'e1'), '{not json').json, { code: 6, msg: /cannot decode/ });
  t.match(cni('lxr-ipam', env('ADD', 'e1'), ipamConf({}, '0.4.0')).json, { code: 1, msg: 'incompatible CNI version "0.4.0"' });
  t.match(cni('lxr-ipam', { CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' }, ipamConf()).json, { code: 4, msg: /CNI_CONTAINERID/ });
  t.match(cni('lxr-ipam', { CNI_COMMAND: 'STATUS' }, ipamConf({}, '1.0.0')).json, { code: 1, msg: /STATUS needs CNI version 1.1.0/ });
  t.match(cni('lxr-ipam', env('ADD', 'e1'), { ...ipamConf(), ipam: { type: 'lxr-ipam', dataDir: data } }).json, { code: 7, msg: /"subnet" is required/ });
  t.match(cni('lxr-ipam', env('ADD', 'e1'), ipamConf({ gateway: '10.9.9.9' })).json, { code: 7, msg: 'ipam: gateway 10.9.9.9 is outside subnet 10.124.0.0/24' });
  t.match(cni('lxr-ipam', { CNI_COMMAND: 'BOGUS' }, ipamConf()).json, { code: 4, msg: /unknown CNI_COMMAND/ });
  t.match(cni('lxr-bridge', env('ADD', 'e1'), { ...ipamConf(), bridge: 'lxrtnope' }).json, { code: 3, msg: 'network namespace /run/netns/none does not exist' });
  const noIpam = cni('lxr-bridge', env('ADD', 'e1'), { cniVersion: '1.1.0', name: 'x', type: 'lxr-bridge' });
  t.match(noIpam.json, { code: 7, msg: /no "ipam" section/ });
});

t.test('lxr-portmap: a port with a listener is refused (code 100); no prevResult is a config error', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '0.0.0.0', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const conf = {
    cniVersion: '1.1.0',
    name: 'pmtest',
    type: 'lxr-portmap',
    runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, protocol: 'tcp' }] },
    prevResult: { cniVersion: '1.1.0', interfaces: [{ name: 'lxrtnobr' }], ips: [{ address: '10.125.0.2/24', interface: 0 }] },
  };
  // spawnSync would block our listener's event loop: run the plugin asynchronously.
  const { spawn } = await import('node:child_process');
  const out = await new Promise<string>((resolve) => {
    const c = spawn(join(dir, 'lxr-portmap'), [], { env: { PATH: process.env.PATH, ...env('ADD', 'pm1') } });
    let s = '';
    c.stdout.on('data', (d) => (s += d));
    c.on('close', () => resolve(s));
    c.stdin.end(JSON.stringify(conf));
  });
  t.match(JSON.parse(out), { code: 100, msg: `host port 0.0.0.0:${port}/tcp is already in use` });
  const { prevResult, ...bare } = conf;
  void prevResult;
  t.match(cni('lxr-portmap', env('ADD', 'pm1'), bare).json, { code: 7, msg: /must be chained after an interface plugin/ });
  const noPorts = cni('lxr-portmap', env('ADD', 'pm2'), { ...conf, runtimeConfig: {} });
  t.same(noPorts.json, conf.prevResult, 'without mappings the prevResult passes through');
});
