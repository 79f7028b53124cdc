// lxr import / save / load: a rootfs tarball becomes an image lxr runs (where no registry is
// reachable), and a saved image loads into another store and runs the same.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BUSYBOX, busyboxLayer, lxr, lxrEnv, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is needed (apt-get install -y busybox-static)');
} else {
  const env: LxrEnv = lxrEnv(t);
  const other: LxrEnv = lxrEnv(t);
  const dir = mkdtempSync(join(tmpdir(), 'lxr-fe-archive-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  t.test('import a rootfs tarball and run it; save, load elsewhere, run again', async (t) => {
    const tarball = join(dir, 'rootfs.tar.gz');
    writeFileSync(tarball, gzipSync(busyboxLayer()));
    const i = lxr(env, ['import', tarball, 'localhost/rootfs:1']);
    t.equal(i.status, 0, i.stderr);
    t.match(i.stdout, /^Imported localhost\/rootfs:1 sha256:/);
    const r = lxr(env, ['run', '--rm', 'localhost/rootfs:1', 'sh', '-c', 'echo ran; cat /etc/passwd | head -1']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'ran\nroot:x:0:0:root:/root:/bin/sh\n');
    for (const format of ['oci-archive', 'docker-archive']) {
      const file = join(dir, `saved-${format}.tar`);
      const s = lxr(env, ['save', '--format', format, '-o', file, 'localhost/rootfs:1']);
      t.equal(s.status, 0, s.stderr);
      const l = lxr(other, ['load', '-i', file]);
      t.equal(l.status, 0, l.stderr);
      const again = lxr(other, ['run', '--rm', 'localhost/rootfs:1', 'echo', format]);
      t.equal(again.stdout, `${format}\n`, again.stderr);
      lxr(other, ['rmi', 'localhost/rootfs:1']);
    }
  });
}
