// Writes the benchmark image (busybox, the same one lxr's tests use) into an OCI layout.
// With "devcontainer", also the applets the Dev Containers CLI's scripts run in the container
// (as lxr/test/devcontainer.test.ts's image has them).
// Usage: tsx bench/frontend/make-image.ts LAYOUT NAME [devcontainer]
import { buildTestImage } from '../../lxr/test/helpers/env.js';

const [layout, name, kind] = process.argv.slice(2);
if (!layout || !name || (kind && kind !== 'devcontainer')) {
  process.stderr.write('usage: make-image.ts LAYOUT NAME [devcontainer]\n');
  process.exit(2);
}
const MORE_APPLETS = ['sed', 'uname', '[', 'rm', 'chmod', 'cp', 'mv', 'ln', 'tr', 'cut', 'sort', 'awk', 'which', 'tee', 'dirname', 'basename', 'find', 'xargs', 'date', 'uniq', 'su'];
buildTestImage(layout, name, {
  cmd: ['sh'],
  ...(kind === 'devcontainer' ? { entryLayers: [MORE_APPLETS.map((a) => ({ path: `bin/${a}`, type: 'symlink' as const, link: 'busybox' }))] } : {}),
});
