// Health checks (issue 22 item 9): --health-* and the image's HEALTHCHECK, run by lxr's own
// runner (no systemd), still running after the creating command has exited; ps shows
// (starting)/(healthy)/(unhealthy) and inspect State.Health in docker's shape.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUSYBOX, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';

/** pids of `lxr __health ID` runners. */
function runners(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('__health') && cmd.includes(id)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed');
} else {
  const env: LxrEnv = lxrEnv(t);
  let image = '';
  let checked = '';
  t.before(async () => {
    image = await registryImage(t, 'test/health:1', { cmd: ['sh', '-c', 'touch /tmp/ok; exec sleep 300'] });
    checked = await registryImage(t, 'test/health-image:1', {
      cmd: ['sleep', '300'],
      healthcheck: { Test: ['CMD', 'true'], Interval: 200e6, Timeout: 5e9, Retries: 2 },
    });
  });
  const inspect = (n: string) => JSON.parse(lxr(env, ['inspect', n]).stdout)[0];
  const status = (n: string) => (JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout) as { Name: string; Status: string }[]).find((r) => r.Name === n)?.Status ?? '';

  t.test('healthy, then unhealthy when the check starts failing; after the creating command exited', async (t) => {
    const c = lxr(env, ['create', '--name', 'h', '--health-cmd', 'test ! -e /tmp/bad && echo fine', '--health-interval', '200ms', '--health-retries', '2', image]);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    t.match(status('h'), /^Up .*\((starting|healthy)\)$/, 'ps: starting (or healthy already)');
    t.ok(await until(() => status('h').endsWith('(healthy)'), 20000), `ps: healthy (${status('h')})`);
    const h = inspect('h').State.Health;
    t.equal(h.Status, 'healthy');
    t.equal(h.FailingStreak, 0);
    t.match(h.Log.at(-1), { ExitCode: 0, Output: 'fine\n', Start: String, End: String }, 'State.Health.Log in docker\'s shape');
    const ex = lxr(env, ['exec', 'h', 'touch', '/tmp/bad']);
    t.equal(ex.status, 0, ex.stderr);
    t.ok(await until(() => status('h').endsWith('(unhealthy)'), 20000), `ps: unhealthy (${status('h')})`);
    const u = inspect('h').State.Health;
    t.equal(u.Status, 'unhealthy');
    t.ok(u.FailingStreak >= 2, 'failing streak reached the retries');
    t.equal(u.Log.at(-1).ExitCode, 1);
    t.ok(u.Log.length <= 5, 'the last 5 results only');
    t.equal(lxr(env, ['rm', '-f', 'h']).status, 0);
    t.ok(await until(() => runners(id).length === 0, 20000), 'the runner ends with the container');
  });

  t.test("the image's HEALTHCHECK, and --no-healthcheck", async (t) => {
    t.equal(lxr(env, ['create', '--name', 'img', checked]).status, 0);
    t.ok(await until(() => status('img').endsWith('(healthy)'), 20000), `the image's check runs (${status('img')})`);
    t.equal(lxr(env, ['create', '--name', 'none', '--no-healthcheck', checked]).status, 0);
    t.notOk(inspect('none').State.Health, '--no-healthcheck: no State.Health');
    t.match(status('none'), /^Up [^()]*$/, 'ps: no health');
    lxr(env, ['rm', '-f', 'img', 'none']);
  });

  t.test('bad health flags are refused and leave nothing behind', async (t) => {
    for (const [args, msg] of [
      [['--health-interval', '0'], /^lxr: invalid argument "0" for "--health-interval" flag: interval must be at least 1ms\n$/],
      [['--health-interval', 'soon'], /invalid argument "soon" for "--health-interval" flag: time: invalid duration/],
      [['--health-retries', '0'], /invalid argument "0" for "--health-retries" flag/],
      [['--no-healthcheck', '--health-cmd', 'true'], /--no-healthcheck conflicts with --health-\* options/],
    ] as [string[], RegExp][]) {
      const r = lxr(env, ['run', '--rm', ...args, image, 'true']);
      t.equal(r.status, 125, args.join(' '));
      t.match(r.stderr, msg, args.join(' '));
    }
    const dir = join(env.root, 'containers');
    t.same(existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [], [], 'no container left');
  });
}
