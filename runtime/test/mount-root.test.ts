// A mount whose destination is "/" covers the rootfs, as in runc: the mounts after it,
// the devices and pivot_root all go to the new mount.
import t from 'tap';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyValues, makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

t.test('a bind mount on "/" becomes the container\'s root', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  for (const [name, options] of [['rw', ['rbind']], ['ro', ['rbind', 'ro']]] as const) {
    const b = makeBundle((s) => {
      s.linux!.rootfsPropagation = 'rprivate';
      s.process!.args = ['sh', '-c', [
        'echo other=$(cat /OTHER)', 'echo proc=$(grep -c " /proc " /proc/self/mountinfo)', 'echo null=$(stat -c %t:%T /dev/null)',
        'touch /written 2>/dev/null && echo ro=no || echo ro=yes',
      ].join('; ')];
    });
    const other = join(b.dir, 'other');
    cpSync(b.rootfs, other, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(other, 'OTHER'), 'yes');
    const cfgPath = join(b.dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.mounts.unshift({ destination: '/', type: 'bind', source: other, options });
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const r = runtime(root, ['run', '-b', b.dir, uniqueId('slash')]);
    b.cleanup();
    t.equal(r.status, 0, `${name}: ${r.stderr}`);
    const o = keyValues(r.stdout);
    t.equal(o.other, 'yes', `${name}: the mount's files are the root`);
    t.equal(o.proc, '1', `${name}: the later mounts are made in it`);
    t.equal(o.null, '1:3', `${name}: and the devices`);
    t.equal(o.ro, name === 'ro' ? 'yes' : 'no', `${name}: its options apply to it`);
  }
});
