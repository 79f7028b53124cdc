// Ways out of the container that runc's CVE history names, each reproduced and shown closed:
// masked paths made of a /dev/null the image controls (CVE-2025-31133 class), the host's
// session keyring, and the runtime's own binary and fds reachable through /proc
// (CVE-2019-5736 class). Every attack runs against a throw-away bundle; none can change the
// host even when a regression lets it through (a write is only tried on the sealed memfd).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../oci-spec/types.js';
import { RUNTIME, cleanEnv, haveBusybox, makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !haveBusybox ? 'needs busybox' : false;

/** Compile a small static C program into dir/name; undefined where no compiler is found. */
function compile(dir: string, name: string, source: string): string | undefined {
  const src = join(dir, `${name}.c`);
  writeFileSync(src, source);
  const out = join(dir, name);
  const r = spawnSync('cc', ['-static', '-O1', '-o', out, src], { encoding: 'utf8' });
  return r.status === 0 ? out : undefined;
}

const PTRACE_CAPS = (s: Spec): void => {
  const c = s.process!.capabilities!;
  for (const set of ['bounding', 'effective', 'permitted'] as const) c[set] = [...(c[set] ?? []), 'CAP_SYS_PTRACE'];
};

t.test('masked paths are the host /dev/null, read-only, whatever the image puts at /dev/null', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  // no /dev mount of the runtime's: the image's own /dev/null is what the container sees
  const b = makeBundle((s) => {
    s.mounts = s.mounts!.filter((m) => !m.destination.startsWith('/dev'));
    s.linux!.maskedPaths = ['/proc/keys', '/proc/timer_list', '/proc/missing-file', '/proc/acpi'];
    s.process!.args = ['sh', '-c', 'grep -E " /proc/(keys|timer_list) " /proc/self/mountinfo; stat -c "%F %t:%T" /proc/keys; wc -c </proc/keys; (exec 3>>/proc/timer_list) 2>/dev/null && echo WRITABLE; true'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  // the image's /dev/null is a link to a host sysctl
  rmSync(join(b.rootfs, 'dev'), { recursive: true, force: true });
  const dev = join(b.rootfs, 'dev');
  spawnSync('mkdir', ['-p', dev]);
  symlinkSync('/proc/sys/kernel/ostype', join(dev, 'null'));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('mask')]);
  t.equal(r.status, 0, `runs without a /dev mount: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const mounts = lines.filter((l) => / \/proc\/(keys|timer_list) /.test(l));
  t.equal(mounts.length, 2, 'both files are masked');
  for (const m of mounts) {
    const [, , , rootOfMount, , opts] = m.split(' ');
    t.not(rootOfMount, '/sys/kernel/ostype', `not a bind of the sysctl: ${m}`);
    t.equal(rootOfMount, '/null', `a bind of the null device: ${m}`);
    t.match(opts, /^ro,/, `read-only: ${m}`);
  }
  t.ok(lines.includes('character special file 1:3'), `the masked file is the null device: ${r.stdout}`);
  t.ok(lines.includes('0'), 'reading it gives nothing');
  t.notOk(lines.includes('WRITABLE'), 'it cannot be opened for writing');
});

t.test('a masked path stays the null device while another container swaps /dev/null in a shared /dev', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  const shared = mkdtempSync(join(tmpdir(), 'lxr-shared-dev-'));
  const swapper = makeBundle((s) => {
    s.mounts = s.mounts!.filter((m) => !m.destination.startsWith('/dev')).concat([{ destination: '/dev', type: 'bind', source: shared, options: ['rbind'] }]);
    s.process!.args = ['sh', '-c', 'while [ ! -e /dev/stop ]; do ln -sf /proc/sys/kernel/ostype /dev/.n; mv -f /dev/.n /dev/null; touch /dev/null.plain; mv -f /dev/null.plain /dev/null; done'];
  });
  const victim = makeBundle((s) => {
    s.mounts = s.mounts!.filter((m) => !m.destination.startsWith('/dev')).concat([{ destination: '/dev', type: 'bind', source: shared, options: ['rbind'] }]);
    s.linux!.maskedPaths = ['/proc/keys'];
    s.process!.args = ['sh', '-c', 'grep " /proc/keys " /proc/self/mountinfo'];
  });
  const sid = uniqueId('swapper');
  t.teardown(() => {
    runtime(root, ['delete', '-f', sid]);
    swapper.cleanup();
    victim.cleanup();
    cleanup();
    rmSync(shared, { recursive: true, force: true });
  });
  t.equal(runtime(root, ['run', '-d', '-b', swapper.dir, sid]).status, 0);
  // A start may fail while the swapper races it (the default devices are made in the same
  // /dev, and a node turned into a link is refused): that is safe. A start that runs must
  // have the null device at /proc/keys.
  let ran = 0;
  for (let i = 0; i < 12; i++) {
    const r = runtime(root, ['run', '-b', victim.dir, uniqueId('victim')]);
    if (r.status !== 0) {
      t.match(r.stderr, /device "\/dev\/null"|\/dev\//, `start ${i + 1} refused, naming /dev: ${r.stderr}`);
      continue;
    }
    ran++;
    const rootOfMount = r.stdout.split(' ')[3];
    if (rootOfMount !== '/null') {
      t.fail(`start ${i + 1}: /proc/keys is a mount of ${rootOfMount}: ${r.stdout}`);
      break;
    }
  }
  writeFileSync(join(shared, 'stop'), '');
  t.ok(ran > 0, `${ran} of 12 starts ran`);
  t.pass('every start that ran was masked with the null device');
});

const KEYS = `
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
/* session FILE CMD...: join a new anonymous session keyring, add a user key to it, write its
   serial to FILE, exec CMD. read FILE: read the key by serial and by searching @s. */
int main(int argc, char **argv) {
  if (argc > 3 && !strcmp(argv[1], "session")) {
    if (syscall(SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, NULL) < 0) { perror("join"); return 2; }
    long key = syscall(SYS_add_key, "user", "lxr-test-secret", "s3cret", 6, -3 /* @s */);
    if (key < 0) { perror("add_key"); return 2; }
    FILE *f = fopen(argv[2], "w");
    fprintf(f, "%ld\\n", key);
    fclose(f);
    execvp(argv[3], argv + 3);
    perror("exec");
    return 2;
  }
  if (argc > 2 && !strcmp(argv[1], "read")) {
    FILE *f = fopen(argv[2], "r");
    long key = 0;
    if (!f || fscanf(f, "%ld", &key) != 1) return 2;
    char buf[64] = {0};
    long n = syscall(SYS_keyctl, 11 /* READ */, key, buf, sizeof buf - 1);
    printf("read=%s\\n", n < 0 ? strerror(errno) : buf);
    long found = syscall(SYS_keyctl, 10 /* SEARCH */, -3, "user", "lxr-test-secret", 0);
    printf("search=%s\\n", found < 0 ? strerror(errno) : "found");
    return 0;
  }
  return 2;
}
`;

t.test('the container has a session keyring of its own: the runtime\'s keys are out of reach', { skip }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'lxr-keys-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const prog = compile(work, 'keys', KEYS);
  if (!t.ok(prog, 'a static test program compiles (cc -static)')) return;
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['/keys', 'read', '/serial'];
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  writeFileSync(join(b.rootfs, 'keys'), readFileSync(prog!), { mode: 0o755 });
  // the runtime runs in a session keyring of the test's own, holding one key: the host's
  // keyrings are never touched, and the session ends with the process
  const run = (extra: string[]): string => {
    const r = spawnSync(prog!, ['session', join(b.rootfs, 'serial'), process.execPath, RUNTIME, '--root', root, 'run', ...extra, '-b', b.dir, uniqueId('keys')], { encoding: 'utf8', env: cleanEnv() });
    t.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const out = run([]);
  t.match(out, /^read=Permission denied$/m, `the key cannot be read by its serial: ${out}`);
  t.match(out, /^search=Required key not available$/m, 'and is not in the container\'s session keyring');
  const kept = run(['--no-new-keyring']);
  t.match(kept, /^read=s3cret$/m, `--no-new-keyring keeps the runtime's session keyring, as runc: ${kept}`);
});

t.test('no copy of the runtime is reachable through /proc, even with CAP_SYS_PTRACE', { skip }, async (t) => {
  const { root, cleanup } = makeRoot();
  // A: a container with CAP_SYS_PTRACE whose pid namespace B then joins, so that A sees
  // B's init from the moment it exists
  const a = makeBundle((s) => {
    PTRACE_CAPS(s);
    s.process!.args = ['sh', '-c', 'while [ ! -e /stop ]; do for p in /proc/[0-9]*; do readlink $p/exe; done; done >/found 2>/dev/null'];
  });
  const aid = uniqueId('watcher');
  const bid = uniqueId('joiner');
  let bBundle: ReturnType<typeof makeBundle> | undefined;
  t.teardown(() => {
    runtime(root, ['delete', '-f', bid]);
    runtime(root, ['delete', '-f', aid]);
    a.cleanup();
    bBundle?.cleanup();
    cleanup();
  });
  t.equal(runtime(root, ['run', '-d', '-b', a.dir, aid]).status, 0);
  const apid = JSON.parse(runtime(root, ['state', aid]).stdout).pid as number;
  bBundle = makeBundle((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${apid}/ns/pid` } : n));
    s.process!.args = ['sleep', '30'];
  });
  const c = runtime(root, ['create', '-b', bBundle.dir, bid]);
  t.equal(c.status, 0, c.stderr);
  const bpid = JSON.parse(runtime(root, ['state', bid]).stdout).pid as number;

  // B's init waits for `start`: what is it, seen from the host and from A?
  const exe = readlinkSync(`/proc/${bpid}/exe`);
  t.equal(exe, '/memfd:lxr-init (deleted)', 'the waiting init is the sealed executor, not node');
  const fds = readdirSync(`/proc/${bpid}/fd`).length;
  t.ok(fds <= 12, `it holds only the fds its plan names (${fds})`);
  const seen = spawnSync('nsenter', ['-t', String(apid), '-p', '-m', 'sh', '-c', 'for p in /proc/[0-9]*; do readlink $p/exe; done'], { encoding: 'utf8' });
  t.notMatch(seen.stdout, /node/, `A sees no node binary: ${seen.stdout}`);
  t.match(seen.stdout, /memfd:lxr-init/, 'A does see B\'s init');

  // The CVE-2019-5736 move: hold the exe, let the process exec, then write through the
  // handle. Only tried on the memfd (checked just above), never on a host file.
  if (exe === '/memfd:lxr-init (deleted)') {
    const O_PATH = 0o10000000;
    const handle = openSync(`/proc/${bpid}/exe`, O_PATH);
    t.equal(runtime(root, ['start', bid]).status, 0);
    await waitForStatus(root, bid, 'running');
    let writeErr = '';
    try {
      const w = openSync(`/proc/self/fd/${handle}`, constants.O_WRONLY);
      try {
        writeSync(w, Buffer.from('x'));
      } finally {
        closeSync(w);
      }
    } catch (e) {
      writeErr = (e as NodeJS.ErrnoException).code ?? String(e);
    }
    closeSync(handle);
    t.match(writeErr, /^(EPERM|ETXTBSY|EACCES)$/, `writing the executor through a held handle fails (${writeErr})`);
  }

  // exec in a loop while A scans every /proc/PID/exe it can see
  for (let i = 0; i < 25; i++) t.equal(runtime(root, ['exec', aid, 'true']).status, 0);
  writeFileSync(join(a.rootfs, 'stop'), '');
  await waitForStatus(root, aid, 'stopped');
  const found = new Set(readFileSync(join(a.rootfs, 'found'), 'utf8').split('\n').filter(Boolean));
  t.notOk([...found].some((l) => l.includes('node')), `no /proc/PID/exe in the container is node: ${[...found].join(', ')}`);
  t.ok(existsSync(join(a.rootfs, 'found')), 'the scanner ran');
  try {
    unlinkSync(join(a.rootfs, 'stop'));
  } catch {
    /* gone with the bundle */
  }
});
