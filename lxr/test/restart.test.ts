// --restart on a foreground `lxr run`: the command returns the first exit code, as podman's
// does, and the container goes on under a background monitor by its policy; a stop ends it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    image = await registryImage(t, 'test/restart:1');
  });
  const inspect = (name: string) => {
    const r = lxr(env, ['inspect', name]);
    return r.status === 0 ? JSON.parse(r.stdout)[0] ?? JSON.parse(r.stdout) : undefined;
  };

  t.test('on-failure: the first exit code comes back, then it restarts until it succeeds in staying up', async (t) => {
    // each run appends a line to a volume; the third run stays up
    const script = 'echo run >> /data/count; [ "$(wc -l < /data/count)" -ge 3 ] && exec sleep 3600; exit 4';
    const r = lxr(env, ['run', '--restart', 'on-failure', '--name', 'flaky', '-v', 'flakydata:/data', image, 'sh', '-c', script], { timeout: 30000 });
    t.equal(r.status, 4, `the foreground run returns the first exit code (${r.stderr})`);
    const up = await until(() => {
      const i = inspect('flaky');
      return i?.State?.Running && i.State.RestartCount >= 2 ? i : undefined;
    }, 20000);
    const i = inspect('flaky');
    const monitorLog = i ? (() => {
      try {
        return readFileSync(join(env.root, 'containers', i.Id, 'monitor.log'), 'utf8');
      } catch {
        return '';
      }
    })() : '';
    t.ok(up, 'restarted in the background until the third run stayed up', { state: i?.State, monitorLog, logs: lxr(env, ['logs', 'flaky']).stdout });
    const count = lxr(env, ['exec', 'flaky', 'cat', '/data/count']);
    t.equal(count.stdout, 'run\nrun\nrun\n', 'three runs');
    t.equal(lxr(env, ['stop', '-t', '1', 'flaky']).status, 0);
    await new Promise((res) => setTimeout(res, 500));
    t.equal(inspect('flaky')?.State?.Running, false, 'a stop is not followed by a restart');
    t.equal(lxr(env, ['rm', '-f', 'flaky']).status, 0);
  });

  t.test('on-failure with exit 0, and no policy: nothing restarts', async (t) => {
    t.equal(lxr(env, ['run', '--restart', 'on-failure', '--name', 'ok', image, 'true']).status, 0);
    t.equal(lxr(env, ['run', '--name', 'fails', image, 'false']).status, 1);
    await new Promise((res) => setTimeout(res, 500));
    t.same([inspect('ok')?.State?.Status, inspect('ok')?.State?.RestartCount], ['exited', 0]);
    t.same([inspect('fails')?.State?.Status, inspect('fails')?.State?.RestartCount], ['exited', 0]);
    lxr(env, ['rm', '-f', 'ok', 'fails']);
  });

  t.test('an init that exits at once (before its launcher does) has its own exit code recorded', async (t) => {
    // The monitor can reap the init while it waits for the launcher: that status must not be
    // lost (it was once, recorded as 255, and on-failure then restarted a container that exited 0).
    const code = (i: number) => (i % 2 ? 0 : 3);
    for (let i = 0; i < 6; i++) {
      const policy = code(i) === 0 ? ['--restart', 'on-failure'] : [];
      const r = lxr(env, ['run', '-d', ...policy, '--name', `quick${i}`, image, 'sh', '-c', `exit ${code(i)}`]);
      t.equal(r.status, 0, r.stderr);
    }
    for (let i = 0; i < 6; i++) {
      const st = await until(() => {
        const s = inspect(`quick${i}`)?.State;
        return s && s.Status === 'exited' ? s : undefined;
      }, 20000);
      t.same([st?.ExitCode, st?.RestartCount], [code(i), 0], `quick${i}: exit ${code(i)}, not restarted`);
    }
    lxr(env, ['rm', '-f', ...Array.from({ length: 6 }, (_, i) => `quick${i}`)]);
  });

  t.test('--rm with a restart policy is refused before anything is made', async (t) => {
    const r = lxr(env, ['run', '--rm', '--restart', 'always', image, 'true']);
    t.equal(r.status, 125);
    t.match(r.stderr, /--rm conflicts with --restart always/);
    t.same(JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout), [], 'no container was made');
  });
}
