// The rootfs is an overlay of shared per-layer snapshots: an image of 120 layers (whose
// lowerdir list would overflow the mount data page with full paths) mounts and shows every
// layer; two containers share the snapshots; rm keeps them, rmi + gc removes them.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, mountsUnder, registryImage, type LxrEnv } from './helpers/env.js';
import { overlayOptions } from '../snapshots/overlay.js';

const LAYERS = 120;

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    const extra: Record<string, string>[] = [];
    for (let i = 1; i < LAYERS; i++) extra.push({ [`layer${i}`]: `${i}\n`, shared: `top is ${i}\n` });
    image = await registryImage(t, 'test/many:1', { cmd: ['sleep', '60'], extraLayers: extra });
  });

  const snapshots = () => readdirSync(join(env.root, 'snapshots')).filter((f) => !f.startsWith('.')).sort();

  t.test('the option string stays small however long the snapshot paths are', async (t) => {
    t.ok(overlayOptions(LAYERS).length < 1200, `${overlayOptions(LAYERS).length} bytes for ${LAYERS} layers`);
    t.ok(overlayOptions(500).length < 4096, 'even the kernel maximum of 500 layers fits in a page');
  });

  t.test(`an image of ${LAYERS} layers runs; containers share its snapshots`, async (t) => {
    const a = lxr(env, ['create', '--name', 'a', image]);
    t.equal(a.status, 0, a.stderr);
    const b = lxr(env, ['create', '--name', 'b', image]);
    t.equal(b.status, 0, b.stderr);
    const snaps = snapshots();
    t.equal(snaps.length, LAYERS, 'one snapshot per layer, unpacked once for both containers');
    const idA = a.stdout.trim();
    const opts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === join(env.root, 'containers', idA, 'merged'));
    t.ok(opts, 'the overlay of a is mounted');
    t.match(opts!, / - overlay overlay /);

    const r = lxr(env, ['run', '--rm', image, 'sh', '-c', `cat /layer1 /layer${LAYERS - 1} /shared; ls / | grep -c '^layer'; echo new > /layer1`]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, `1\n${LAYERS - 1}\ntop is ${LAYERS - 1}\n${LAYERS - 1}\n`, 'bottom and top layers are visible, upper layers win');
    t.equal(readFileSync(join(env.root, 'snapshots', snaps.find((s) => readdirSync(join(env.root, 'snapshots', s)).includes('layer1'))!, 'layer1'), 'utf8'), '1\n', 'writes went to the upper layer, not the shared snapshot');

    t.equal(lxr(env, ['rm', '-f', 'a', 'b']).status, 0);
    t.same(mountsUnder(env.root), [], 'overlays unmounted');
    t.same(snapshots(), snaps, 'rm keeps the snapshots');
    const gc = lxr(env, ['gc']);
    t.equal(gc.status, 0, gc.stderr);
    t.same(snapshots(), snaps, 'gc keeps snapshots of images still in the store');
    const rmi = lxr(env, ['rmi', image]);
    t.equal(rmi.status, 0, rmi.stderr);
    t.same(snapshots(), [], 'rmi removes the image and its now unused snapshots');
    t.same(readdirSync(join(env.root, 'snapshots')), [], 'and their lock files (.NAME.lock)');
    t.same(JSON.parse(lxr(env, ['images', '--format', 'json']).stdout), []);
  });

  t.test('rmi refuses an image a container uses', async (t) => {
    t.equal(lxr(env, ['pull', image]).status, 0);
    t.equal(lxr(env, ['create', '--name', 'user', image]).status, 0);
    const r = lxr(env, ['rmi', image]);
    t.not(r.status, 0);
    t.match(r.stderr, /used by container user/);
    t.equal(lxr(env, ['rm', '-f', 'user']).status, 0);
  });
}
