// Start-up loader of the CLIs, copied by scripts/build.mjs into dist/ (dist/load.js) and
// used by dist/<cli>.js. It runs the CommonJS bundle dist/<cli>.cjs through vm.Script with a
// V8 code cache (dist/<cli>.cjs.cache), so that a command does not parse and compile ~2 MB
// of JavaScript each time it starts. Node 20 has no code cache for ES modules
// (module.enableCompileCache came in Node 22), hence CommonJS here; bin/ and dist/ are
// CommonJS too (their package.json says so), since Node 20 takes ~5 ms longer to start from
// an ES module entry point.
//
// The build makes the cache from a --help run: the argument parser, but none of a command's
// own code. So the cache also records which commands it holds the code of, and the first run
// of any other command (the CLI names it: learnCommand in runtime/cli/code-cache.ts) writes
// the cache again as it exits, with everything compiled by then; later runs of that command
// start with its code compiled (~25 ms less for a `lxr-runtime run` here). A cache that
// cannot be written (a read-only install) stays as it is.
//
// The first line of the cache is "<build id> <command>,<command>...": the build id is the
// bundle's first line, so a cache from another build is never used (V8 itself only checks
// the source's length). When the cache is missing, stale, or rejected by V8 (another Node
// version or V8 flags), the bundle is compiled as usual: slower, same behaviour, and the
// first command run writes a new cache.
'use strict';
const { readFileSync, renameSync, unlinkSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script, constants } = require('node:vm');

const ID_RE = /^\/\/ lxr-build-id: ([0-9a-f]+)\n/;

const LEARN = Symbol.for('lxr.codeCache.learn');

// V8 ties a code cache to its flags: a cache made after v8.setFlagsFromString (the image
// tool sets --liftoff-only and --expose-gc for a pull) is rejected by every process that
// starts with the usual flags. So such a process never writes the cache.
let flagsChanged = false;
const v8 = require('node:v8');
const setFlagsFromString = v8.setFlagsFromString;
v8.setFlagsFromString = function (flags) {
  flagsChanged = true;
  return setFlagsFromString.call(this, flags);
};

function start(name) {
  const file = join(__dirname, `${name}.cjs`);
  const cacheFile = `${file}.cache`;
  // the build makes the bundle pure ASCII, so latin1 reads it as is, into a one-byte string
  const source = readFileSync(file, 'latin1');
  const id = ID_RE.exec(source)?.[1] ?? '';
  let cachedData;
  let held = [];
  try {
    const c = readFileSync(cacheFile);
    const nl = c.indexOf(10);
    const [cacheId, commands = ''] = c.subarray(0, nl < 0 ? 0 : nl).toString('latin1').split(' ');
    if (id && cacheId === id) {
      cachedData = c.subarray(nl + 1);
      held = commands.split(',').filter(Boolean);
    }
  } catch {
    /* no cache: compile */
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    // an import() the bundler left (a built-in module, an external) loads as it would in a file
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (script.cachedDataRejected) held = [];
  let writing = false;
  const learn = (command) => {
    if (!id || writing || held.includes(command)) return;
    writing = true;
    process.once('exit', () => {
      if (flagsChanged) return;
      const tmp = `${cacheFile}.tmp-${process.pid}`;
      try {
        const header = `${id} ${[...held, command].sort().join(',')}\n`;
        writeFileSync(tmp, Buffer.concat([Buffer.from(header), script.createCachedData()]));
        renameSync(tmp, cacheFile);
      } catch {
        try {
          unlinkSync(tmp);
        } catch {
          /* never made */
        }
      }
    });
  };
  globalThis[LEARN] = learn;
  // the build runs each CLI once with LXR_WRITE_CODE_CACHE=1 (--help)
  if (process.env.LXR_WRITE_CODE_CACHE === '1') learn('help');
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
}

module.exports = { start };
