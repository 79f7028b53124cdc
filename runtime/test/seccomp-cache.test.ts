// Compiled seccomp programs are kept under the runtime's root (<root>/@seccomp/) and used
// again for the same profile (runtime/linux/seccomp-cache.ts), but only from a file that
// passes every check: the caller's own, writable by nobody else, the same key, the
// program's checksum. Anything else is compiled again and replaced.
import t from 'tap';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';
import type { Seccomp } from '../../oci-spec/types.js';

const SCRIPT = 'mkdir /tmp/d 2>/dev/null; echo mkdir=$?; chmod 700 /tmp 2>/dev/null; echo chmod=$?';
const denyMkdir: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
const denyChmod: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod', 'fchmodat', 'fchmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };

function bundleWith(seccomp: Seccomp) {
  return makeBundle((s) => {
    s.process!.args = ['sh', '-c', SCRIPT];
    s.linux!.seccomp = seccomp;
  });
}

t.test('a profile is compiled once, its program kept and checked before use', async (t) => {
  const { root, cleanup } = makeRoot();
  const a = bundleWith(denyMkdir);
  const b = bundleWith(denyChmod);
  t.teardown(() => (a.cleanup(), b.cleanup(), cleanup()));
  const cache = join(root, '@seccomp');
  const run = (dir: string) => {
    const r = runtime(root, ['run', '-b', dir, uniqueId('scc')]);
    t.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const A = 'mkdir=1\nchmod=0\n';
  const B = 'mkdir=0\nchmod=1\n';
  t.equal(run(a.dir), A, 'profile A denies mkdir');
  const [keyA, ...more] = readdirSync(cache);
  t.same(more, [], 'one program kept');
  const fileA = join(cache, keyA!);
  const goodA = readFileSync(fileA);
  t.equal(runtime(root, ['list', '-q']).stdout, '', 'the cache is not listed as a container');
  t.equal(run(b.dir), B, 'profile B denies chmod');
  const keyB = readdirSync(cache).find((k) => k !== keyA)!;
  const goodB = readFileSync(join(cache, keyB));

  // B's program under A's key, with a header that passes the checks: A's containers get it,
  // which shows the kept program is what runs (and why the directory must be ours alone)
  const progB = goodB.subarray(goodB.indexOf(10) + 1);
  const head = { key: keyA, sha256: createHash('sha256').update(progB).digest('hex'), debug: [] };
  const forged = Buffer.concat([Buffer.from(JSON.stringify(head) + '\n'), progB]);
  writeFileSync(fileA, forged);
  t.equal(run(a.dir), B, 'a valid entry is used as it is');

  // ... but not when others could have written it
  chmodSync(fileA, 0o666);
  t.equal(run(a.dir), A, 'a group/world-writable entry is compiled again');
  t.same(readFileSync(fileA), goodA, 'and replaced');

  // a program that does not match its checksum
  const torn = Buffer.from(goodA);
  torn[torn.length - 3]! ^= 0xff;
  writeFileSync(fileA, torn);
  t.equal(run(a.dir), A, 'a corrupt entry is compiled again');
  t.same(readFileSync(fileA), goodA, 'and replaced');

  // an entry for another key
  writeFileSync(fileA, Buffer.concat([Buffer.from(JSON.stringify({ ...head, key: keyB, sha256: createHash('sha256').update(goodA.subarray(goodA.indexOf(10) + 1)).digest('hex') }) + '\n'), goodA.subarray(goodA.indexOf(10) + 1)]));
  t.equal(run(a.dir), A, 'an entry naming another key is compiled again');
  t.same(readFileSync(fileA), goodA, 'and replaced');
});
