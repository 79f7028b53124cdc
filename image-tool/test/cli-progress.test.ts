// Pull progress as users see it: bars and a total on a terminal (a real pty), plain
// lines in a pipe, nothing with --quiet.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startRegistry, type RegistryHandle } from './helpers/registry.js';
import { seedImage, tempDir } from './helpers/seed.js';
import { lxrImageBin, runCli } from './helpers/cli.js';
import { runOnPty } from '../../test/helpers/pty.js';

let reg: RegistryHandle;
t.before(async () => {
  reg = await startRegistry();
});
t.teardown(() => reg?.stop());

t.test('on a TTY: a bar per layer and a total', async (t) => {
  const img = await seedImage(reg.host, 'progress/tty:1', { layers: [{ files: { a: randomBytes(300_000) } }, { files: { b: randomBytes(200_000) } }] });
  const store = tempDir(t);
  const r = await runOnPty([process.execPath, lxrImageBin(), 'pull', '--store', store, img.name]);
  const out = r.output;
  t.equal(r.status, 0, 'pull succeeds');
  t.match(out, /Pulling .*progress\/tty:1/);
  for (const l of img.layers) t.match(out, new RegExp(`${l.digest.slice(7, 19)}: (Done|\\[)`), `a line for layer ${l.digest.slice(7, 19)}`);
  t.match(out, /Total \[=+\] /, 'a total bar');
  t.match(out, /\x1b\[2K/, 'lines are redrawn in place');
  t.match(out, new RegExp(`Digest: ${img.manifest.digest}`));
});

t.test('in a pipe: one line per layer; --quiet: none', async (t) => {
  const img = await seedImage(reg.host, 'progress/pipe:1', { layers: [{ files: { a: 'a' } }, { files: { b: 'b' } }] });
  const r = await runCli(['pull', '--store', tempDir(t), img.name]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stderr, /\x1b\[/, 'no escape sequences');
  t.equal(r.stderr.split('\n').filter((l) => l.startsWith('Layer ')).length, 2);
  const q = await runCli(['pull', '-q', '--store', tempDir(t), img.name]);
  t.equal(q.stderr, '');
});
