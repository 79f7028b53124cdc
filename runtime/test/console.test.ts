// process.terminal with --console-socket: the pty master goes to the socket with
// SCM_RIGHTS (what containerd's shim and podman's conmon expect), and the container's
// stdio is the pty slave.
import t from 'tap';
import { readlinkSync, closeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';
import { native } from '../../native/index.js';

t.test('the pty master reaches the console socket and carries the container output', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle(
    (s) => {
      s.process!.args = ['sh', '-c', 'test -t 0 && test -t 1 && echo "tty ok $(stat -L -c %t /proc/self/fd/0)"; sleep 0.5'];
      s.process!.consoleSize = { height: 40, width: 132 };
    },
    { terminal: true },
  );
  const sockPath = join(b.dir, 'console.sock');
  const listener = native().unixListen(sockPath);
  t.ok(listener >= 0, 'listening on the console socket');
  const got = native()
    .acceptAsync(listener)
    .then(async (conn) => {
      const fd = await native().recvFdAsync(conn);
      native().close(conn);
      native().close(listener);
      return fd;
    });
  t.teardown(() => (b.cleanup(), cleanup()));
  const id = uniqueId('tty');
  const r = runtime(root, ['run', '-d', '--console-socket', sockPath, '-b', b.dir, id]);
  t.equal(r.status, 0, r.stderr);
  const master = await got;
  t.ok(master >= 0, 'received an fd');
  t.match(readlinkSync(`/proc/self/fd/${master}`), /ptmx$/, 'it is a pty master');
  const size = native().getWinsize(master);
  t.same(size, [40, 132], 'process.consoleSize was applied');
  const text = await new Promise<string>((resolve) => {
    let buf = '';
    const rs = new ReadStream(master);
    rs.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        rs.destroy();
        resolve(buf);
      }
    });
    rs.on('error', () => resolve(buf));
  });
  t.match(text, /^tty ok 88\r?\n/, 'stdio is the pty slave (major 136 = 0x88)');
  runtime(root, ['delete', '-f', id]);
  try {
    closeSync(master);
  } catch {
    /* closed by the stream */
  }
});

t.test('terminal: true without --console-socket is refused for create', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle(undefined, { terminal: true });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('notty')]);
  t.not(r.status, 0);
  t.match(r.stderr, /--console-socket is required/);
});
