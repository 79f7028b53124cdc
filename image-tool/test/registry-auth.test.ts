// Authentication against real servers: the registry's own token auth with a Docker-Hub-
// style token service, Basic auth behind a proxy, credentials files, login/logout, and
// redirects to blob storage that must not receive the registry credentials.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, startTokenRegistry, startProxy, startBlobHost } from './helpers/registry.js';
import { buildImage } from './helpers/images.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { expectImageError } from './helpers/assert.js';
import { login, logout, pullImage, pushImage } from '../index.js';

const noRetry = { attempts: 1 };

t.test('token auth: anonymous pull of a public repository, push needs credentials', async (t) => {
  const reg = await startTokenRegistry({ users: { alice: 'alice-pw-123' } });
  t.teardown(reg.stop);
  const src = tempDir(t);
  const name = `${reg.host}/pub/app:1`;
  buildImage(src, { name, layers: [{ files: { hello: 'world' } }] });
  await expectImageError(t, pushImage({ store: src, reference: name, retry: noRetry }), 'UNAUTHORIZED', `${reg.host}/pub/app`);
  const pushed = await pushImage({ store: src, reference: name, credentials: 'alice:alice-pw-123', retry: noRetry });
  t.ok(reg.tokenRequests.some((r) => r.user === 'alice' && r.scopes.includes('repository:pub/app:pull,push')), 'token asked for with the user and push scope');

  const store = tempDir(t);
  const before = reg.tokenRequests.length;
  const r = await pullImage({ reference: name, store, retry: noRetry });
  t.equal(r.manifestDigest, pushed.manifestDigest);
  const anon = reg.tokenRequests.slice(before);
  t.ok(anon.length >= 1 && anon.every((x) => x.user === ''), 'anonymous tokens');
  t.ok(anon.some((x) => x.scopes.includes('repository:pub/app:pull')));
});

t.test('token auth: wrong password and private repositories give clear errors without secrets', async (t) => {
  const reg = await startTokenRegistry({ users: { bob: 'bob-secret-pw' }, publicRepos: ['pub/'] });
  t.teardown(reg.stop);
  const img = buildImage(tempDir(t), { layers: [{ files: { p: 'private' } }] });
  t.ok(img);
  const src = tempDir(t);
  const name = `${reg.host}/private/app:1`;
  buildImage(src, { name, layers: [{ files: { p: 'private' } }] });
  await pushImage({ store: src, reference: name, credentials: 'bob:bob-secret-pw', retry: noRetry });

  const store = tempDir(t);
  const e1 = await expectImageError(t, pullImage({ reference: name, store, retry: noRetry }), 'UNAUTHORIZED', name);
  t.ok(e1);
  const e2 = await expectImageError(t, pullImage({ reference: name, store, credentials: 'bob:WRONG-pw-777', retry: noRetry }), 'UNAUTHORIZED', 'bob');
  t.notOk(e2?.message.includes('WRONG-pw-777'), 'password not in the message');

  // Credentials from a Docker config.json (base64 "auth").
  const authFile = join(tempDir(t), 'config.json');
  writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('bob:bob-secret-pw').toString('base64') } } }));
  const r = await pullImage({ reference: name, store, authFile, retry: noRetry });
  t.equal(r.reference, name);
  t.ok(reg.tokenRequests.some((x) => x.user === 'bob' && x.scopes.includes('repository:private/app:pull')));
});

t.test('login checks and saves credentials; logout removes them', async (t) => {
  const reg = await startTokenRegistry({ users: { carol: 'c-pass' }, publicRepos: [] });
  t.teardown(reg.stop);
  const authFile = join(tempDir(t), 'docker', 'config.json');
  await expectImageError(t, login({ registry: reg.host, credentials: 'carol:nope', authFile, retry: noRetry }), 'UNAUTHORIZED', reg.host, 'carol');
  t.notOk(existsSync(authFile), 'nothing saved after a failed login');
  const r = await login({ registry: reg.host, credentials: { username: 'carol', password: 'c-pass' }, authFile, retry: noRetry });
  t.equal(r.authFile, authFile);
  const doc = JSON.parse(readFileSync(authFile, 'utf8'));
  t.equal(Buffer.from(doc.auths[reg.host].auth, 'base64').toString(), 'carol:c-pass');
  // Saved credentials are used for push and pull.
  const src = tempDir(t);
  const name = `${reg.host}/carol/app:1`;
  buildImage(src, { name, layers: [{ files: { c: 'carol' } }] });
  await pushImage({ store: src, reference: name, authFile, retry: noRetry });
  await pullImage({ reference: name, store: tempDir(t), authFile, retry: noRetry });
  t.same(await logout({ registry: reg.host, authFile }), { registry: reg.host, removed: true });
  t.same(JSON.parse(readFileSync(authFile, 'utf8')).auths, {});
  await expectImageError(t, pullImage({ reference: name, store: tempDir(t), authFile, retry: noRetry }), 'UNAUTHORIZED', name);
});

t.test('an expired token is refreshed on 401', async (t) => {
  const reg = await startTokenRegistry({ expiredTokens: 1 });
  t.teardown(reg.stop);
  const src = tempDir(t);
  const name = `${reg.host}/pub/refresh:1`;
  buildImage(src, { name, layers: [{ files: { r: 'refresh' } }] });
  await pushImage({ store: src, reference: name, credentials: 'alice:secret', retry: noRetry });
  t.ok(reg.tokenRequests.length >= 2, 'the refused first token was replaced by a new one');
  await pullImage({ reference: name, store: tempDir(t), retry: noRetry });
});

t.test('Basic auth, and blob redirects to another host without the credentials', async (t) => {
  const reg = await startRegistry();
  t.teardown(reg.stop);
  const blobs = await startBlobHost(reg.host);
  t.teardown(blobs.stop);
  const good = `Basic ${Buffer.from('dave:d-pw').toString('base64')}`;
  const proxy = await startProxy(reg.host, (req, res, ctx) => {
    if (req.headers.authorization !== good) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="lxr-test"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
    if (m && req.method === 'GET') {
      res.writeHead(307, { location: `${blobs.url}/blob/${m[1]}/${m[2]}?X-Signature=sig-secret` }).end();
      return;
    }
    ctx.forward();
  });
  t.teardown(proxy.stop);
  const img = await seedImage(reg.host, 'test/basic:1', { layers: [{ files: { b: 'basic' } }, { files: { c: 'second' } }] });
  const name = `${proxy.host}/test/basic:1`;
  await expectImageError(t, pullImage({ reference: name, store: tempDir(t), retry: noRetry }), 'UNAUTHORIZED', name);
  const e = await expectImageError(t, pullImage({ reference: name, store: tempDir(t), credentials: 'dave:bad-pw-42', retry: noRetry }), 'UNAUTHORIZED', name);
  t.notOk(e?.message.includes('bad-pw-42'));
  const r = await pullImage({ reference: name, store: tempDir(t), credentials: 'dave:d-pw', retry: noRetry });
  t.equal(r.manifestDigest, img.manifest.digest);
  const blobGets = blobs.requests.filter((q) => q.url.startsWith('/blob/'));
  t.ok(blobGets.length >= 3, 'config and layers came from the blob host');
  t.ok(blobGets.every((q) => q.headers.authorization === undefined), 'no Authorization sent to the blob host');
  t.ok(proxy.requests.some((q) => q.headers.authorization === good), 'registry got the credentials');
});
