// Start-up loader of the CLIs, copied by scripts/build.mjs into dist/ (dist/load.js) and
// used by dist/<cli>.js. It runs the CommonJS bundle dist/<cli>.cjs through vm.Script with a
// V8 code cache (dist/<cli>.cjs.cache), so that a command does not parse and compile ~2 MB
// of JavaScript each time it starts. Node 20 has no code cache for ES modules
// (module.enableCompileCache came in Node 22), hence CommonJS here; bin/ and dist/ are
// CommonJS too (their package.json says so), since Node 20 takes ~5 ms longer to start from
// an ES module entry point.
//
// The build makes the cache from a --help run: the argument parser, but none of a command's
// own code. So each command gets a cache of its own, dist/<cli>.cjs.<command>.cache: the
// first run of a command (the CLI names it: learnCommand in common/cli/code-cache.ts)
// writes it as it exits, with everything compiled by then, and later runs of that command
// start from it with its code compiled (~25 ms less for a `lxr-runtime run` here). One cache
// per command, not one for all of them, because V8 deserializes all of a cache at start: a
// cache with every command's code in it costs `lxr ps` ~10 ms more than one with its own. A
// command's cache is found before the arguments are parsed, as the first of the first few
// words of the arguments that has one (`--root /x start ID` finds start's). A cache that
// cannot be written (a read-only install) is not there, and the command starts from the
// build's cache.
//
// The first line of a cache is "<build id> <command>": the build id is the bundle's first
// line, so a cache from another build is never used (V8 itself only checks the source's
// length). When the cache is missing, stale, or rejected by V8 (another Node version or V8
// flags), the bundle is compiled as usual: slower, same behaviour, and the command's cache
// is written again.
'use strict';
const { accessSync, constants: constants_, readFileSync, renameSync, unlinkSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script, constants } = require('node:vm');

const ID_RE = /^\/\/ lxr-build-id: ([0-9a-f]+)\n/;

const LEARN = Symbol.for('lxr.codeCache.learn');

// V8 ties a code cache to its flags: a cache made after v8.setFlagsFromString (the image
// tool sets --liftoff-only and --expose-gc for a pull) is rejected by every process that
// starts with the usual flags. So such a process never writes the cache: the code that
// changes V8's flags says so in this global (image-tool/core/blobs-memory.ts). It is not
// found by wrapping node:v8's setFlagsFromString here, since loading node:v8 costs every
// command ~3 ms.
const FLAGS_CHANGED = Symbol.for('lxr.codeCache.flagsChanged');

const WORD_RE = /^[a-z_][a-z0-9_-]*$/;

/** The cached data of a cache file made for this build, or undefined. */
function readCache(path, id) {
  try {
    const c = readFileSync(path);
    const nl = c.indexOf(10);
    if (nl > 0 && c.subarray(0, nl).toString('latin1').split(' ')[0] === id) return c.subarray(nl + 1);
  } catch {
    /* none */
  }
  return undefined;
}

function writable(dir) {
  try {
    accessSync(dir, constants_.W_OK);
    return true;
  } catch {
    return false;
  }
}

// glibc's malloc gives each thread that allocates while another holds the lock an arena
// (a heap) of its own, and each keeps the pages it once needed: in a pull or an unpack, V8's
// and libuv's threads have their own by the time the command's code runs. One arena for the
// process, set here before the bundle is even compiled, is what MALLOC_ARENA_MAX=1 in the
// environment would do: peak RSS on the bench/pull image, unpack about -5 MB and pull about
// -4 MB, at no measured cost in time (issue 14). Only for these commands: their memory is what
// is counted. Through koffi's native module alone (its entry point loads node:https and more),
// the one native/koffi.ts loads later, so it is loaded once. LXR_MALLOC_ARENAS=default: as glibc.
const ONE_ARENA = { 'lxr-image': ['pull', 'unpack'] };
const KOFFI_ARCH = { x64: 'x64', arm64: 'arm64' };

function oneMallocArena(file) {
  if (process.env.LXR_MALLOC_ARENAS === 'default' || process.env.MALLOC_ARENA_MAX || process.platform !== 'linux' || !KOFFI_ARCH[process.arch]) return;
  try {
    const koffi = createRequire(file)(`koffi/build/koffi/linux_${KOFFI_ARCH[process.arch]}/koffi.node`);
    koffi.load('libc.so.6').func('int mallopt(int, int)')(-8 /* M_ARENA_MAX */, 1);
  } catch {
    /* not glibc, or koffi elsewhere: malloc as it is */
  }
}

function start(name) {
  const file = join(__dirname, `${name}.cjs`);
  const baseCache = `${file}.cache`;
  const commandCache = (command) => `${file}.${command}.cache`;
  // the build makes the bundle pure ASCII, so latin1 reads it as is, into a one-byte string
  const source = readFileSync(file, 'latin1');
  const id = ID_RE.exec(source)?.[1] ?? '';
  // the cache of the command: the first of the first four words with one; else the build's
  let from; // the command whose cache was read ('help': the build's)
  let cachedData;
  const words = process.argv.slice(2).filter((w) => WORD_RE.test(w)).slice(0, 4);
  if (ONE_ARENA[name]?.includes(words[0])) oneMallocArena(file);
  if (id) {
    for (const a of words) {
      cachedData = readCache(commandCache(a), id);
      if (cachedData) {
        from = a;
        break;
      }
    }
    // Without a cache of its own, a command starts from the build's cache only where it
    // cannot write one (a read-only install): a cache written by a process that started from
    // the build's cache holds the argument parser too (V8 writes everything it has compiled,
    // deserialized code included), and V8 deserializes all of it on every start (`state`'s
    // cache, which never loads yargs: 334 KB that way, 128 KB without). So the first run of
    // a command compiles what it runs, once, and its cache holds that alone.
    if (!cachedData && (!words.length || !writable(dirname(file)))) {
      cachedData = readCache(baseCache, id);
      if (cachedData) from = 'help';
    }
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    // an import() the bundler left (a built-in module, an external) loads as it would in a file
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (script.cachedDataRejected) from = undefined;
  let writing = false;
  const learn = (command) => {
    // only a name the search for a command's cache can find
    if (!id || writing || command === from || !WORD_RE.test(command)) return;
    writing = true;
    const target = command === 'help' ? baseCache : commandCache(command);
    process.once('exit', () => {
      // a word before the command found another command's cache: this one's may be there
      if (globalThis[FLAGS_CHANGED] || (from !== undefined && readCache(target, id))) return;
      const tmp = `${target}.tmp-${process.pid}`;
      try {
        writeFileSync(tmp, Buffer.concat([Buffer.from(`${id} ${command}\n`), script.createCachedData()]));
        renameSync(tmp, target);
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
