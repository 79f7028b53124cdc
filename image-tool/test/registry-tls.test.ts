// HTTPS registries with a private CA: trusted through "ca" in the registries config,
// refused with a clear hint otherwise; "insecure" skips verification (non-loopback names).
import t from 'tap';
import { startRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/seed.js';
import { expectImageError } from './helpers/assert.js';
import { pullImage } from '../index.js';
import { buildImage } from './helpers/images.js';
import { pushImage } from '../registry/push.js';

t.test('an HTTPS registry with a self-signed certificate', async (t) => {
  const reg = await startRegistry({ tls: true });
  t.teardown(reg.stop);
  t.ok(reg.url.startsWith('https://'));
  const https = `https://${reg.host}`;
  const trusted = { insecureRegistries: [], registryMirrors: [], registries: { 'tls.invalid': { location: https, ca: reg.caFile! } } };
  const untrusted = { insecureRegistries: [], registryMirrors: [], registries: { 'tls.invalid': { location: https } } };

  // Seed through the trusted configuration (push goes to the location too).
  const layout = tempDir(t);
  const img = buildImage(layout, { name: 'tls.invalid/secure/app:1', layers: [{ files: { s: 'over TLS' } }] });
  await pushImage({ store: layout, reference: 'tls.invalid/secure/app:1', config: trusted, retry: { attempts: 1 } });

  const r = await pullImage({ reference: 'tls.invalid/secure/app:1', store: tempDir(t), config: trusted, retry: { attempts: 1 } });
  t.equal(r.manifestDigest, img.manifest.digest);
  await expectImageError(
    t,
    pullImage({ reference: 'tls.invalid/secure/app:1', store: tempDir(t), config: untrusted, retry: { attempts: 1 } }),
    'UNREACHABLE',
    reg.host,
    'certificate',
    '"ca"',
  );
  const insecure = { ...untrusted, insecureRegistries: [reg.host] };
  const r2 = await pullImage({ reference: 'tls.invalid/secure/app:1', store: tempDir(t), config: insecure, retry: { attempts: 1 } });
  t.equal(r2.manifestDigest, img.manifest.digest, 'marked insecure: no certificate check');
});
