// Issue 21's kept list, for lxr-image: behaviours that already held and must keep holding.
// - `lxr-image pull` killed with SIGKILL at chosen moments (held by a loopback proxy that
//   pauses one request), then run again: the layout validates and unpacks exactly as a
//   pull that was never interrupted.
// - Two pulls of one image into one empty store at once both succeed.
// - A faulty registry (flipped byte, truncated or oversized blob, non-JSON or mislabelled
//   manifest, HTTP 500): the pull fails naming the blob or manifest, the store stays valid,
//   and a good pull into that same store then succeeds.
// - A full disk (a small tmpfs mounted in a private mount namespace, never seen by the host):
//   `no space left on device while downloading blob sha256:...`, a valid store, and the pull
//   completes once there is room.
import t, { type Test } from 'tap';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { startProxy, startRegistry, type ProxyHandle, type RegistryHandle } from './helpers/registry.js';
import { sha256 } from './helpers/images.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { lxrImageBin, runCli, spawnCli } from './helpers/cli.js';

let reg: RegistryHandle;
let img: Awaited<ReturnType<typeof seedImage>>;
let reference: Map<string, string>;
t.before(async () => {
  reg = await startRegistry();
  img = await seedImage(reg.host, 'kept/app:1', {
    layers: [
      { files: { 'bin/': '', 'bin/one': randomBytes(1 << 20), 'etc/': '', 'etc/a': 'a\n' }, compression: 'none' },
      { files: { 'bin/two': randomBytes(1 << 20), 'etc/a': 'changed\n' }, compression: 'none' },
      { files: { 'usr/': '', 'usr/three': randomBytes(1 << 20) } },
    ],
  });
});
t.teardown(() => reg?.stop());

const fastEnv = { LXR_IMAGE_RETRY_ATTEMPTS: '1', LXR_IMAGE_RETRY_BASE_MS: '5' };
const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;

