// What `npm run build` leaves in dist/ for the CLIs: one CommonJS bundle each, pure ASCII,
// with a V8 code cache that belongs to it and that V8 accepts (scripts/loader.cjs). A cache
// V8 rejects would not break anything, only make every command ~20 ms slower: this test is
// what notices.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLIS = ['lxr', 'lxr-runtime', 'lxr-image'];
const env = { ...process.env };
delete env.NODE_OPTIONS; // tap's loader flags: the check must run as a user's node does

// Loads each bundle as the loader does and reports what V8 said about its cache.
const CHECK = `
import { readFileSync } from 'node:fs';
import { Script, constants } from 'node:vm';
const out = {};
for (const file of process.argv.slice(1)) { // node -e: the arguments start at argv[1]
  const source = readFileSync(file, 'latin1');
  const id = /^\\/\\/ lxr-build-id: ([0-9a-f]+)\\n/.exec(source)?.[1];
  const cache = readFileSync(file + '.cache');
  const header = Buffer.from(id + '\\n');
  const s = new Script('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', {
    filename: file, cachedData: cache.subarray(header.length), importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  out[file] = { id: !!id, header: cache.subarray(0, header.length).equals(header), rejected: s.cachedDataRejected };
}
console.log(JSON.stringify(out));
`;

t.test('each CLI bundle has a code cache that V8 accepts', async (t) => {
  const files = CLIS.map((c) => join(REPO, 'dist', `${c}.cjs`));
  for (const f of files) t.ok(existsSync(f) && existsSync(`${f}.cache`), `${f} and its cache exist (npm run build)`);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHECK, ...files], { env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as Record<string, { id: boolean; header: boolean; rejected: boolean }>;
  for (const f of files) t.same(res[f], { id: true, header: true, rejected: false }, `${f}: build id, matching cache, accepted`);
});

t.test('bundles are pure ASCII (the loader reads them as latin1)', async (t) => {
  for (const c of CLIS) {
    const b = readFileSync(join(REPO, 'dist', `${c}.cjs`));
    t.equal(b.findIndex((x) => x > 0x7f), -1, `${c}.cjs`);
  }
});

t.test('the CLIs start through the loader, and import() of a built-in works inside them', async (t) => {
  for (const c of CLIS) {
    const r = spawnSync(process.execPath, [join(REPO, 'bin', `${c}.js`), '--help'], { env, encoding: 'utf8' });
    t.equal(r.status, 0, `${c} --help: ${r.stderr}`);
    t.match(r.stdout, new RegExp(`^${c} `), `${c} --help prints its usage`);
  }
  const p = spawnSync(process.execPath, [join(REPO, 'bin', 'lxr-runtime.js'), '--root', '/nonexistent-lxr-root', 'exec', '--process', '/nonexistent.json', 'x'], { env, encoding: 'utf8' });
  t.notMatch(p.stderr, /dynamic import callback/, 'no "dynamic import callback was not specified"');
});
