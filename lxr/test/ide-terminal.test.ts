// The IDE terminal finds the image's tools (issue 15). The image is a real Debian
// (test/helpers/debian.ts, cached) plus a layer with /usr/local/go/bin/go and an ENV PATH that
// puts /usr/local/go/bin first, as golang images do. Debian's /etc/profile sets PATH outright,
// and code-server resolves its terminals' environment through a login shell: without lxr's
// /etc/profile edit (lxr/ide/profile.ts) the terminal answers "go: command not found".
// Headless Chromium logs in to code-server, opens its integrated terminal and types a command
// that prints PATH and the user and runs `go version`: its output must show in the terminal
// (the rows of xterm's DOM renderer) and in the file the command tees it into. For
// `lxr create --ide -u USER` (lxr's edit alone) and `lxr up --ide` with a devcontainer.json's
// remoteUser (the Dev Containers CLI makes the same edit), each as root and as gopher (uid 1000).
//
// Skipped, with the reason, where it cannot run: not root, no chromium, no code-server install
// (helpers/ide.ts makes it when it can), no Debian test image (debootstrap, podman, mirror).
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../../image-tool/test/helpers/registry.js';
import { lxr, lxrEnv, sleep, tarOf, type LxrEnv } from './helpers/env.js';
import { IDE_DIR, ideInstall, ideInstallSkipReason } from './helpers/ide.js';
import { DEBIAN_IMAGE, debianArchive } from '../../test/helpers/debian.js';

const CHROMIUM = '/usr/bin/chromium';
const GO_IMAGE = 'localhost/lxr-debian-go-test:1';
const GO_PATH = '/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const GO_VERSION = 'go version go1.99.0-lxr-test linux/amd64';

async function skipReason(): Promise<{ skip: string | false; archive?: string }> {
  if (process.getuid?.() !== 0) return { skip: 'needs root' };
  if (!existsSync(CHROMIUM)) return { skip: `no ${CHROMIUM} (apt-get install chromium)` };
  const ide = ideInstallSkipReason();
  if (ide) return { skip: ide };
  if (process.env.LXR_TEST_NO_DEBIAN) return { skip: 'LXR_TEST_NO_DEBIAN is set' };
  try {
    return { skip: false, archive: await debianArchive() };
  } catch (e) {
    return { skip: `no Debian test image (${(e as Error).message}): it needs debootstrap, podman, runc and Debian's mirror` };
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * In the OCI layout `layout` (one image, as `lxr save --format oci-dir` writes it), add an
 * image `name`: the same layers plus one holding /usr/local/go/bin/go, and an ENV PATH that
 * finds it first, as golang images have.
 */
function addGoImage(layout: string, name: string): void {
  const blobPath = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7));
  const put = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(blobPath(d), b);
    return d;
  };
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blobPath(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(readFileSync(blobPath(manifest.config.digest), 'utf8'));
  const layer = tarOf([
    { path: 'usr/', type: 'dir' }, { path: 'usr/local/', type: 'dir' }, { path: 'usr/local/go/', type: 'dir' }, { path: 'usr/local/go/bin/', type: 'dir' },
    { path: 'usr/local/go/bin/go', type: 'file', mode: 0o755, data: `#!/bin/sh\necho "${GO_VERSION}"\n` },
  ]);
  const gz = gzipSync(layer);
  manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(gz), size: gz.length });
  config.rootfs.diff_ids.push(sha(layer));
  config.config.Env = [...(config.config.Env ?? []).filter((e: string) => !e.startsWith('PATH=')), `PATH=${GO_PATH}`];
  const c = Buffer.from(JSON.stringify(config));
  manifest.config = { ...manifest.config, digest: put(c), size: c.length };
  const m = Buffer.from(JSON.stringify(manifest));
  index.manifests = [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: put(m), size: m.length, annotations: { 'org.opencontainers.image.ref.name': name } }];
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
}

const { skip, archive } = await skipReason();

