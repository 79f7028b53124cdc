// -P/--publish-all and --expose (issue 22 item 7): every exposed port, the image's EXPOSE
// included, on a free host port; `lxr port` and `ps` show them, and the host reaches them.
// Also --dns and --add-host on a bridge network (the network writes those files there).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';

const haveIp = spawnSync('ip', ['-V']).status === 0;

if (!BUSYBOX || !haveIp) {
  t.plan(0, 'busybox and iproute2 are needed');
} else {
  const env: LxrEnv = lxrEnv(t);
  const suffix = String(process.pid % 10000);
  const bridge = `lxrpa${suffix}`;
  const confDir = mkdtempSync(join(tmpdir(), 'lxr-fe-net-'));
  env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: `10.214.${process.pid % 200}.0/24` };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(confDir, { recursive: true, force: true });
  });
  let image = '';
  t.before(async () => {
    image = await registryImage(t, 'test/expose:1', {
      cmd: ['sh', '-c', 'httpd -p 80 -h /www; httpd -f -p 8080 -h /www'],
      exposedPorts: ['80/tcp'],
      extraLayers: [{ 'www/': '', 'www/index.html': 'hello\n' }],
    });
  });

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
    for (const p of [p80, p8080]) {
      const body = await until(async () => {
        try {
          return await (await fetch(`http://127.0.0.1:${p}/`, { signal: AbortSignal.timeout(2000) })).text();
        } catch {
          return undefined;
        }
      }, 30000);
      t.equal(body, 'hello\n', `the host reaches host port ${p}`);
    }
    t.equal(lxr(env, ['port', 'web', '9999']).status, 125, 'a port not published');
    lxr(env, ['rm', '-f', 'web']);
    // without -P, EXPOSE publishes nothing
    const q = lxr(env, ['create', '--name', 'quiet', '--expose', '8080', image]);
    t.equal(q.status, 0, q.stderr);
    t.equal(lxr(env, ['port', 'quiet']).stdout, '', 'nothing published without -P');
    lxr(env, ['rm', '-f', 'quiet']);
  });

  t.test('--dns and --add-host on a bridge network', async (t) => {
    const r = lxr(env, ['run', '--rm', '--dns', '192.0.2.53', '--dns-search', 'corp.example', '--add-host', 'db.example:192.0.2.10', image, 'sh', '-c', 'cat /etc/resolv.conf /etc/hosts']);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^nameserver 192\.0\.2\.53$/m);
    t.notMatch(r.stdout, /^nameserver (?!192\.0\.2\.53)/m, 'only the given nameserver');
    t.match(r.stdout, /^search corp\.example$/m);
    t.match(r.stdout, /^192\.0\.2\.10\s+db\.example$/m);
    t.match(r.stdout, /^10\.214\.\d+\.\d+\s/m, 'the container\'s own entry is still there');
  });
}
