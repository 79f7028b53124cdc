// What `npm run build` leaves in dist/ for the CLIs: one CommonJS bundle each, pure ASCII,
// with a V8 code cache that belongs to it and that V8 accepts (scripts/loader.cjs), and that
// the first run of a command writes one of its own beside. A cache V8 rejects would not break
// anything, only make every command ~20-50 ms slower: this test is what notices.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLIS = ['lxr', 'lxr-runtime', 'lxr-image'];
const env = { ...process.env };
delete env.NODE_OPTIONS; // tap's loader flags: the check must run as a user's node does

// Loads each bundle as the loader does, with the given cache file, and reports what V8 said
// about it and what its first line ("<build id> <command>") says.
const CHECK = `
import { readFileSync } from 'node:fs';
import { Script, constants } from 'node:vm';
const out = {};
for (const pair of process.argv.slice(1)) { // node -e: the arguments start at argv[1]
  const [file, cacheFile] = pair.split('=');
  const source = readFileSync(file, 'latin1');
  const id = /^\\/\\/ lxr-build-id: ([0-9a-f]+)\\n/.exec(source)?.[1];
  const cache = readFileSync(cacheFile);
  const nl = cache.indexOf(10);
  const [cacheId, command] = cache.subarray(0, nl).toString('latin1').split(' ');
  const s = new Script('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', {
    filename: file, cachedData: cache.subarray(nl + 1), importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  out[cacheFile] = { id: !!id, header: cacheId === id, rejected: s.cachedDataRejected, command };
}
console.log(JSON.stringify(out));
`;

type Checked = Record<string, { id: boolean; header: boolean; rejected: boolean; command: string }>;
/** [bundle, cache file] pairs */
const check = (pairs: [string, string][]): Checked => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHECK, ...pairs.map((p) => p.join('='))], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Checked;
};

t.test('each CLI bundle has a code cache that V8 accepts', async (t) => {
  const files = CLIS.map((c) => join(REPO, 'dist', `${c}.cjs`));
  for (const f of files) t.ok(existsSync(f) && existsSync(`${f}.cache`), `${f} and its cache exist (npm run build)`);
  const res = check(files.map((f) => [f, `${f}.cache`]));
  for (const f of files) {
    t.same(res[`${f}.cache`], { id: true, header: true, rejected: false, command: 'help' }, `${f}: build id, the build's cache (--help), accepted`);
  }
});

t.test('the first run of a command writes its own code cache, and later runs use it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lxr-cache-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const file = join(REPO, 'dist', 'lxr-runtime.cjs');
  const mine = `${file}.list.cache`;
  rmSync(mine, { force: true });
  const list = () => spawnSync(process.execPath, [join(REPO, 'bin', 'lxr-runtime.js'), '--root', root, '--log-format', 'json', 'list'], { env, encoding: 'utf8' });
  const r = list();
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(mine), 'lxr-runtime.cjs.list.cache is written');
  t.same(check([[file, mine]])[mine], { id: true, header: true, rejected: false, command: 'list' }, 'for this build and list, and V8 accepts it');
  const made = statSync(mine).mtimeMs;
  const again = list();
  t.equal(again.status, 0, again.stderr);
  t.equal(statSync(mine).mtimeMs, made, 'a second run starts from it and leaves it as it is');
  t.same(check([[file, `${file}.cache`]])[`${file}.cache`]!.command, 'help', 'the build\'s cache is left as it is');
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