if (skip) {
  t.plan(0, skip);
} else {
  // the first code-server install alone takes minutes
  t.setTimeout(20 * 60 * 1000);
  const env: LxrEnv = lxrEnv(t);
  env.env = { ...env.env, LXR_IDE_DIR: IDE_DIR };
  const base = mkdtempSync(join(tmpdir(), 'lxr-ideterm-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  let browser: Browser | undefined;
  t.teardown(() => browser?.close().catch(() => {}));

  t.before(async () => {
    await ideInstall(t);
    const l = lxr(env, ['load', '-i', archive!], { timeout: 300000 });
    if (l.status !== 0) throw new Error(`lxr load: ${l.stderr}`);
    const layout = join(base, 'layout');
    const s = lxr(env, ['save', '--format', 'oci-dir', '-o', layout, DEBIAN_IMAGE], { timeout: 300000 });
    if (s.status !== 0) throw new Error(`lxr save: ${s.stderr}`);
    addGoImage(layout, GO_IMAGE);
    const g = lxr(env, ['load', '-i', layout], { timeout: 300000 });
    if (g.status !== 0) throw new Error(`lxr load of the go image: ${g.stderr}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      ],
    });
  });

  /** Log in to code-server at `url` in a fresh browser context; resolves once the workbench is up. */
  const openEditor = async (url: string, password: string): Promise<Page> => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    const origin = new URL(url).origin;
    // nothing leaves the machine: every request to another host is refused
    await context.route('**/*', (route) => {
      const u = route.request().url();
      return u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:') ? route.continue() : route.abort();
    });
    const page = await context.newPage();
    await page.goto(url);
    await page.locator('input[type=password]').fill(password);
    await page.locator('input[type=password]').press('Enter');
    await page.locator('.monaco-workbench').waitFor({ timeout: 120000 });
    return page;
  };

  /** The container: `lxr create --ide -u USER IMAGE`, or `lxr up --ide` of a devcontainer.json with remoteUser USER. */
  const makeContainer = (t: Test, how: 'create' | 'up', user: string, port: number): { id: string; password?: string } | undefined => {
    let r;
    let id: string | undefined;
    if (how === 'create') {
      r = lxr(env, ['create', '--name', `term-${user}`, '--ide', '--network', 'host', '--ide-port', String(port), '-u', user, GO_IMAGE], { timeout: 300000 });
      id = r.stdout.trim();
    } else {
      const ws = join(base, `ws-${user}`);
      mkdirSync(join(ws, '.devcontainer'), { recursive: true });
      writeFileSync(join(ws, '.devcontainer', 'devcontainer.json'), JSON.stringify({ image: GO_IMAGE, remoteUser: user, updateRemoteUserUID: false }));
      r = lxr(env, ['up', '--ide', '--ide-port', String(port), ws], { timeout: 300000, env: { LXR_NETWORK: 'host', HOME: base } });
      try {
        id = JSON.parse(r.stdout.trim().split('\n').pop() || '{}').containerId;
      } catch {
        /* no result line: the status check below fails with the CLI's output */
      }
    }
    t.equal(r.status, 0, r.status === 0 ? `lxr ${how} --ide succeeds` : r.stderr.slice(-3000));
    if (!id) return undefined;
    t.teardown(() => {
      lxr(env, ['rm', '-f', id!]);
    });
    const password = /password: (\S+)/.exec(r.stderr)?.[1];
    t.ok(password, `lxr ${how} --ide prints the password`);
    return { id, ...(password ? { password } : {}) };
  };

  const cases = [['create', 'root'], ['create', 'gopher'], ['up', 'root'], ['up', 'gopher']] as const;
  for (const [how, user] of cases) {
    t.test(`lxr ${how} --ide as ${user}: the IDE terminal has the image's PATH and runs go`, async (t) => {
      const port = await freePort();
      const c = makeContainer(t, how, user, port);
      if (!c?.password) return;
      const logs = () => lxr(env, ['logs', c.id]).stdout.slice(-2000);
      let up = false;
      for (const end = Date.now() + 120000; !up && Date.now() < end; ) {
        try {
          up = (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
        } catch {
          await sleep(300);
        }
      }
      if (!up) {
        t.fail(`code-server did not come up; its log:\n${logs()}`);
        return;
      }
      t.equal(lxr(env, ['exec', c.id, 'sh', '-c', 'command -v go; echo "$PATH"']).stdout, `/usr/local/go/bin/go\n${GO_PATH}\n`, 'lxr exec finds go through the image\'s ENV PATH');
      // xterm's DOM renderer: the terminal's rows are text in the page, not pixels on a canvas.
      // In the user's settings, in the IDE's data volume (read when the editor loads).
      const settings = lxr(env, ['exec', '-u', user, c.id, 'sh', '-c', 'mkdir -p /opt/lxr-ide/data/user-data/User && echo \'{"terminal.integrated.gpuAcceleration": "off"}\' > /opt/lxr-ide/data/user-data/User/settings.json']);
      t.equal(settings.status, 0, `the user's settings are written ${settings.stderr}`);

      const page = await openEditor(`http://127.0.0.1:${port}/`, c.password);
      const shot = async (what: string) => {
        if (process.env.LXR_IDE_SCREENSHOT) await page.screenshot({ path: process.env.LXR_IDE_SCREENSHOT.replace(/(\.png)?$/, `-terminal-${how}-${user}-${what}.png`) });
      };
      // a new terminal, from the command palette (the workbench takes keys once it has loaded)
      const term = page.locator('.xterm').first();
      for (let i = 0; i < 6 && !(await term.isVisible()); i++) {
        await page.keyboard.press('Escape');
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget input');
        if (!(await input.waitFor({ timeout: 10000 }).then(() => true, () => false))) continue;
        await input.fill('>Terminal: Create New Terminal');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Create New Terminal' }).first().waitFor({ timeout: 10000 }).catch(() => {});
        await page.keyboard.press('Enter');
        await term.waitFor({ timeout: 15000 }).catch(() => {});
      }
      if (!(await term.isVisible())) {
        await shot('no-terminal');
        t.fail('the editor opened no terminal');
        return;
      }
      const out = `/tmp/out-${user}.txt`;
      // what the command prints is not in what is typed: TERM_PATH=<the value>, go's answer
      const command = `{ echo "TERM_PATH=$PATH"; echo "TERM_USER=$(id -un)"; go version; } 2>&1 | tee ${out}`;
      const rows = page.locator('.xterm-rows');
      // typed once the shell has drawn its prompt (a "$" or "#" in the rows)
      await page.waitForFunction(() => /[#$]\s*$/m.test(document.querySelector('.xterm-rows')?.textContent ?? ''), undefined, { timeout: 60000 }).catch(() => {});
      await term.click();
      await page.keyboard.type(command, { delay: 5 });
      await page.keyboard.press('Enter');
      // its three lines (go's answer, or bash's "command not found")
      let written = '';
      for (const end = Date.now() + 60000; Date.now() < end && written.split('\n').length <= 3; await sleep(300)) {
        written = lxr(env, ['exec', c.id, 'cat', out]).stdout;
      }
      // code-server puts its own `code` command (remote-cli) before the PATH it was given
      const expected = new RegExp(`^TERM_PATH=(\\S+/remote-cli:)?${esc(GO_PATH)}\nTERM_USER=${user}\n${esc(GO_VERSION)}\n$`);
      t.match(written, expected, 'the terminal\'s shell has the image\'s PATH, runs as the user, and finds go');
      let shown = '';
      for (const end = Date.now() + 30000; Date.now() < end && !shown.includes(GO_VERSION); await sleep(300)) {
        shown = (await rows.allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
      }
      // a long line wraps over rows: their text, joined, is the line again
      const flat = shown.replace(/\n/g, '');
      t.match(flat, new RegExp(`TERM_PATH=(\\S+/remote-cli:)?${esc(GO_PATH)}TERM_USER=${user}${esc(GO_VERSION)}`), 'the terminal shows the image\'s PATH, the user and go\'s answer');
      t.notMatch(shown, /command not found/, 'and no "command not found"');
      await shot('done');
      await page.context().close();
      t.equal(lxr(env, ['rm', '-f', c.id]).status, 0, 'the container is removed');
    });
  }
}
