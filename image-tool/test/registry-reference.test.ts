// Reference normalisation as users type references (Docker's rules).
import t from 'tap';
import { familiarName, normalizeReference, parseReference } from '../core/reference.js';
import { ImageError } from '../core/errors.js';

t.test('short names expand to Docker Hub library images', async (t) => {
  t.equal(normalizeReference('golang'), 'docker.io/library/golang:latest');
  t.equal(normalizeReference('golang:1.22'), 'docker.io/library/golang:1.22');
  t.equal(normalizeReference('docker.io/golang'), 'docker.io/library/golang:latest');
  t.equal(normalizeReference('index.docker.io/library/golang:1'), 'docker.io/library/golang:1');
  t.equal(normalizeReference('user/repo:tag'), 'docker.io/user/repo:tag');
  t.equal(normalizeReference('docker://alpine'), 'docker.io/library/alpine:latest');
});

t.test('registry hosts are recognised by a dot, a port or localhost', async (t) => {
  t.equal(normalizeReference('ghcr.io/org/repo:tag'), 'ghcr.io/org/repo:tag');
  t.equal(normalizeReference('localhost/app'), 'localhost/app:latest');
  t.equal(normalizeReference('localhost:5000/a/b/c:v1'), 'localhost:5000/a/b/c:v1');
  const d = 'sha256:' + 'a'.repeat(64);
  t.equal(normalizeReference(`host:5000/repo@${d}`), `host:5000/repo@${d}`);
  t.same(parseReference(`host:5000/repo@${d}`), { registry: 'host:5000', repository: 'repo', digest: d });
  t.same(parseReference(`repo:tag@${d}`), { registry: 'docker.io', repository: 'library/repo', tag: 'tag', digest: d });
  t.equal(familiarName(parseReference('golang')), 'golang:latest');
  t.equal(familiarName(parseReference('ghcr.io/o/r:1')), 'ghcr.io/o/r:1');
});

t.test('bad references fail with the input in the message', async (t) => {
  for (const bad of ['', 'UPPER', 'repo:bad tag', 'repo@sha256:123', 'a//b', 'repo:', '-lead']) {
    let err: unknown;
    try {
      parseReference(bad);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ImageError, `${bad} is refused`);
    t.equal((err as ImageError).code, 'BAD_REFERENCE');
    t.ok((err as Error).message.includes(`"${bad}"`), (err as Error).message);
  }
});
