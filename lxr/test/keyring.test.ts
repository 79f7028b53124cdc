// The front end's containers cannot read the keys of the user who runs lxr: each container
// has a session keyring of its own (and the default seccomp profile refuses keyctl too).
// The key lives in a session keyring the test makes for itself, never in the host's.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, lxrEnv, registryImage } from './helpers/env.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !BUSYBOX ? 'needs busybox' : false;

const KEYS = `
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  if (argc > 3 && !strcmp(argv[1], "session")) {
    if (syscall(SYS_keyctl, 1, NULL) < 0) return 2;
    long key = syscall(SYS_add_key, "user", "lxr-test-secret", "s3cret", 6, -3);
    if (key < 0) return 2;
    FILE *f = fopen(argv[2], "w");
    fprintf(f, "%ld\\n", key);
    fclose(f);
    execvp(argv[3], argv + 3);
    return 2;
  }
  FILE *f = fopen(argv[2], "r");
  long key = 0;
  if (!f || fscanf(f, "%ld", &key) != 1) return 2;
  char buf[64] = {0};
  long n = syscall(SYS_keyctl, 11, key, buf, sizeof buf - 1);
  printf("read=%s\\n", n < 0 ? strerror(errno) : buf);
  return 0;
}
`;

t.test('lxr run: the key of the session that ran lxr is out of reach', { skip }, async (t) => {
  const e = lxrEnv(t);
  const image = await registryImage(t, 'keys/busybox:1');
  const work = mkdtempSync(join(tmpdir(), 'lxr-fe-keys-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'keys.c'), KEYS);
  const cc = spawnSync('cc', ['-static', '-O1', '-o', join(work, 'keys'), join(work, 'keys.c')], { encoding: 'utf8' });
  if (!t.equal(cc.status, 0, `a static test program compiles: ${cc.stderr}`)) return;
  const run = (extra: string[]): string => {
    const r = spawnSync(join(work, 'keys'), ['session', join(work, 'serial'), process.execPath, LXR, 'run', '--rm', ...extra, '-v', `${work}:/k:ro`, image, '/k/keys', 'read', '/k/serial'], { encoding: 'utf8', env: e.env });
    t.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const out = run([]);
  t.match(out, /^read=(Permission denied|Operation not permitted)$/m, `default: ${out}`);
  const unconfined = run(['--security-opt', 'seccomp=unconfined']);
  t.notMatch(unconfined, /s3cret/, `without the seccomp profile, the own session keyring still hides it: ${unconfined}`);
});
