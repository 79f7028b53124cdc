// -P/--publish-all and --expose (issue 22 item 7): every exposed port, the image's EXPOSE
// included, on a free host port; `lxr port` and `ps` show them, and the host reaches them.
// Also --dns and --add-host on a bridge network (the network writes those files there).
// The same -P run against podman (runc) in the same run, where podman is installed.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';

const haveIp = spawnSync('ip', ['-V']).status === 0;

if (!BUSYBOX || !haveIp) {
  t.plan(0, 'busybox and iproute2 are needed');
} else {
  const env: LxrEnv = lxrEnv(t);
  const suffix = String(process.pid % 10000);
  const bridge = `lxrpa${suffix}`;
  const confDir = mkdtempSync(join(tmpdir(), 'lxr-fe-net-'));
  env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: `10.220.${process.pid % 200}.0/24` };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(confDir, { recursive: true, force: true });
  });
  let image = '';
  let pm: Podman | undefined;
  let noPodman = '';
  // podman's own bridge network, in its throw-away config dir, with a name and subnet of this run's
  const pmNet = `pmpa${suffix}`;
  let pmBridge = '';
  const pmGateway = `10.221.${process.pid % 200}.1`;
  t.before(async () => {
    image = await registryImage(t, 'test/expose:1', {
      cmd: ['sh', '-c', 'httpd -p 80 -h /www; httpd -f -p 8080 -h /www'],
      exposedPorts: ['80/tcp'],
      extraLayers: [{ 'www/': '', 'www/index.html': 'hello\n' }],
    });
    if (process.env.LXR_TEST_NO_PODMAN) noPodman = 'LXR_TEST_NO_PODMAN is set';
    else if (!which('podman') || !which('runc')) noPodman = 'podman and runc are needed for the comparison';
    else {
      pm = await startPodman();
      const r = pm.podman('runc', ['pull', '-q', '--tls-verify=false', image]);
      if (r.status !== 0) throw new Error(`podman pull: ${r.stderr}`);
      const n = pm.podman('runc', ['network', 'create', '--disable-dns', '--subnet', `10.221.${process.pid % 200}.0/24`, pmNet]);
      if (n.status !== 0) throw new Error(`podman network create: ${n.stderr}`);
      // podman 4.3 names the bridge itself (podmanN): removed with the network at the end
      pmBridge = pm.podman('runc', ['network', 'inspect', '--format', '{{.NetworkInterface}}', pmNet]).stdout.trim();
    }
  });
  t.teardown(async () => {
    if (!pm) return;
    pm.podman('runc', ['rm', '-a', '-f', '-t', '0']);
    pm.podman('runc', ['network', 'rm', '-f', pmNet]);
    // netavark removes it with the last container; if not, only ours: the one with our subnet's address
    const addr = spawnSync('ip', ['-o', '-4', 'addr', 'show', 'dev', pmBridge || 'none'], { encoding: 'utf8' }).stdout ?? '';
    if (/^podman\d+$/.test(pmBridge) && addr.includes(` ${pmGateway}/`)) spawnSync('ip', ['link', 'del', pmBridge], { stdio: 'ignore' });
    await pm.stop();
  });

  /** GET / through 127.0.0.1:port, retried until the server answers (or 30 s). */
  const fetchVia = (port: number) =>
    until(async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();
      } catch {
        return undefined;
      }
    }, 30000);

  t.test('-P publishes the image\'s EXPOSE and --expose on free host ports', async (t) => {
    const c = lxr(env, ['run', '-d', '--name', 'web', '-P', '--expose', '8080', image]);
    t.equal(c.status, 0, c.stderr);
    const port = lxr(env, ['port', 'web']);
    t.equal(port.status, 0, port.stderr);
    const m = /^80\/tcp -> 0\.0\.0\.0:(\d+)\n8080\/tcp -> 0\.0\.0\.0:(\d+)\n$/.exec(port.stdout);
    t.ok(m, `lxr port: ${port.stdout}`);
    const [p80, p8080] = [Number(m?.[1]), Number(m?.[2])];
    t.not(p80, p8080);
    t.equal(lxr(env, ['port', 'web', '8080']).stdout, `0.0.0.0:${p8080}\n`, 'lxr port NAME PORT');
    const rows = JSON.parse(lxr(env, ['ps', '--format', 'json']).stdout) as { Ports: string }[];
    t.equal(rows[0]?.Ports, `0.0.0.0:${p80}->80/tcp, 0.0.0.0:${p8080}->8080/tcp`, 'ps shows them');
    for (const p of [p80, p8080]) t.equal(await fetchVia(p), 'hello\n', `the host reaches host port ${p}`);
    t.equal(lxr(env, ['port', 'web', '9999']).status, 125, 'a port not published');
    lxr(env, ['rm', '-f', 'web']);
    // without -P, EXPOSE publishes nothing
    const q = lxr(env, ['create', '--name', 'quiet', '--expose', '8080', image]);
    t.equal(q.status, 0, q.stderr);
    t.equal(lxr(env, ['port', 'quiet']).stdout, '', 'nothing published without -P');
    lxr(env, ['rm', '-f', 'quiet']);
  });

  t.test('-P: the same as podman', async (t) => {
    if (!pm) return t.plan(0, noPodman);
    const engines: [string, (args: string[]) => { status: number | null; stdout: string; stderr: string }][] = [
      ['lxr', (args) => lxr(env, args)],
      ['podman', (args) => pm!.podman('runc', args)],
    ];
    const shapes: string[] = [];
    for (const [name, run] of engines) {
      const net = name === 'podman' ? ['--network', pmNet] : [];
      const c = run(['run', '-d', '--name', 'pa', ...net, '-P', '--expose', '8080', '--expose', '9000-9001/udp', image]);
      t.equal(c.status, 0, `${name} run -P: ${c.stderr}`);
      const port = run(['port', 'pa']);
      t.equal(port.status, 0, `${name} port: ${port.stderr}`);
      // every exposed port, the image's and --expose's (a range too), each on a host port of its own
      const rows = port.stdout.split('\n').filter((l) => l !== '').sort();
      const m = rows.map((l) => /^(\d+\/(?:tcp|udp)) -> 0\.0\.0\.0:(\d+)$/.exec(l));
      t.ok(m.every((x) => x), `${name} port: CONTAINER/PROTO -> 0.0.0.0:HOSTPORT lines (${JSON.stringify(port.stdout)})`);
      t.same(m.map((x) => x?.[1]), ['80/tcp', '8080/tcp', '9000/udp', '9001/udp'], `${name}: every exposed port is published`);
      const hostPorts = m.map((x) => Number(x?.[2]));
      t.equal(new Set(hostPorts).size, hostPorts.length, `${name}: each on its own host port`);
      t.ok(hostPorts.every((p) => p >= 1024), `${name}: free ports, not privileged ones (${hostPorts})`);
      // podman prints them in no fixed order (a map's), lxr by port: compared as sets of lines
      shapes.push(rows.map((l) => l.replace(/:\d+$/, ':PORT')).join('\n'));
      const one = run(['port', 'pa', '8080']);
      t.equal(one.stdout, `0.0.0.0:${hostPorts[1]}\n`, `${name} port NAME 8080`);
      for (const p of hostPorts.slice(0, 2)) t.equal(await fetchVia(p), 'hello\n', `${name}: 127.0.0.1:${p} reaches the container's server`);
      run(['rm', '-f', 'pa']);
    }
    t.equal(shapes[0], shapes[1], 'lxr port and podman port: the same lines, host ports aside');
  });

  t.test('--dns and --add-host on a bridge network', async (t) => {
    const r = lxr(env, ['run', '--rm', '--dns', '192.0.2.53', '--dns-search', 'corp.example', '--add-host', 'db.example:192.0.2.10', image, 'sh', '-c', 'cat /etc/resolv.conf /etc/hosts']);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^nameserver 192\.0\.2\.53$/m);
    t.notMatch(r.stdout, /^nameserver (?!192\.0\.2\.53)/m, 'only the given nameserver');
    t.match(r.stdout, /^search corp\.example$/m);
    t.match(r.stdout, /^192\.0\.2\.10\s+db\.example$/m);
    t.match(r.stdout, /^10\.220\.\d+\.\d+\s/m, 'the container\'s own entry is still there');
  });
}
