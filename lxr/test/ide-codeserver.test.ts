// `lxr create --ide`, end to end below the CLI: code-server from lxr's install (Node 24 and
// code-server mounted read-only) is started with the runtime's exec (detached) in a real
// container made with the runtime library, as the container's unprivileged user, in a network namespace of its own reached from the
// host through a veth pair. Its port is published on 127.0.0.1 by a TCP forwarder, and
// Debian's headless Chromium logs in there with the generated password: the editor must
// show the container's files, and a screenshot is kept (LXR_IDE_SCREENSHOT=path).
//
// The install: the test uses the install in LXR_IDE_DIR (default /var/lib/lxr/ide, the
// data dir lxr itself uses, so it is made once per machine and shared with lxr) and makes
// it when it is missing: ~2-4 minutes and ~800 MB from the npm registry, once. It is
// skipped, with the reason, when it cannot run here (not root, no chromium, no busybox, no
// ip, build tools missing for the install) or when LXR_IDE_TEST=0.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import {
  ideLoginMessage, ideMounts, ideUrl, startIde,
} from '../ide/index.js';
import { createContainer } from '../../runtime/container/create.js';
import { startContainer } from '../../runtime/container/start.js';
import { deleteContainer } from '../../runtime/container/delete.js';
import { killContainer } from '../../runtime/container/kill.js';
import { containerState } from '../../runtime/container/query.js';
import { execInContainer } from '../../runtime/container/exec.js';
import { isZombieOrGone } from '../../runtime/container/processes.js';
import type { Spec } from '../../oci-spec/types.js';
import { native } from '../../native/index.js';
import { haveBusybox, makeBundle, makeRoot, uniqueId } from '../../runtime/test/helpers/bundle.js';
import { IDE_DIR, ideInstall, ideInstallSkipReason } from './helpers/ide.js';