async function waitFor(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every blob hashes to its name, index.json and each manifest it names parse, and every blob they reference is there. */
function validateLayout(t: Test, store: string, expectImage: boolean): void {
  t.same(JSON.parse(readFileSync(join(store, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' }, 'oci-layout');
  const dir = join(store, 'blobs', 'sha256');
  const blobs = existsSync(dir) ? readdirSync(dir) : [];
  let bad = 0;
  for (const b of blobs) if (sha256(readFileSync(join(dir, b))) !== `sha256:${b}`) bad++;
  t.equal(bad, 0, `all ${blobs.length} blobs match their digests`);
  const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
  t.ok(Array.isArray(index.manifests), 'index.json has manifests');
  let missing = 0;
  for (const m of index.manifests) {
    const p = join(dir, m.digest.slice(7));
    if (!existsSync(p)) {
      missing++;
      continue;
    }
    const man = JSON.parse(readFileSync(p, 'utf8'));
    for (const d of [man.config, ...(man.layers ?? []), ...(man.manifests ?? [])]) if (d && !existsSync(join(dir, d.digest.slice(7)))) missing++;
  }
  t.equal(missing, 0, 'everything index.json references is stored');
  if (expectImage) t.ok(index.manifests.some((m: { digest: string }) => m.digest === img.manifest.digest), 'the image is named in index.json');
}

function ingest(store: string): string[] {
  const d = join(store, '.lxr', 'ingest');
  return existsSync(d) ? readdirSync(d) : [];
}

/** path -> type and content hash (mode too), for every entry of a rootfs. */
function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel)).sort()) {
      const p = join(rel, e);
      const st = lstatSync(join(root, p));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(p, `dir ${mode}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.set(p, `link ${readlinkSync(join(root, p))}`);
      else out.set(p, `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

async function unpackTree(t: Test, store: string, name = img.name): Promise<Map<string, string>> {
  const bundle = join(tempDir(t), 'bundle');
  const r = await runCli(['unpack', '--store', store, name, bundle]);
  t.equal(r.code, 0, `unpack: ${r.stderr}`);
  return tree(join(bundle, 'rootfs'));
}

t.before(async () => {
  // The reference: a pull that was never interrupted.
  const store = tempDir(t as unknown as Test);
  const r = await runCli(['pull', '-q', '--store', store, img.name]);
  if (r.code !== 0) throw new Error(`reference pull failed: ${r.stderr}`);
  const bundle = join(tempDir(t as unknown as Test), 'bundle');
  const u = await runCli(['unpack', '--store', store, img.name, bundle]);
  if (u.code !== 0) throw new Error(`reference unpack failed: ${u.stderr}`);
  reference = tree(join(bundle, 'rootfs'));
});

/** Forward a request, but stop after `bytes` body bytes and hold the connection open. */
function forwardThenHold(target: string, req: IncomingMessage, res: ServerResponse, bytes: number, held: () => void): void {
  const [hostname, port] = target.split(':');
  const up = httpRequest({ hostname, port: Number(port), method: req.method, path: req.url, headers: { ...req.headers, host: target } }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    let sent = 0;
    ur.on('data', (chunk: Buffer) => {
      if (sent >= bytes) return;
      const part = chunk.subarray(0, bytes - sent);
      sent += part.length;
      res.write(part);
      if (sent >= bytes) {
        ur.pause();
        held();
      }
    });
  });
  up.on('error', () => res.socket?.destroy());
  req.pipe(up);
}

interface Moment {
  name: string;
  /** Decide for each request: hold it (return true, having called held() when it is held) or not. */
  hold(req: IncomingMessage, res: ServerResponse, held: () => void): boolean;
  /** Extra condition on the store before the kill. */
  ready?(store: string): boolean;
}

const layerBlob = (i: number) => img.layers[i]!.digest;
const moments: Moment[] = [
  {
    name: 'after the manifest, before the config',
    hold: (req, _res, held) => (req.url!.endsWith(img.config.digest) ? (held(), true) : false),
  },
  {
    name: 'mid-blob (half of the first layer written)',
    hold: (req, res, held) => (req.url!.endsWith(layerBlob(0)) && req.method === 'GET' ? (forwardThenHold(reg.host, req, res, img.layers[0]!.size >> 1, held), true) : false),
    ready: (store) => ingest(store).length > 0,
  },
  {
    name: 'after some layers (the last one held)',
    hold: (req, _res, held) => (req.url!.endsWith(layerBlob(2)) ? (held(), true) : false),
    ready: (store) => existsSync(join(store, 'blobs', 'sha256', layerBlob(0).slice(7))) && existsSync(join(store, 'blobs', 'sha256', layerBlob(1).slice(7))),
  },
  {
    name: 'mid-blob of the last layer, the others stored',
    hold: (req, res, held) => (req.url!.endsWith(layerBlob(2)) && req.method === 'GET' ? (forwardThenHold(reg.host, req, res, img.layers[2]!.size >> 2, held), true) : false),
    ready: (store) => existsSync(join(store, 'blobs', 'sha256', layerBlob(1).slice(7))),
  },
];

for (const m of moments) {
  t.test(`pull killed with SIGKILL ${m.name}: the next pull validates and unpacks the same`, async (t) => {
    let held = false;
    const proxy: ProxyHandle = await startProxy(reg.host, (req, res, ctx) => {
      if (!m.hold(req, res, () => (held = true))) ctx.forward();
    });
    t.teardown(proxy.stop);
    const store = tempDir(t);
    const name = `${proxy.host}/kept/app:1`;
    const child: ChildProcess = spawnCli(['pull', '-q', '--store', store, name], { env: fastEnv });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    try {
      await waitFor(`the pull to reach "${m.name}" (${stderr})`, () => held && (!m.ready || m.ready(store)) || child.exitCode !== null);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    t.equal(child.signalCode, 'SIGKILL', 'the pull was killed, not finished');
    if (existsSync(join(store, 'index.json'))) validateLayout(t, store, false);
    // Again, with the same proxy now forwarding everything.
    held = false;
    m.hold = () => false;
    const r = await runCli(['pull', '-q', '--store', store, name], { env: fastEnv });
    t.equal(r.code, 0, `the second pull succeeds: ${r.stderr}`);
    validateLayout(t, store, true);
    t.same(ingest(store), [], 'no partial download left');
    t.same(await unpackTree(t, store, name), reference, 'unpacks exactly as an uninterrupted pull');
  });
}

t.test('two pulls of one image into one empty store at once both succeed', async (t) => {
  const store = tempDir(t);
  const [a, b] = await Promise.all([runCli(['pull', '-q', '--store', store, img.name]), runCli(['pull', '-q', '--store', store, img.name])]);
  t.equal(a.code, 0, `first: ${a.stderr}`);
  t.equal(b.code, 0, `second: ${b.stderr}`);
  validateLayout(t, store, true);
  t.equal(JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')).manifests.length, 1, 'named once');
  t.same(ingest(store), []);
  t.same(await unpackTree(t, store), reference);
});

// --- a faulty registry, then a good pull into the same store ---------------------------------

interface Fault {
  name: string;
  hook(req: IncomingMessage, res: ServerResponse): boolean;
  expect: string[];
}
const L = img0Layer;
function img0Layer(): { digest: string; size: number } {
  return img.layers[1]!;
}
function blobBytes(digest: string): Buffer {
  return readFileSync(join(reg.dataDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data'));
}
const faults: Fault[] = [
  {
    name: 'a flipped byte in a layer',
    hook: (req, res) => {
      if (!req.url!.endsWith(L().digest) || req.method !== 'GET') return false;
      const b = Buffer.from(blobBytes(L().digest));
      b[b.length >> 1] ^= 0x01;
      res.writeHead(200, { 'content-length': String(b.length) }).end(b);
      return true;
    },
    expect: ['L'],
  },
  {
    name: 'a truncated layer (the registry sends less and closes)',
    hook: (req, res) => {
      if (!req.url!.endsWith(L().digest) || req.method !== 'GET') return false;
      const b = blobBytes(L().digest);
      res.writeHead(200, { 'content-length': String(b.length - 100) }).end(b.subarray(0, b.length - 100));
      return true;
    },
    expect: ['L'],
  },
  {
    name: 'an oversized layer (more bytes than the manifest says)',
    hook: (req, res) => {
      if (!req.url!.endsWith(L().digest) || req.method !== 'GET') return false;
      const b = Buffer.concat([blobBytes(L().digest), Buffer.alloc(4096, 0x42)]);
      res.writeHead(200, { 'content-length': String(b.length) }).end(b);
      return true;
    },
    expect: ['L'],
  },
  {
    name: 'HTTP 500 for a layer',
    hook: (req, res) => {
      if (!req.url!.endsWith(L().digest)) return false;
      res.writeHead(500).end('boom');
      return true;
    },
    expect: ['L', 'HTTP 500'],
  },
  {
    name: 'a manifest that is not JSON',
    hook: (req, res) => {
      if (!MANIFEST.test(req.url!)) return false;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('<html>not json</html>');
      return true;
    },
    expect: ['M', 'JSON'],
  },
  {
    // The document's own mediaType wins over Content-Type (a wrong Content-Type alone is
    // tolerated, as containerd does), so the mislabel that must fail is in the document.
    name: 'a mislabelled manifest (an image manifest whose mediaType says index)',
    hook: (req, res) => {
      if (!MANIFEST.test(req.url!) || req.method === 'HEAD') return false;
      const doc = JSON.parse(blobBytes(img.manifest.digest).toString('utf8'));
      doc.mediaType = 'application/vnd.oci.image.index.v1+json';
      const body = Buffer.from(JSON.stringify(doc));
      res.writeHead(200, { 'content-type': doc.mediaType, 'content-length': String(body.length) }).end(body);
      return true;
    },
    expect: ['M', 'manifests'],
  },
  {
    name: 'HTTP 500 for the manifest',
    hook: (req, res) => {
      if (!MANIFEST.test(req.url!)) return false;
      res.writeHead(500).end('boom');
      return true;
    },
    expect: ['M', 'HTTP 500'],
  },
];

for (const f of faults) {
  t.test(`${f.name}: the pull fails naming it, the store stays valid, a good pull then succeeds`, async (t) => {
    const proxy = await startProxy(reg.host, (req, res, ctx) => {
      if (!f.hook(req, res)) ctx.forward();
    });
    t.teardown(proxy.stop);
    const store = tempDir(t);
    const bad = await runCli(['pull', '-q', '--store', store, `${proxy.host}/kept/app:1`], { env: fastEnv });
    t.equal(bad.code, 1, 'the pull fails');
    for (const e of f.expect) {
      const want = e === 'L' ? L().digest : e === 'M' ? `${proxy.host}/kept/app` : e;
      t.ok(bad.stderr.includes(want), `the error names ${want}: ${bad.stderr.trim()}`);
    }
    t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    validateLayout(t, store, false);
    t.same(JSON.parse(readFileSync(join(store, 'index.json'), 'utf8')).manifests, [], 'no image named after the failed pull');
    const good = await runCli(['pull', '-q', '--store', store, img.name]);
    t.equal(good.code, 0, `the good pull into the same store succeeds: ${good.stderr}`);
    validateLayout(t, store, true);
    t.same(ingest(store), []);
    t.same(await unpackTree(t, store), reference);
  });
}

// --- a full disk, in a private mount namespace ----------------------------------------------

const haveUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
t.test('a full disk (tmpfs in a private mount namespace): a clear error, a valid store, and the pull completes once there is room', { skip: !haveUnshare && 'needs root and unshare -m' }, async (t) => {
  const work = tempDir(t);
  const script = [
    'set -u',
    'mount --make-rprivate /',
    `mount -t tmpfs -o size=1536k lxr-test-full "$MNT"`,
    `"$NODE" "$BIN" pull -q --store "$MNT/store" "$REF" 2>"$WORK/err1"; echo $? >"$WORK/rc1"`,
    `cp -a "$MNT/store" "$WORK/after-fail"`,
    `mount -o remount,size=64m "$MNT"`,
    `"$NODE" "$BIN" pull -q --store "$MNT/store" "$REF" 2>"$WORK/err2"; echo $? >"$WORK/rc2"`,
    `cp -a "$MNT/store" "$WORK/after-room"`,
  ].join('\n');
  const mnt = join(work, 'mnt');
  spawnSync('mkdir', ['-p', mnt]);
  // The pull runs under unshare -m: the tmpfs exists only in that namespace and goes with it.
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script], {
    encoding: 'utf8',
    env: { ...process.env, ...fastEnv, MNT: mnt, WORK: work, NODE: process.execPath, BIN: lxrImageBin(), REF: img.name },
    timeout: 240_000,
  });
  t.equal(r.status, 0, `the namespace script ran: ${r.stderr}`);
  t.notOk(spawnSync('findmnt', ['-n', mnt]).stdout?.length, 'the host never sees the tmpfs');
  const err1 = readFileSync(join(work, 'err1'), 'utf8').trim();
  t.equal(readFileSync(join(work, 'rc1'), 'utf8').trim(), '1', 'the pull on a full disk fails');
  t.match(err1, /no space left on device while downloading blob sha256:[a-f0-9]{64}/, `the error: ${err1}`);
  t.equal(err1.split('\n').length, 1, 'one line');
  validateLayout(t, join(work, 'after-fail'), false);
  t.same(JSON.parse(readFileSync(join(work, 'after-fail', 'index.json'), 'utf8')).manifests, [], 'no image named');
  t.equal(readFileSync(join(work, 'rc2'), 'utf8').trim(), '0', `with room the pull completes: ${readFileSync(join(work, 'err2'), 'utf8')}`);
  validateLayout(t, join(work, 'after-room'), true);
  t.same(ingest(join(work, 'after-room')), []);
  t.same(await unpackTree(t, join(work, 'after-room')), reference);
});
