// --ide and the image's PATH: code-server resolves its terminals' environment through a login
// shell, and a Debian-style /etc/profile sets PATH outright. lxr patches /etc/profile in the
// container's own upper layer (never the shared snapshot) so that the inherited PATH is kept,
// for root and for a non-root user; code-server's settings and extensions live in a named
// volume that a re-created container finds again; a dev container opens at its workspace.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRegistry, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { BUSYBOX, lxr, lxrEnv, pushTestImage, sleep, type LxrEnv } from './helpers/env.js';
import { IDE_DIR, ideInstall, ideInstallSkipReason } from './helpers/ide.js';
import { keepPathProfile } from '../ide/profile.js';

const DEBIAN_PROFILE = [
  '# /etc/profile: system-wide .profile file for the Bourne shell (sh(1))',
  'if [ "$(id -u)" -eq 0 ]; then',
  '  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
  'else',
  '  PATH="/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"',
  'fi',
  'export PATH',
  '',
].join('\n');

t.test('the /etc/profile edit keeps an inherited PATH (as the Dev Containers CLI\'s)', async (t) => {
  const out = keepPathProfile(DEBIAN_PROFILE);
  t.match(out, '  PATH=${PATH:-"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}\n');
  t.match(out, '  PATH=${PATH:-"/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"}\n');
  t.equal(keepPathProfile(out), out, 'a second edit changes nothing');
  t.equal(keepPathProfile('PATH="$PATH:/x"\n'), 'PATH="$PATH:/x"\n', 'an assignment that uses $PATH is left alone');
  const sh = spawnSync('sh', ['-c', `PATH=/opt/tool/bin:/usr/bin:/bin\n${out}\necho "$PATH"`], { encoding: 'utf8' });
  t.equal(sh.stdout, '/opt/tool/bin:/usr/bin:/bin\n');
});

