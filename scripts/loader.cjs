// Start-up loader of the CLIs, copied by scripts/build.mjs into dist/ (dist/load.js) and
// used by dist/<cli>.js. It runs the CommonJS bundle dist/<cli>.cjs through vm.Script with a
// V8 code cache (dist/<cli>.cjs.cache) made at build time, so that a command does not parse
// and compile ~2 MB of JavaScript each time it starts. Node 20 has no code cache for ES
// modules (module.enableCompileCache came in Node 22), hence CommonJS here; bin/ and dist/
// are CommonJS too (their package.json says so), since Node 20 takes ~5 ms longer to start
// from an ES module entry point.
//
// The cache carries the build id of the bundle it was made from (the bundle's first line), so
// a cache from another build is never used: V8 itself only checks the source's length. When
// the cache is missing, stale, or rejected by V8 (another Node version or V8 flags), the bundle
// is compiled as usual: slower, same behaviour.
'use strict';
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script, constants } = require('node:vm');

const ID_RE = /^\/\/ lxr-build-id: ([0-9a-f]+)\n/;

function start(name) {
  const file = join(__dirname, `${name}.cjs`);
  const cacheFile = `${file}.cache`;
  // the build makes the bundle pure ASCII, so latin1 reads it as is, into a one-byte string
  const source = readFileSync(file, 'latin1');
  const id = ID_RE.exec(source)?.[1] ?? '';
  let cachedData;
  try {
    const c = readFileSync(cacheFile);
    const header = Buffer.from(`${id}\n`);
    if (id && c.subarray(0, header.length).equals(header)) cachedData = c.subarray(header.length);
  } catch {
    /* no cache: compile */
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    // an import() the bundler left (a built-in module, an external) loads as it would in a file
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  // The build runs each CLI once with LXR_WRITE_CODE_CACHE=1 (--help) and keeps what V8
  // compiled by the time it exits: the module bodies and the argument parser.
  if (process.env.LXR_WRITE_CODE_CACHE === '1' && id) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.tmp-${process.pid}`;
      writeFileSync(tmp, Buffer.concat([Buffer.from(`${id}\n`), script.createCachedData()]));
      renameSync(tmp, cacheFile);
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
}

module.exports = { start };
