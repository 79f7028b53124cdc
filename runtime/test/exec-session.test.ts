// A process started by `exec` is a session leader (its own process group and session),
// as runc makes it, with a terminal or without.
import t from 'tap';
import { keyValues, makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

t.test('exec: the process leads its own session', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sleep', '30']));
  const id = uniqueId('sid');
  t.teardown(() => {
    runtime(root, ['delete', '--force', id]);
    b.cleanup();
    cleanup();
  });
  t.equal(runtime(root, ['run', '-d', '-b', b.dir, id]).status, 0);
  t.equal(await waitForStatus(root, id, 'running'), 'running');
  // fields 5 and 6 of /proc/PID/stat: process group and session (comm has no spaces here)
  const script = 'set -- $(cat /proc/$$/stat); echo "pid=$1"; echo "pgrp=$5"; echo "sid=$6"';
  for (const flags of [[], ['-t']]) {
    const r = runtime(root, ['exec', ...flags, id, 'sh', '-c', script]);
    t.equal(r.status, 0, `${flags.join(' ')}: ${r.stderr}`);
    const o = keyValues(r.stdout.replace(/\r/g, ''));
    t.ok(Number(o.pid) > 0, `${flags.join(' ') || 'no tty'}: a pid (${r.stdout.trim()})`);
    t.equal(o.pgrp, o.pid, `${flags.join(' ') || 'no tty'}: its own process group`);
    t.equal(o.sid, o.pid, `${flags.join(' ') || 'no tty'}: its own session`);
  }
});