const skip = !BUSYBOX ? 'no busybox' : ideInstallSkipReason();
if (skip) {
  t.test('--ide in a container', { skip }, async () => {});
} else {
  t.setTimeout(20 * 60 * 1000);
  let reg: RegistryHandle;
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  env.env = { ...env.env, LXR_IDE_DIR: IDE_DIR };
  t.before(async () => {
    await ideInstall(t);
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/ideprofile:1', {
      cmd: ['sleep', '3600'], glibc: true, workdir: '/srv/proj',
      env: ['PATH=/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      entryLayers: [[
        { path: 'etc/profile', type: 'file', data: DEBIAN_PROFILE },
        { path: 'opt/', type: 'dir' }, { path: 'opt/tool/', type: 'dir' }, { path: 'opt/tool/bin/', type: 'dir' },
        { path: 'opt/tool/bin/mytool', type: 'file', data: '#!/bin/sh\necho mytool-ok\n', mode: 0o755 },
        { path: 'srv/', type: 'dir' }, { path: 'srv/proj/', type: 'dir', mode: 0o777 },
        { path: 'home/dev/', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
        ...['sed', 'uname', '[', 'rm', 'chmod', 'cut', 'tr', 'awk', 'which'].map((a) => ({ path: `bin/${a}`, type: 'symlink' as const, link: 'busybox' })),
      ]],
    });
  });
  t.teardown(() => reg?.stop());

  const codeServerUp = async (port: number): Promise<boolean> => {
    for (const end = Date.now() + 90000; Date.now() < end; await sleep(300)) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/login`)).status === 200) return true;
      } catch {
        /* not listening yet */
      }
    }
    return false;
  };

  for (const user of ['root', 'dev']) t.test(`--ide as ${user}: a login shell keeps the image's PATH; settings survive the container`, async (t) => {
    const port = await freePort();
    const name = `ide-${user}`;
    const c = lxr(env, ['create', '--name', name, '--ide', '--network', 'host', '--ide-port', String(port), '-u', user, image], { timeout: 120000 });
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    const login = lxr(env, ['exec', name, 'sh', '-lc', 'echo "$PATH"; mytool']);
    t.equal(login.stdout, '/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nmytool-ok\n', 'a login shell (what code-server resolves its terminals\' env with) keeps the image\'s PATH');
    const upper = join(env.root, 'containers', id, 'upper', 'etc', 'profile');
    t.ok(existsSync(upper), 'the patched /etc/profile is in the container\'s upper layer');
    const [info] = JSON.parse(lxr(env, ['inspect', name]).stdout);
    for (const l of info.Rootfs.Layers as string[]) {
      const p = join(l, 'etc', 'profile');
      if (existsSync(p)) t.equal(readFileSync(p, 'utf8'), DEBIAN_PROFILE, 'the shared snapshot is untouched');
    }
    t.ok(await codeServerUp(port), `code-server answers (log: ${lxr(env, ['logs', name]).stdout.slice(-1500)})`);
    // code-server runs as the container's user (HOME is the user's), keeps its data in the volume
    t.match(lxr(env, ['logs', name]).stdout, `Using user-data-dir /opt/lxr-ide/data/user-data`);
    t.match(lxr(env, ['logs', name]).stdout, `Using config file ${user === 'root' ? '/root' : '/home/dev'}/.config/code-server/config.yaml`);
    const uid = user === 'root' ? 0 : 1000;
    const vol = join(env.root, 'volumes', `lxr-ide-data-${uid}`, '_data');
    t.equal(statSync(vol).uid, uid, 'the data volume belongs to the user');
    t.equal(lxr(env, ['exec', name, 'sh', '-c', 'mkdir -p /opt/lxr-ide/data/user-data/User && echo \'{"editor.fontSize": 17}\' > /opt/lxr-ide/data/user-data/User/settings.json']).status, 0);
    t.equal(lxr(env, ['rm', '-f', name]).status, 0);
    const again = lxr(env, ['create', '--name', name, '--ide', '--network', 'host', '--ide-port', String(port), '-u', user, image], { timeout: 120000 });
    t.equal(again.status, 0, again.stderr);
    t.equal(lxr(env, ['exec', name, 'cat', '/opt/lxr-ide/data/user-data/User/settings.json']).stdout, '{"editor.fontSize": 17}\n', 'a re-created container finds the settings');
    t.equal(lxr(env, ['rm', '-f', name]).status, 0);
  });

  t.test('lxr up --ide: code-server at the dev container\'s workspace folder, as remoteUser', async (t) => {
    const ws = mkdtempSync(join(tmpdir(), 'lxr-upide-'));
    t.teardown(() => rmSync(ws, { recursive: true, force: true }));
    mkdirSync(join(ws, '.devcontainer'));
    writeFileSync(join(ws, '.devcontainer', 'devcontainer.json'), JSON.stringify({ image, remoteUser: 'dev' }));
    const port = await freePort();
    const r = lxr(env, ['up', '--ide', '--ide-port', String(port), ws], { timeout: 180000, env: { LXR_NETWORK: 'host', HOME: ws } });
    t.equal(r.status, 0, r.stderr.slice(-2000));
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    t.equal(res.outcome, 'success');
    const password = /password: (\S+)/.exec(r.stderr)?.[1];
    t.ok(password, 'prints the password');
    t.match(r.stderr, `http://127.0.0.1:${port}/`);
    t.ok(await codeServerUp(port), `code-server answers (log: ${lxr(env, ['logs', res.containerId]).stdout.slice(-1500)})`);
    t.match(lxr(env, ['logs', res.containerId]).stdout, 'Using config file /home/dev/.config/code-server/config.yaml', 'as remoteUser (the image\'s own user is root)');
    const login = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST', body: new URLSearchParams({ password: password! }), redirect: 'manual' });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const home = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie }, redirect: 'manual' });
    t.match(decodeURIComponent(home.headers.get('location') ?? await home.text()), `folder=${res.remoteWorkspaceFolder}`, 'code-server opens the workspace folder');
    t.equal(lxr(env, ['rm', '-f', res.containerId]).status, 0);
  });
}
