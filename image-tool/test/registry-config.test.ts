// Where lxr-image sends requests and with which credentials: Docker Hub defaults,
// registries.json, mirrors, the plain-HTTP rule, Docker's config.json keys, and the
// WWW-Authenticate challenge parser. No network: these only compute endpoints.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { endpointsFor, loadRegistriesConfig, resolveRegistryConfig, emptyConfig } from '../registry/config.js';
import { getCredentials, saveCredentials } from '../registry/credentials.js';
import { parseChallenges } from '../registry/auth.js';
import { tempDir } from './helpers/seed.js';

t.test('Docker Hub is registry-1.docker.io over HTTPS; mirrors come first', async (t) => {
  t.same(endpointsFor('docker.io', emptyConfig(), true).map((e) => e.base), ['https://registry-1.docker.io']);
  const cfg = await resolveRegistryConfig({ config: emptyConfig(), registryMirrors: ['https://mirror.example.com', '127.0.0.1:5000'] });
  t.same(endpointsFor('docker.io', cfg, true).map((e) => [e.base, e.mirror]), [
    ['https://mirror.example.com', true],
    ['http://127.0.0.1:5000', true],
    ['https://registry-1.docker.io', false],
  ]);
  t.same(endpointsFor('docker.io', cfg, false).map((e) => e.base), ['https://registry-1.docker.io'], 'push never goes to a mirror');
  t.same(endpointsFor('ghcr.io', cfg, true).map((e) => e.base), ['https://ghcr.io'], '--registry-mirror is for docker.io only');
});

t.test('plain HTTP: loopback and registries marked insecure only', async (t) => {
  t.equal(endpointsFor('localhost:5000', emptyConfig(), true)[0]!.base, 'http://localhost:5000');
  t.equal(endpointsFor('127.0.0.1:5000', emptyConfig(), true)[0]!.base, 'http://127.0.0.1:5000');
  t.equal(endpointsFor('reg.lan:5000', emptyConfig(), true)[0]!.base, 'https://reg.lan:5000');
  const cfg = await resolveRegistryConfig({ config: emptyConfig(), insecureRegistries: ['reg.lan:5000'] });
  t.equal(endpointsFor('reg.lan:5000', cfg, true)[0]!.base, 'http://reg.lan:5000');
  const bad = { ...emptyConfig(), registries: { 'reg.lan': { location: 'http://reg.lan' } } };
  t.throws(() => endpointsFor('reg.lan', bad, true), { code: 'CONFIG', message: /plain HTTP to registry reg\.lan/ });
});

t.test('registries.json: location, insecure and mirrors per registry; errors name the file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'registries.json');
  writeFileSync(
    file,
    JSON.stringify({
      'insecure-registries': ['a.lan:1'],
      'registry-mirrors': ['https://hub-mirror.lan'],
      registries: { 'quay.io': { location: 'quay-cache.lan:8443', insecure: true, mirrors: ['https://m1.lan'] } },
    }),
  );
  const cfg = await loadRegistriesConfig(file);
  t.same(endpointsFor('quay.io', cfg, true).map((e) => e.base), ['https://m1.lan', 'http://quay-cache.lan:8443']);
  t.same(endpointsFor('docker.io', cfg, true).map((e) => e.base), ['https://hub-mirror.lan', 'https://registry-1.docker.io']);
  t.equal(endpointsFor('a.lan:1', cfg, true)[0]!.base, 'http://a.lan:1');
  writeFileSync(file, '{"registries": []}');
  await t.rejects(loadRegistriesConfig(file), { code: 'CONFIG', message: new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')) });
  await t.rejects(loadRegistriesConfig(join(dir, 'missing.json')), { code: 'CONFIG' }, 'an explicit file must exist');
});

t.test("credentials: Docker's config.json keys, Hub's legacy URL key, no secrets in errors", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        'https://ghcr.io': { auth: Buffer.from('gh:tok').toString('base64') },
        'plain.lan': { username: 'u', password: 'p' },
        'broken.lan': { auth: Buffer.from('no-colon-secret').toString('base64') },
      },
    }),
  );
  t.same(await getCredentials('docker.io', file), { username: 'hubuser', password: 'hub:pass' });
  t.same(await getCredentials('ghcr.io', file), { username: 'gh', password: 'tok' });
  t.same(await getCredentials('plain.lan', file), { username: 'u', password: 'p' });
  t.equal(await getCredentials('other.lan', file), undefined);
  await t.rejects(getCredentials('broken.lan', file), { code: 'CONFIG' });
  await getCredentials('broken.lan', file).catch((e) => t.notOk(String(e.message).includes('no-colon-secret')));
  await saveCredentials('docker.io', { username: 'n', password: 'm' }, file);
  t.same(await getCredentials('docker.io', file), { username: 'n', password: 'm' });
});

t.test('WWW-Authenticate challenges', async (t) => {
  t.same(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/golang:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/golang:pull' } },
  ]);
  t.same(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  t.same(parseChallenges(['Bearer realm="r", error="insufficient_scope"', 'Basic realm="b"']).map((c) => c.scheme), ['bearer', 'basic']);
  t.same(parseChallenges('Bearer realm="a\\"b",service=plain').at(0)?.params, { realm: 'a"b', service: 'plain' });
  t.same(parseChallenges(undefined), []);
});
