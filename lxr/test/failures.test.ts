// Bad input and failures half-way through create: a clear one-line error naming the thing
// at fault, a non-zero exit, and nothing left behind (record, mount, runtime state, cgroup).
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { BUSYBOX, cgroupsLeft, lxr, lxrAsync, netnsLeft, lxrEnv, mountsUnder, pushTestImage, type LxrEnv } from './helpers/env.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  let reg: RegistryHandle;
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  t.before(async () => {
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/fail:1', { cmd: ['sleep', '60'] });
  });
  t.teardown(() => reg?.stop());

  /** Nothing of any container is left. */
  function assertClean(t: Test, what: string): void {
    const containers = join(env.root, 'containers');
    const left = existsSync(containers) ? readdirSync(containers).filter((f) => !f.startsWith('.')) : [];
    t.same(left, [], `${what}: no container directory`);
    t.same(mountsUnder(env.root), [], `${what}: nothing mounted`);
    const rt = join(env.runRoot, 'runtime');
    // @seccomp: compiled seccomp programs (runtime/linux/seccomp-cache.ts), no container's state
    t.same(existsSync(rt) ? readdirSync(rt).filter((f) => !f.startsWith('.') && f !== '@seccomp') : [], [], `${what}: no runtime state`);
    t.same(cgroupsLeft(env), [], `${what}: no cgroup`);
    t.same(netnsLeft(env), [], `${what}: no network namespace`);
    t.same(JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout), [], `${what}: ps -a is empty`);
  }

  t.test('an image that does not exist', async (t) => {
    const r = lxr(env, ['create', '--name', 'x', `${reg.host}/test/missing:1`]);
    t.not(r.status, 0);
    t.match(r.stderr, new RegExp(`lxr: pulling ${reg.host.replace(/\./g, '\\.')}/test/missing:1`));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assertClean(t, 'missing image');
  });

  t.test('bad flags', async (t) => {
    const cases: [string[], RegExp][] = [
      [['-v', '/no/such/dir:/x'], /-v \/no\/such\/dir:\/x: host path \/no\/such\/dir does not exist/],
      [['-v', 'rel/dir:/x'], /neither an absolute host path nor a valid volume name/],
      [['-v', '/tmp:relative'], /container path "relative" must be absolute/],
      [['-p', 'abc'], /-p abc: expected/],
      [['--memory', 'lots'], /--memory lots/],
      [['--restart', 'sometimes'], /--restart sometimes/],
      [['--name', 'bad/name'], /invalid container name "bad\/name"/],
      [['--network', 'none', '-p', '8080:80'], /publishing ports needs a bridge network/],
      [['-u', 'nosuchuser'], /-u nosuchuser/],
      [['--ide', '--network', 'none'], /--ide needs a network/],
      [['--ide', '--network', 'host'], /--ide: image .* has no glibc/],
    ];
    for (const [flags, re] of cases) {
      const r = lxr(env, ['run', '--rm', ...flags, image, 'true']);
      t.not(r.status, 0, flags.join(' '));
      t.match(r.stderr, re, flags.join(' '));
    }
    // create and run -d start the container's monitor before the flags are parsed: it must go too
    for (const cmd of [['create'], ['run', '-d']]) {
      const r = lxr(env, [...cmd, '--memory', 'lots', image]);
      t.equal(r.status, 125, `${cmd.join(' ')} --memory lots`);
      t.match(r.stderr, /--memory lots/);
    }
    assertClean(t, 'bad flags');
  });

  for (const step of ['pull', 'snapshots', 'mount', 'network', 'spec', 'monitor', 'create', 'start']) {
    t.test(`a failure at "${step}" leaves nothing behind`, async (t) => {
      const r = lxr(env, ['create', '--name', `f-${step}`, '--pull', step === 'pull' ? 'always' : 'missing', image], { env: { LXR_FAIL_AT: step } });
      t.not(r.status, 0);
      t.match(r.stderr, `injected failure at "${step}"`);
      assertClean(t, step);
    });
  }

  t.test('two creates of one name at the same time: exactly one wins', async (t) => {
    const [a, b] = await Promise.all([lxrAsync(env, ['create', '--name', 'race', image]), lxrAsync(env, ['create', '--name', 'race', image])]);
    t.same([a.status, b.status].sort(), [0, 125], `one succeeds, one fails (${a.stderr}${b.stderr})`);
    t.match(a.stderr + b.stderr, /name "race" is already in use/);
    const rows = JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout);
    t.equal(rows.length, 1);
    t.equal(rows[0].State, 'running');
    t.equal(lxr(env, ['rm', '-f', 'race']).status, 0);
    assertClean(t, 'race');
  });

  t.test('after all that, the same name works', async (t) => {
    const r = lxr(env, ['run', '--rm', '--name', 'f-create', image, 'echo', 'ok']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'ok\n');
  });
}
