// lxr's own CNI plugins run inside the lxr process (plugins/local.ts) when the CNI path
// resolves to lxr's plugin directory. They must answer exactly as their executables do,
// and a plugin of the same name placed earlier in the CNI path must win, as it would for
// any CNI runtime.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlugins } from './helpers/netns.js';
import { localPlugins, LXR_PLUGINS } from '../network/plugins/local.js';
import { runPlugin } from '../network/cni/skel.js';
import { addNetworkList } from '../network/cni/invoke.js';

const own = buildPlugins();
const tmp = mkdtempSync(join(tmpdir(), 'lxr-cni-local-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('lxr plugins resolve in-process only from lxr\'s own directory, first match wins', async (t) => {
  const local = localPlugins(own);
  t.equal(local('lxr-bridge', [own, '/usr/lib/cni']), LXR_PLUGINS['lxr-bridge']);
  t.equal(local('lxr-ipam', ['/nonexistent', own]), LXR_PLUGINS['lxr-ipam'], 'directories without it are skipped');
  t.equal(local('bridge', ['/usr/lib/cni', own]), undefined, 'other plugins are executed');
  writeFileSync(join(tmp, 'lxr-ipam'), '#!/bin/sh\nexit 1\n');
  chmodSync(join(tmp, 'lxr-ipam'), 0o755);
  t.equal(local('lxr-ipam', [tmp, own]), undefined, 'an lxr-ipam earlier in the path is executed instead');
  t.equal(localPlugins(undefined)('lxr-bridge', [own]), undefined, 'no own directory: nothing in-process');
});

t.test('in-process replies are byte for byte the executables\' replies', async (t) => {
  const data = join(tmp, 'ipam');
  const conf = { cniVersion: '1.1.0', name: 'localtest', type: 'lxr-ipam', ipam: { type: 'lxr-ipam', subnet: '10.125.0.0/24', dataDir: data } };
  const cases: [string, Record<string, string>, string][] = [
    ['VERSION', { CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' })],
    ['no command', {}, JSON.stringify(conf)],
    ['unknown command', { CNI_COMMAND: 'FROB' }, JSON.stringify(conf)],
    ['bad JSON', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' }, '{'],
    ['old version', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' }, JSON.stringify({ ...conf, cniVersion: '0.4.0' })],
    ['missing env', { CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' }, JSON.stringify(conf)],
    ['GC on 1.0.0', { CNI_COMMAND: 'GC' }, JSON.stringify({ ...conf, cniVersion: '1.0.0' })],
    ['no ipam', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, JSON.stringify({ ...conf, ipam: undefined })],
  ];
  for (const [what, env, stdin] of cases) {
    const exe = spawnSync(join(own, 'lxr-ipam'), [], { env: { PATH: process.env.PATH, ...env }, input: stdin, encoding: 'utf8' });
    const mine = await runPlugin(LXR_PLUGINS['lxr-ipam']!, { env, stdin });
    t.same({ status: mine.status, stdout: mine.stdout, stderr: mine.stderr ?? '' }, { status: exe.status, stdout: exe.stdout, stderr: exe.stderr }, what);
  }
  // and a real ADD/DEL, compared by their effect on the lease file
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c2', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' };
  const add = await runPlugin(LXR_PLUGINS['lxr-ipam']!, { env, stdin: JSON.stringify(conf) });
  t.equal(add.status, 0, add.stdout);
  t.match(JSON.parse(add.stdout), { cniVersion: '1.1.0', ips: [{ address: /^10\.125\.0\.\d+\/24$/, gateway: '10.125.0.1' }] });
  t.match(readFileSync(join(data, 'localtest', 'leases.json'), 'utf8'), /c2/, 'the lease is on disk, where the executable keeps it');
  const del = spawnSync(join(own, 'lxr-ipam'), [], { env: { PATH: process.env.PATH, ...env, CNI_COMMAND: 'DEL' }, input: JSON.stringify(conf), encoding: 'utf8' });
  t.equal(del.status, 0, 'the executable releases what the in-process ADD leased');
  t.notMatch(readFileSync(join(data, 'localtest', 'leases.json'), 'utf8'), /c2/);
});

t.test('a delegated plugin that is not lxr\'s own is executed, and its error is reported', async (t) => {
  // lxr-bridge in-process delegates to an IPAM plugin earlier in the path: a script that fails
  const log = join(tmp, 'ipam.log');
  writeFileSync(join(tmp, 'fake-ipam'), `#!/bin/sh\necho "$CNI_COMMAND $CNI_CONTAINERID" >> ${log}\necho '{"cniVersion":"1.1.0","code":11,"msg":"pool is closed"}'\nexit 1\n`);
  chmodSync(join(tmp, 'fake-ipam'), 0o755);
  const list = { cniVersion: '1.1.0', name: 'localfail', plugins: [{ type: 'lxr-bridge', bridge: 'lxrlocal0', ipam: { type: 'fake-ipam' } }] };
  await t.rejects(
    addNetworkList(list, { containerId: 'c3', netns: '/proc/self/ns/net', ifname: 'eth9' }, { path: [tmp, own], local: localPlugins(own) }),
    /network localfail: CNI plugin lxr-bridge ADD failed: fake-ipam: pool is closed \[CNI error 11\]/,
  );
  t.match(readFileSync(log, 'utf8'), /^ADD c3\n/, 'the fake IPAM was executed with the container\'s environment');
  spawnSync('ip', ['link', 'del', 'lxrlocal0']);
});
