// Containers on a bridge network (lxr/network) through the front end: an address shown by ps,
// a published port reachable from the host on 127.0.0.1, container-to-container traffic by
// name, and a port already in use or a failure after attach leaving nothing behind (netns,
// attachment, lease). The bridge and subnet are the test's own, never lxr0.
import t from 'tap';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startRegistry, freePort, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { rulesMentioning } from './helpers/netns.js';
import { BUSYBOX, LXR, lxr, lxrEnv, mountsUnder, netnsLeft, pushTestImage, until, type LxrEnv } from './helpers/env.js';

const haveIp = spawnSync('ip', ['-V']).status === 0;

if (!BUSYBOX || !haveIp) {
  t.plan(0, 'busybox and iproute2 are needed');
} else {
  let reg: RegistryHandle;
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  const suffix = String(process.pid % 10000);
  const bridge = `lxrfe${suffix}`;
  const confDir = mkdtempSync(join(tmpdir(), 'lxr-fe-net-'));
  env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: `10.222.${process.pid % 200}.0/24` };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(confDir, { recursive: true, force: true });
  });
  t.before(async () => {
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/web:1', {
      cmd: ['httpd', '-f', '-p', '80', '-h', '/www'],
      extraLayers: [{ 'www/': '', 'www/index.html': 'hello from the container\n' }],
    });
  });
  t.teardown(() => reg?.stop());

  const ps = (): Array<Record<string, any>> => JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout);
  const ourNetns = () => netnsLeft(env);
  const attachments = () => {
    const d = join(env.netState, 'attachments', 'lxr');
    return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.json')) : [];
  };
  const veths = () => spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);

  t.test('a published port, an address in ps, names between containers', async (t) => {
    const port = await freePort();
    const a = lxr(env, ['create', '--name', 'web', '-p', `${port}:80`, image]);
    t.equal(a.status, 0, a.stderr);
    const [row] = ps();
    t.match(row!.IP, /^10\.222\.\d+\.\d+$/, 'ps shows the address');
    t.equal(row!.Ports, `0.0.0.0:${port}->80/tcp`);
    const body = await until(async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        return await r.text();
      } catch {
        return undefined;
      }
    }, 10000);
    t.equal(await body, 'hello from the container\n', 'the host reaches the published port on 127.0.0.1');
    const b = lxr(env, ['run', '--rm', '--name', 'client', image, 'sh', '-c', `wget -qO- http://${row!.IP}/ && wget -qO- http://web/ && cat /etc/resolv.conf >/dev/null && hostname`]);
    t.equal(b.status, 0, b.stderr);
    t.match(b.stdout, /^hello from the container\nhello from the container\n/, 'by address and by name');
    t.equal(veths().length, 1, 'the client\'s veth is gone after --rm');

    t.equal(lxr(env, ['stop', '-t', '1', 'web']).status, 0);
    t.same(attachments(), [], 'stop detaches');
    t.same(ourNetns(), [], 'and removes the netns');
    t.equal(lxr(env, ['start', 'web']).status, 0);
    t.equal(attachments().length, 1, 'start attaches again');
    t.equal(lxr(env, ['rm', '-f', 'web']).status, 0);
    t.same(attachments(), []);
    t.same(ourNetns(), []);
    t.same(veths(), [], 'no veth left on the bridge');
  });

  t.test('a host port in use, and a failure after attach, leave nothing behind', async (t) => {
    const port = await freePort();
    const srv: Server = createServer();
    await new Promise<void>((r) => srv.listen(port, '0.0.0.0', () => r()));
    t.teardown(() => srv.close());
    const r = lxr(env, ['create', '--name', 'clash', '-p', `${port}:80`, image]);
    t.not(r.status, 0);
    t.match(r.stderr, new RegExp(`${port}.*already in use`));
    t.same(ps(), []);
    for (const step of ['dns', 'spec', 'create']) {
      const f = lxr(env, ['create', '--name', `fail-${step}`, '-p', `${await freePort()}:80`, image], { env: { LXR_FAIL_AT: step } });
      t.not(f.status, 0, step);
      t.match(f.stderr, `injected failure at "${step}"`);
      t.same(ps(), [], `${step}: no container`);
      t.same(attachments(), [], `${step}: no attachment`);
      t.same(ourNetns(), [], `${step}: no netns`);
      t.same(veths(), [], `${step}: no veth`);
      t.same(mountsUnder(env.root), [], `${step}: no mount`);
    }
  });
  t.test('lxr killed with SIGKILL mid-run: lxr gc removes the network state it left', async (t) => {
    const port = await freePort();
    const child = spawn(process.execPath, [LXR, 'run', '--name', 'orphan', '-p', `${port}:80`, image, 'sleep', '300'], { env: env.env, stdio: 'ignore' });
    // running, not just attached: a container still being created keeps its network
    const ip = await until(() => ps().find((r) => r.Name === 'orphan' && r.State === 'running' && r.IP && r.IP !== '-')?.IP as string | undefined, 20000);
    t.ok(ip, 'the container runs with an address');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // the runtime still knows the container as running: ps says so, and gc keeps its network
    const row = ps().find((r) => r.Name === 'orphan')!;
    t.equal(row.State, 'running', 'ps asks the runtime: the orphan still runs');
    // then the container dies too, with nobody left to release its network
    process.kill(row.Pid, 'SIGKILL');
    t.ok(await until(() => ps().find((r) => r.Name === 'orphan')?.State === 'exited', 10000), 'then ps says exited');
    t.equal(attachments().length, 1, 'the attachment is left behind');
    t.equal(veths().length, 1, 'and its veth');
    const leases = () => JSON.stringify(readdirSync(join(env.netState, 'ipam')).map((n) => JSON.parse(readFileSync(join(env.netState, 'ipam', n, 'leases.json'), 'utf8')).leases));
    t.match(leases(), ip!, 'and its lease');
    t.equal(ourNetns().length, 1, 'and its netns');
    const gc = lxr(env, ['gc']);
    t.equal(gc.status, 0, gc.stderr);
    t.match(gc.stdout, /the network state of 1 containers/);
    t.same(attachments(), [], 'gc: no attachment');
    t.same(veths(), [], 'gc: no veth');
    t.notMatch(leases(), ip!, 'gc: the address is free again');
    t.same(ourNetns(), [], 'gc: no netns');
    t.same(rulesMentioning(`${port}`), [], 'gc: no port rule');
    t.equal(lxr(env, ['rm', '-f', 'orphan']).status, 0, 'rm -f removes the orphaned container');
  });
}
