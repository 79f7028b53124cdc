// linux.seccomp (config-linux.md "Seccomp"): a denied syscall really returns the
// configured errno inside the container, while everything else works.
import t from 'tap';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../native/index.js';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';
import type { Seccomp } from '../../oci-spec/types.js';

function withSeccomp(seccomp: Seccomp, script: string, nnp: boolean) {
  return makeBundle((s) => {
    s.process!.noNewPrivileges = nnp;
    s.process!.args = ['sh', '-c', script];
    s.linux!.seccomp = seccomp;
  });
}

for (const nnp of [false, true]) {
  t.test(`mkdir denied with EPERM while ls works (noNewPrivileges ${nnp})`, async (t) => {
    const { root, cleanup } = makeRoot();
    const b = withSeccomp(
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
          { names: ['no_such_syscall_name'], action: 'SCMP_ACT_ERRNO' },
        ],
      },
      'ls / >/dev/null && echo ls=ok; mkdir /tmp/d 2>/dev/null; echo mkdir=$?; test -d /tmp/d && echo made || echo not-made',
      nnp,
    );
    t.teardown(() => (b.cleanup(), cleanup()));
    const r = runtime(root, ['run', '-b', b.dir, uniqueId('sc')]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'ls=ok\nmkdir=1\nnot-made\n');
  });
}

t.test('errnoRet is the errno the process sees', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = withSeccomp(
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }] },
    'mkdir /tmp/d',
    true,
  );
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sc')]);
  t.match(r.stderr, /No space left on device/, 'ENOSPC (28) from mkdir');
});

t.test('argument conditions pick which calls are denied', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = withSeccomp(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }] },
        { names: ['fchmodat'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: 0o777, op: 'SCMP_CMP_EQ' }] },
      ],
    },
    'touch /tmp/f; chmod 755 /tmp/f && echo 755=ok; chmod 777 /tmp/f 2>/dev/null || echo 777=denied',
    true,
  );
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sc')]);
  t.equal(r.stdout, '755=ok\n777=denied\n');
});

t.test('a default action of ERRNO with defaultErrnoRet, and an allow list', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = withSeccomp(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getcwd'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }],
    },
    'pwd',
    true,
  );
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sc')]);
  // busybox pwd falls back to $PWD when getcwd fails; the syscall itself is what we deny
  t.equal(r.status, 0, r.stderr);
});

t.test('an unknown action or flag is an error naming its place', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const bad = withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_BOGUS'] }, 'true', true);
  t.teardown(bad.cleanup);
  const r = runtime(root, ['run', '-b', bad.dir, uniqueId('sc')]);
  t.not(r.status, 0);
  t.match(r.stderr, /linux\.seccomp\.flags\[0\]: /);
  t.match(r.stderr, /must be one of/);
});

t.test('SCMP_ACT_NOTIFY sends the container process state and the notify fd to listenerPath', async (t) => {
  const { root, cleanup } = makeRoot();
  const sock = join(tmpdir(), `lxr-seccomp-agent-${process.pid}.sock`);
  const b = withSeccomp(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sock,
      listenerMetadata: 'agent-data',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    },
    'mkdir /tmp/d 2>/dev/null; echo mkdir=$?; ls / > /dev/null && echo ls=ok',
    true,
  );
  t.teardown(() => (b.cleanup(), cleanup(), rmSync(sock, { force: true })));
  const listener = native().unixListen(sock);
  t.ok(listener >= 0, 'the test agent listens');
  const received = native()
    .acceptAsync(listener)
    .then(async (conn) => {
      const msg = await native().recvFdWithDataAsync(conn);
      native().close(conn);
      native().close(listener);
      return msg;
    });
  const id = uniqueId('notify');
  const created = runtime(root, ['create', '-b', b.dir, id]);
  t.equal(created.status, 0, created.stderr);
  const { fd, data } = await received;
  t.ok(fd >= 0, 'an fd came with the message');
  t.equal(readlinkSync(`/proc/self/fd/${fd}`), 'anon_inode:seccomp notify', 'it is the seccomp notify fd');
  const state = JSON.parse(data.toString());
  t.same(state.fds, ['seccompFd']);
  t.equal(state.metadata, 'agent-data');
  t.equal(state.state.id, id);
  t.equal(state.state.status, 'creating');
  t.equal(state.pid, JSON.parse(runtime(root, ['state', id]).stdout).pid, 'the pid is the container process');
  // an agent that goes away: notified syscalls then fail, everything else works
  native().close(fd);
  runtime(root, ['start', id]);
  await waitForStatus(root, id, 'stopped');
  t.notOk(existsSync(join(b.rootfs, 'tmp', 'd')), 'mkdir was not allowed without an agent');
  runtime(root, ['delete', id]);
});

t.test('SCMP_ACT_NOTIFY without a listenerPath is an error', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }, 'true', true);
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['run', '-b', b.dir, uniqueId('sc')]);
  t.not(r.status, 0);
  t.match(r.stderr, /linux\.seccomp\.listenerPath: SCMP_ACT_NOTIFY needs a listenerPath/);
});

t.test('a profile that refuses every syscall fails create, and leaves no process behind', async (t) => {
  const { root, cleanup } = makeRoot();
  // loaded while the init still has work to do (noNewPrivileges false): even exit_group is refused
  const b = withSeccomp({ defaultAction: 'SCMP_ACT_ERRNO' }, 'true', false);
  t.teardown(() => (b.cleanup(), cleanup()));
  const id = uniqueId('deny');
  const r = runtime(root, ['create', '-b', b.dir, id], { timeout: 20000 });
  t.not(r.status, 0, 'create fails');
  t.equal(r.signal, null, 'and returns (it does not hang)');
  t.match(r.stderr, /exited during setup|EPERM/);
  const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(id);
    } catch {
      return false;
    }
  });
  t.same(left, [], 'no process of that create is left');
  t.same(readdirSync(root), [], 'no state');
});
