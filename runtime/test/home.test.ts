// HOME when process.env has none (runc's behaviour): from the container's /etc/passwd for
// the process's uid, "/" for an unknown uid; for exec too. The file is read inside the
// rootfs: a symlink cannot make the runtime read a host file.
import t, { type Test } from 'tap';
import { appendFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

const USER_LINE = 'user:x:1000:1000:user:/home/user:/bin/sh\n';

function runHome(t: Test, edit: (s: any) => void, rootfsEdit?: (rootfs: string, dir: string) => void): string {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sh', '-c', 'echo "HOME=${HOME-unset}"'];
    edit(s);
  });
  appendFileSync(join(b.rootfs, 'etc', 'passwd'), USER_LINE);
  rootfsEdit?.(b.rootfs, b.dir);
  try {
    const r = runtime(root, ['run', '-b', b.dir, uniqueId('home')]);
    t.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  } finally {
    b.cleanup();
    cleanup();
  }
}

t.test('run: HOME from /etc/passwd, "/" for an unknown uid, and an explicit HOME wins', async (t) => {
  t.equal(runHome(t, () => {}), 'HOME=/root', 'uid 0');
  t.equal(runHome(t, (s) => (s.process.user = { uid: 1000, gid: 1000 })), 'HOME=/home/user', 'uid 1000');
  t.equal(runHome(t, (s) => (s.process.user = { uid: 4242, gid: 4242 })), 'HOME=/', 'a uid that is not in /etc/passwd');
  t.equal(runHome(t, (s) => (s.process.env = ['PATH=/bin', 'HOME=/custom'])), 'HOME=/custom', 'process.env has HOME');
  t.equal(runHome(t, (s) => delete s.process.env), 'HOME=/root', 'no process.env at all');
  t.equal(runHome(t, () => {}, (rootfs) => rmSync(join(rootfs, 'etc', 'passwd'))), 'HOME=/', 'no /etc/passwd');
});

t.test('the rootfs cannot point the runtime at a host file', async (t) => {
  // /etc/passwd is an absolute symlink to a file that exists on the host, not in the rootfs
  const got = runHome(t, () => {}, (rootfs, dir) => {
    const evil = join(dir, 'host-passwd');
    writeFileSync(evil, 'root:x:0:0:root:/from-the-host:/bin/sh\n');
    rmSync(join(rootfs, 'etc', 'passwd'));
    symlinkSync(evil, join(rootfs, 'etc', 'passwd'));
  });
  t.equal(got, 'HOME=/', 'the symlink is resolved inside the rootfs, where it leads nowhere');
  const rel = runHome(t, () => {}, (rootfs) => {
    // a relative symlink that climbs out: ".." stops at the root
    writeFileSync(join(rootfs, 'passwd.real'), 'root:x:0:0:root:/inside:/bin/sh\n');
    rmSync(join(rootfs, 'etc', 'passwd'));
    symlinkSync('../../../../../../passwd.real', join(rootfs, 'etc', 'passwd'));
  });
  t.equal(rel, 'HOME=/inside', 'a relative symlink is followed inside the rootfs');
});

t.test('exec: HOME for the exec user', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '30']));
  appendFileSync(join(b.rootfs, 'etc', 'passwd'), USER_LINE);
  const id = uniqueId('homex');
  t.teardown(() => {
    runtime(root, ['delete', '--force', id]);
    b.cleanup();
    cleanup();
  });
  t.equal(runtime(root, ['run', '-d', '-b', b.dir, id]).status, 0);
  t.equal(await waitForStatus(root, id, 'running'), 'running');
  const ex = (args: string[]) => {
    const r = runtime(root, ['exec', ...args, id, 'sh', '-c', 'echo "HOME=${HOME-unset}"']);
    t.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  t.equal(ex([]), 'HOME=/root');
  t.equal(ex(['--user', '1000:1000']), 'HOME=/home/user');
  t.equal(ex(['--user', '4242']), 'HOME=/');
  t.equal(ex(['--env', 'HOME=/mine']), 'HOME=/mine');
});
