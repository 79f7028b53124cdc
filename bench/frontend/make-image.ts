// Writes the benchmark image (busybox, the same one lxr's tests use) into an OCI layout.
// Usage: tsx bench/frontend/make-image.ts LAYOUT NAME
import { buildTestImage } from '../../lxr/test/helpers/env.js';

const [layout, name] = process.argv.slice(2);
if (!layout || !name) {
  process.stderr.write('usage: make-image.ts LAYOUT NAME\n');
  process.exit(2);
}
buildTestImage(layout, name, { cmd: ['sh'] });