const CHROMIUM = '/usr/bin/chromium';
const PORT_IN_CONTAINER = 8080;
const UID = 1000;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts, veth)';
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM} (apt-get install chromium)`;
  if (!haveBusybox) return 'no busybox (apt-get install busybox-static)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no ip (apt-get install iproute2)';
  return ideInstallSkipReason();
}

const skip = skipReason();
// the first install alone takes minutes
t.setTimeout(20 * 60 * 1000);

t.test('code-server in a container: log in from Chromium, see the container\'s files', { skip }, async (t) => {
  const started = Date.now();
  const install = await ideInstall(t);
  t.comment(`code-server ${install.version} from ${IDE_DIR} (ready after ${Math.round((Date.now() - started) / 1000)} s)`);

  // the network: a namespace made here, a veth pair, the container at .2 and the host at .1
  const tag = `${process.pid % 100000}`;
  const ns = `lxride${tag}`;
  const hostIf = `lxih${tag}`;
  const ctIf = `lxic${tag}`;
  const a = (process.pid >> 6) & 255;
  const b = (process.pid & 63) * 4;
  const hostIp = `10.223.${a}.${b + 1}`;
  const ctIp = `10.223.${a}.${b + 2}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ip('netns', 'add', ns);
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', hostIf]);
    spawnSync('ip', ['netns', 'del', ns]);
  });
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', ctIf);
  ip('link', 'set', ctIf, 'netns', ns);
  ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('-n', ns, 'addr', 'add', `${ctIp}/30`, 'dev', ctIf);
  ip('-n', ns, 'link', 'set', ctIf, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');

  // the container: busybox, the host's glibc and libraries (read-only) for Node, a user
  // "dev" with a project whose file the editor must show
  // the container's own process is a long sleep; code-server comes in with exec, as lxr does
  const bundle = makeBundle((s) => {
    s.process!.args = ['sleep', '100000'];
    s.process!.env = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/home/dev', 'TERM=xterm'];
    s.process!.user = { uid: UID, gid: UID };
    s.process!.cwd = '/home/dev/project';
    s.process!.terminal = false;
    s.hostname = 'idebox';
    s.linux!.namespaces = [...s.linux!.namespaces!.filter((n) => n.type !== 'network'), { type: 'network', path: `/var/run/netns/${ns}` }];
    for (const d of ['/usr/lib', '/usr/lib64']) {
      s.mounts!.push({ destination: d, type: 'bind', source: d, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    }
    s.mounts!.push(...ideMounts(install));
  });
  t.teardown(bundle.cleanup);
  const r = bundle.rootfs;
  // busybox lives in /bin; the host's libraries come in under /usr
  mkdirSync(join(r, 'usr', 'bin'), { recursive: true });
  symlinkSync('usr/lib', join(r, 'lib'));
  symlinkSync('usr/lib64', join(r, 'lib64'));
  writeFileSync(join(r, 'etc', 'passwd'), `root:x:0:0:root:/root:/bin/sh\ndev:x:${UID}:${UID}:dev:/home/dev:/bin/sh\n`);
  writeFileSync(join(r, 'etc', 'group'), `root:x:0:\ndev:x:${UID}:\n`);
  writeFileSync(join(r, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(r, 'etc', 'resolv.conf'), '');
  execFileSync('chmod', ['1777', join(r, 'tmp')]);
  const project = join(r, 'home', 'dev', 'project');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'main.go'), 'package main\n\nfunc main() { println("hi") }\n');
  for (const p of [join(r, 'home', 'dev'), project, join(project, 'main.go')]) chownSync(p, UID, UID);

  const { root, cleanup: cleanRoot } = makeRoot();
  t.teardown(cleanRoot);
  const logFile = join(bundle.dir, 'ide.log');
  const logFd = openSync(logFile, 'a');
  const nullFd = openSync('/dev/null', 'r');
  const id = uniqueId('ide');
  const { record, child } = await createContainer({ root, id, bundle: bundle.dir, stdio: [nullFd, logFd, logFd] });
  let reaped = false;
  let idePid = 0;
  // code-server is our child (exec's), in the container's pid namespace: its init cannot
  // finish dying until we reap it, so kill, reap code-server, reap the init, then delete
  const stop = async () => {
    await killContainer(root, id, 'SIGKILL').catch(() => {});
    if (idePid) await native().wait(idePid);
    await native().wait(record.pid);
    reaped = true;
  };
  t.teardown(async () => {
    if (!reaped) await stop();
    await deleteContainer(root, id, true).catch(() => {});
    child.detach();
  });
  await startContainer(root, id);
  const spec = JSON.parse(readFileSync(join(bundle.dir, 'config.json'), 'utf8')) as Spec;
  // a file made in the container, by its user, holding its hostname: the editor must show it
  const made = await execInContainer(root, id, {
    process: { ...spec.process!, args: ['sh', '-c', 'echo "made in $(hostname) by uid $(id -u)" > hello-from-lxr.txt'] }, stdio: [nullFd, logFd, logFd],
  });
  t.equal(made, 0, 'a file made in the container');
  const marker = `made in idebox by uid ${UID}`;
  const ide = await startIde({ root, id, process: spec.process!, port: PORT_IN_CONTAINER, workspace: '/home/dev/project', stdio: [nullFd, logFd, logFd] });
  closeSync(logFd);
  closeSync(nullFd);
  idePid = ide.pid;
  t.ok(idePid > 0, 'exec started code-server in the background');
  t.match(ide.password, /^[A-Za-z0-9_-]{24}$/, 'with a random password');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  // publish the port on the host: 127.0.0.1:<random> -> container:8080
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect(PORT_IN_CONTAINER, ctIp);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const hostPort = (server.address() as { port: number }).port;
  const url = ideUrl(hostPort);
  t.comment(ideLoginMessage(url, ide.password));

  // code-server answers /healthz without a login once it is up
  let healthy = false;
  for (let i = 0; i < 240 && !healthy; i++) {
    if (containerState(root, id).status !== 'running' || isZombieOrGone(idePid)) break;
    try {
      const res = await fetch(new URL('healthz', url), { signal: AbortSignal.timeout(2000) });
      healthy = res.status === 200;
    } catch {
      /* not listening yet */
    }
    if (!healthy) await new Promise((res) => setTimeout(res, 500));
  }
  if (!healthy) {
    t.fail(`code-server did not come up; container ${containerState(root, id).status}, code-server ${isZombieOrGone(idePid) ? 'exited' : 'running'}; its output:\n${log()}`);
    return;
  }
  const unauth = await fetch(url, { redirect: 'manual' });
  t.equal(unauth.status, 302, 'without a login the editor is not served');
  t.match(unauth.headers.get('location') ?? '', /login/, 'it redirects to the login page');

  // Chromium: no sandbox (root), a fresh profile (playwright's), and no host other than
  // the published port: every other request is refused before it leaves
  let browser: Browser | undefined;
  t.teardown(() => browser?.close().catch(() => {}));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const origin = new URL(url).origin;
  const refused: string[] = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
    refused.push(u);
    return route.abort();
  });
  const page = await context.newPage();
  await page.goto(url);
  const password = page.locator('input[type=password]');
  await password.waitFor({ timeout: 30000 });
  t.ok(page.url().includes('/login'), 'the browser lands on the login page');

  await password.fill('not-the-password');
  await password.press('Enter');
  await page.getByText(/incorrect password/i).waitFor({ timeout: 30000 });
  t.pass('a wrong password is refused');

  await page.locator('input[type=password]').fill(ide.password);
  await page.locator('input[type=password]').press('Enter');
  await page.locator('.monaco-workbench').waitFor({ timeout: 120000 });
  t.pass('the generated password logs in to the editor');
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'hello-from-lxr.txt' });
  await row.waitFor({ timeout: 120000 });
  t.ok(await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'main.go' }).isVisible(), 'the explorer lists the container\'s project');
  await row.click();
  await page.locator('.monaco-editor .view-lines', { hasText: marker }).waitFor({ timeout: 60000 });
  t.pass('the file opens with the content written into the container');

  const shotDir = mkdtempSync(join(tmpdir(), 'lxr-ide-shot-'));
  t.teardown(() => rmSync(shotDir, { recursive: true, force: true }));
  const shot = join(shotDir, 'ide.png');
  await page.screenshot({ path: shot });
  t.ok(statSync(shot).size > 10000, 'a screenshot of the editor');
  if (process.env.LXR_IDE_SCREENSHOT) copyFileSync(shot, process.env.LXR_IDE_SCREENSHOT);
  t.comment(`refused requests to other hosts: ${refused.length ? refused.join(' ') : 'none'}`);

  // code-server runs as the container's user, in the container's namespaces
  t.match(readFileSync(`/proc/${idePid}/cmdline`, 'utf8'), 'code-server/out/node/entry.js', 'the exec\'d process is code-server');
  t.match(readFileSync(`/proc/${idePid}/status`, 'utf8'), new RegExp(`\\nUid:\\s+${UID}\\s`), 'code-server runs as the container user');
  for (const n of ['net', 'pid', 'mnt']) {
    t.equal(execFileSync('readlink', [`/proc/${idePid}/ns/${n}`], { encoding: 'utf8' }), execFileSync('readlink', [`/proc/${record.pid}/ns/${n}`], { encoding: 'utf8' }), `in the container's ${n} namespace`);
  }
  t.equal(execFileSync('readlink', [`/proc/${idePid}/ns/net`], { encoding: 'utf8' }).trim(), `net:[${statSync(`/var/run/netns/${ns}`).ino}]`, 'the namespace reached through the veth');
  await browser.close();
  browser = undefined;
  await stop();
  await deleteContainer(root, id, true);
  t.throws(() => containerState(root, id), 'the container is deleted');
});
