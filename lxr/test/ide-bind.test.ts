// --ide with --network host serves code-server on 127.0.0.1 only (issue 11, item 6), or on
// --ide-bind ADDR with a warning when ADDR is not loopback. The listener test runs lxr in a
// network namespace made for it that stands in for the host, so that even the 0.0.0.0 case
// exposes nothing of the real host; it needs the tests' shared code-server install.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, until, type CliResult, type LxrEnv } from './helpers/env.js';
import { IDE_DIR, ideInstall, ideInstallSkipReason } from './helpers/ide.js';
import { parseIdeBind } from '../containers/options.js';
import { ideListenAddress } from '../containers/launch.js';
import { ideBindAddress } from '../containers/create.js';

t.test('the address code-server is served on', async (t) => {
  t.equal(ideListenAddress({ network: 'host' }), '127.0.0.1', '--network host: loopback by default');
  t.equal(ideListenAddress({ network: 'host', ideBind: '10.1.2.3' }), '10.1.2.3', '--network host with --ide-bind: that address');
  t.equal(ideListenAddress({ network: 'bridge' }), '0.0.0.0', 'in its own netns: every address, for the published port\'s DNAT');
  t.equal(ideBindAddress({}), '127.0.0.1', 'a bridge network publishes on 127.0.0.1');
  t.equal(ideBindAddress({ ideBind: '0.0.0.0' }), '0.0.0.0');
  t.same(parseIdeBind('127.0.0.1'), { address: '127.0.0.1' }, 'loopback: no warning');
  t.same(parseIdeBind('127.0.1.1'), { address: '127.0.1.1' });
  t.match(parseIdeBind('0.0.0.0').warning, /--ide-bind 0\.0\.0\.0 is not a loopback address: code-server will be reachable from other machines/);
  t.throws(() => parseIdeBind('localhost'), /--ide-bind localhost: expected an IPv4 address/);
});

const tools = ['ip', 'nsenter', 'ss'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
const skip = !BUSYBOX ? 'no busybox' : !tools ? 'needs iproute2 (ip, ss) and nsenter' : process.getuid?.() !== 0 ? 'needs root' : ideInstallSkipReason();

t.test('--ide --network host: code-server listens on 127.0.0.1 only, or where --ide-bind says', { skip }, async (t) => {
  t.setTimeout(20 * 60 * 1000);
  await ideInstall(t);
  const env: LxrEnv = lxrEnv(t);
  env.env = { ...env.env, LXR_IDE_DIR: IDE_DIR };
  const image = await registryImage(t, 'test/idebind:1', { cmd: ['sleep', '3600'], glibc: true, workdir: '/root' });
  const p = lxr(env, ['pull', image]);
  t.equal(p.status, 0, p.stderr);
  const host = `lxrib-${process.pid}`;
  const hostNs = `/run/netns/${host}`;
  t.equal(spawnSync('ip', ['netns', 'add', host]).status, 0, 'a network namespace standing in for the host');
  spawnSync('nsenter', [`--net=${hostNs}`, 'ip', 'link', 'set', 'lo', 'up']);
  const lxrH = (args: string[]): CliResult => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-ib-cli-'));
    const outFd = openSync(join(dir, 'out'), 'w+');
    const errFd = openSync(join(dir, 'err'), 'w+');
    try {
      const r = spawnSync('nsenter', [`--net=${hostNs}`, process.execPath, LXR, ...args], { stdio: ['ignore', outFd, errFd], timeout: 120000, env: env.env });
      return { status: r.status, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
    } finally {
      closeSync(outFd);
      closeSync(errFd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
  t.teardown(() => {
    lxrH(['rm', '-f', 'dev', 'dev2']);
    spawnSync('ip', ['netns', 'del', host]);
  });
  /** The TCP listeners on `port` in the stand-in host, as local addresses. */
  const listeners = (port: number) => spawnSync('nsenter', [`--net=${hostNs}`, 'ss', '-ltnH'], { encoding: 'utf8' }).stdout
    .split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter((a) => a.endsWith(`:${port}`));

  const port = 18443;
  const c = lxrH(['create', '--name', 'dev', '--ide', '--network', 'host', '--ide-port', String(port), '--pull', 'never', image]);
  t.equal(c.status, 0, c.stderr);
  t.notMatch(c.stderr, /warning/, 'no warning for the default');
  const up = await until(() => listeners(port).length > 0, 120000);
  t.ok(up, `code-server listens (log: ${lxrH(['logs', 'dev']).stdout.slice(-300)})`);
  t.same(listeners(port), [`127.0.0.1:${port}`], 'on 127.0.0.1 only');

  const c2 = lxrH(['create', '--name', 'dev2', '--ide', '--network', 'host', '--ide-port', String(port + 1), '--ide-bind', '0.0.0.0', '--pull', 'never', image]);
  t.equal(c2.status, 0, c2.stderr);
  t.match(c2.stderr, /lxr: warning: --ide-bind 0\.0\.0\.0 is not a loopback address/, 'a warning for a non-loopback address');
  t.ok(await until(() => listeners(port + 1).length > 0, 120000), 'the second code-server listens');
  t.same(listeners(port + 1), [`0.0.0.0:${port + 1}`], 'on the address --ide-bind gave');
});
