// What `npm run build` leaves in dist/ for the CLIs: one CommonJS bundle each, pure ASCII,
// with a V8 code cache that belongs to it and that V8 accepts (scripts/loader.cjs), and that
// the first run of a command adds that command's code to. A cache V8 rejects would not break
// anything, only make every command ~20-50 ms slower: this test is what notices.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLIS = ['lxr', 'lxr-runtime', 'lxr-image'];
const env = { ...process.env };
delete env.NODE_OPTIONS; // tap's loader flags: the check must run as a user's node does

// Loads each bundle as the loader does and reports what V8 said about its cache, and which
// commands the cache's first line ("<build id> <command>,...") says it holds.
const CHECK = `
import { readFileSync } from 'node:fs';
import { Script, constants } from 'node:vm';
const out = {};
for (const file of process.argv.slice(1)) { // node -e: the arguments start at argv[1]
  const source = readFileSync(file, 'latin1');
  const id = /^\\/\\/ lxr-build-id: ([0-9a-f]+)\\n/.exec(source)?.[1];
  const cache = readFileSync(file + '.cache');
  const nl = cache.indexOf(10);
  const [cacheId, commands] = cache.subarray(0, nl).toString('latin1').split(' ');
  const s = new Script('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', {
    filename: file, cachedData: cache.subarray(nl + 1), importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  out[file] = { id: !!id, header: cacheId === id, rejected: s.cachedDataRejected, commands: commands.split(',') };
}
console.log(JSON.stringify(out));
`;

type Checked = Record<string, { id: boolean; header: boolean; rejected: boolean; commands: string[] }>;
const check = (files: string[]): Checked => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHECK, ...files], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Checked;
};

t.test('each CLI bundle has a code cache that V8 accepts', async (t) => {
  const files = CLIS.map((c) => join(REPO, 'dist', `${c}.cjs`));
  for (const f of files) t.ok(existsSync(f) && existsSync(`${f}.cache`), `${f} and its cache exist (npm run build)`);
  const res = check(files);
  for (const f of files) {
    const { commands, ...rest } = res[f]!;
    t.same(rest, { id: true, header: true, rejected: false }, `${f}: build id, matching cache, accepted`);
    t.ok(commands.includes('help'), `${f}: the cache holds what --help compiles (the build's run)`);
  }
});

t.test('the first run of a command adds its code to the cache', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lxr-cache-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const file = join(REPO, 'dist', 'lxr-runtime.cjs');
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'lxr-runtime.js'), '--root', root, 'list'], { env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const after = check([file])[file]!;
  t.ok(after.commands.includes('list') && after.commands.includes('help'), `the cache now holds list's code as well (${after.commands.join(',')})`);
  t.same([after.header, after.rejected], [true, false], 'and V8 still accepts it');
  const again = spawnSync(process.execPath, [join(REPO, 'bin', 'lxr-runtime.js'), '--root', root, 'list'], { env, encoding: 'utf8' });
  t.equal(again.status, 0, again.stderr);
  t.ok(check([file])[file]!.commands.includes('list'), 'a second run keeps it');
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
