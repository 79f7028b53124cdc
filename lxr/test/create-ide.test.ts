// lxr create --ide: code-server (installed once on the host by lxr/ide, bind-mounted
// read-only) started in the container by its monitor and published on 127.0.0.1. The install
// is the tests' shared one (helpers/ide.ts), made first where it is missing. Skipped only where
// it cannot be made here (build tools missing) or with LXR_IDE_TEST=0.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { freePort, startRegistry, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { BUSYBOX, lxr, lxrEnv, mountsUnder, netnsLeft, pushTestImage, type LxrEnv } from './helpers/env.js';
import { IDE_DIR, ideInstall, ideInstallSkipReason } from './helpers/ide.js';

const skip = !BUSYBOX ? 'no busybox (apt-get install busybox-static)' : ideInstallSkipReason();

if (skip) {
  t.plan(0, skip);
} else {
  // the first install alone takes minutes
  t.setTimeout(20 * 60 * 1000);
  let reg: RegistryHandle;
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  env.env = { ...env.env, LXR_IDE_DIR: IDE_DIR };
  t.before(async () => {
    await ideInstall(t);
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/dev:1', { cmd: ['sleep', '3600'], glibc: true, workdir: '/root' });
  });
  t.teardown(() => reg?.stop());

  const bridgeEnv = { LXR_NET_CONF_DIR: `${env.root}-net.d`, LXR_NET_BRIDGE: `lxride${process.pid % 1000}`, LXR_NET_SUBNET: `10.218.${process.pid % 200}.0/24` };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridgeEnv.LXR_NET_BRIDGE]);
  });
  for (const network of ['host', 'bridge']) t.test(`--network ${network}: code-server answers on the published port; rm leaves nothing`, async (t) => {
    if (network === 'bridge') env.env = { ...env.env, ...bridgeEnv };
    const port = await freePort();
    const c = lxr(env, ['create', '--name', 'dev', '--ide', '--network', network, '--ide-port', String(port), image]);
    t.equal(c.status, 0, c.stderr);
    t.match(c.stderr, `http://127.0.0.1:${port}/`, 'prints the URL');
    const password = /password: (\S+)/.exec(c.stderr)?.[1];
    t.ok(password, 'and the password');
    let page: string | undefined;
    for (const end = Date.now() + 90000; !page && Date.now() < end; ) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/login`);
        if (r.status === 200) page = await r.text();
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    t.match(page, /code-server|password/i, `the login page is served (log: ${lxr(env, ['logs', 'dev']).stdout.slice(-500)})`);
    const login = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST', body: new URLSearchParams({ password: password! }), redirect: 'manual' });
    t.ok([302, 303].includes(login.status), `the printed password logs in (HTTP ${login.status})`);
    t.equal(lxr(env, ['rm', '-f', 'dev']).status, 0);
    t.same(mountsUnder(env.root), []);
    t.same(netnsLeft(env), []);
  });
}
