// docker run's everyday flags (issue 22), each checked by what the container sees, with the
// same check against podman (runc, pinned ulimits) in the same run when podman is installed.
// Bad input gets docker's kind of error (exit 125) and leaves nothing behind.
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUSYBOX, cgroupsLeft, lxr, lxrEnv, mountsUnder, registryImage, type CliResult, type LxrEnv } from './helpers/env.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is not installed (apt-get install -y busybox)');
} else {
  const env: LxrEnv = lxrEnv(t);
  let image = '';
  let pm: Podman | undefined;
  t.before(async () => {
    image = await registryImage(t, 'test/flags:1', { cmd: ['sh'] });
    if (which('podman') && which('runc') && !process.env.LXR_TEST_NO_PODMAN) {
      pm = await startPodman();
      const r = pm.podman('runc', ['pull', '-q', '--tls-verify=false', image]);
      if (r.status !== 0) throw new Error(`podman pull: ${r.stderr}`);
    }
  });
  t.teardown(() => pm?.stop());

  /** Run IMAGE with flags on lxr and podman; the same output (or podman's absence). */
  function both(t: Test, flags: string[], cmd: string[], check: (out: string, who: string) => void): void {
    const r = lxr(env, ['run', '--rm', ...flags, image, ...cmd]);
    t.equal(r.status, 0, `lxr run ${flags.join(' ')}: ${r.stderr}`);
    check(r.stdout, 'lxr');
    if (!pm) return;
    const p = pm.podman('runc', ['run', '--rm', ...flags, image, ...cmd]);
    t.equal(p.status, 0, `podman run ${flags.join(' ')}: ${p.stderr}`);
    check(p.stdout, 'podman');
  }

  function assertClean(t: Test, what: string): void {
    const containers = join(env.root, 'containers');
    const left = existsSync(containers) ? readdirSync(containers).filter((f) => !f.startsWith('.')) : [];
    t.same(left, [], `${what}: no container directory`);
    t.same(mountsUnder(env.root), [], `${what}: nothing mounted`);
    t.same(cgroupsLeft(env), [], `${what}: no cgroup`);
  }

  /** A refused command: exit 125, one line naming the flag, nothing left. */
  function refused(t: Test, r: CliResult, msg: RegExp, what: string): void {
    t.equal(r.status, 125, `${what}: exit 125`);
    t.match(r.stderr, msg, what);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    assertClean(t, what);
  }

  t.test('unknown flags are refused by their name as typed, exit 125', async (t) => {
    refused(t, lxr(env, ['run', '--no-such-flag', image]), /^lxr: unknown flag: --no-such-flag\n$/, 'run --no-such-flag');
    refused(t, lxr(env, ['create', '--bogus=1', image]), /^lxr: unknown flag: --bogus\n$/, 'create --bogus=1');
    refused(t, lxr(env, ['run', '-itz', image]), /^lxr: unknown shorthand flag: 'z' in -itz\n$/, 'run -itz');
    refused(t, lxr(env, ['ps', '--no-all']), /^lxr: unknown flag: --no-all\n$/, 'ps --no-all (no negation)');
    refused(t, lxr(env, ['--bogus', 'ps']), /^lxr: unknown flag: --bogus\n$/, 'global --bogus');
    refused(t, lxr(env, ['exec', '--bogus', 'x', 'sh']), /^lxr: unknown flag: --bogus\n$/, 'exec --bogus');
    // the command's own flags after the image are the command's
    const r = lxr(env, ['run', '--rm', image, 'echo', '--no-such-flag']);
    t.equal(r.stdout, '--no-such-flag\n', 'flags after the image go to the command');
  });

  t.test('--dns, --dns-search, --dns-option, --add-host', async (t) => {
    const dns = ['--dns', '192.0.2.53', '--dns', '192.0.2.54', '--dns-search', 'corp.example', '--dns-option', 'ndots:2', '--dns-option', 'timeout:3'];
    for (const net of ['host', 'none']) {
      if (net === 'none') {
        // podman refuses DNS flags without a network: lxr only
        const r = lxr(env, ['run', '--rm', '--network', 'none', ...dns, image, 'cat', '/etc/resolv.conf']);
        t.equal(r.status, 0, r.stderr);
        t.match(r.stdout, /^search corp\.example$/m);
        t.match(r.stdout, /^nameserver 192\.0\.2\.53\nnameserver 192\.0\.2\.54$/m);
        t.match(r.stdout, /^options ndots:2 timeout:3$/m);
        continue;
      }
      both(t, ['--network', net, ...dns], ['cat', '/etc/resolv.conf'], (out, who) => {
        t.match(out, /^search corp\.example$/m, `${who}: search`);
        t.match(out, /^nameserver 192\.0\.2\.53\nnameserver 192\.0\.2\.54$/m, `${who}: nameservers, in order`);
        t.notMatch(out, /^nameserver (?!192\.0\.2\.5[34])/m, `${who}: no other nameserver`);
        t.match(out, /^options ndots:2 timeout:3$/m, `${who}: options`);
      });
    }
    both(t, ['--network', 'host', '--add-host', 'db.example:192.0.2.10', '--add-host', 'cache:192.0.2.11'], ['cat', '/etc/hosts'], (out, who) => {
      t.match(out, /^192\.0\.2\.10\s+db\.example$/m, `${who}: db.example`);
      t.match(out, /^192\.0\.2\.11\s+cache$/m, `${who}: cache`);
    });
    const r = lxr(env, ['run', '--rm', '--add-host', 'db.example:192.0.2.10', image, 'cat', '/etc/hosts']);
    t.match(r.stdout, /^127\.0\.0\.1\s+localhost$/m, 'network none: localhost kept');
    t.match(r.stdout, /^192\.0\.2\.10\s+db\.example$/m, 'network none: the added host');
    refused(t, lxr(env, ['run', '--rm', '--add-host', 'db.example', image, 'true']), /^lxr: invalid argument "db\.example" for "--add-host" flag/, '--add-host without IP');
    refused(t, lxr(env, ['run', '--rm', '--dns', 'one.one', image, 'true']), /^lxr: invalid argument "one\.one" for "--dns" flag/, '--dns not an IP');
    // the image name after a value flag is the image (it used to be swallowed)
    const ok = lxr(env, ['run', '--rm', '--dns', '192.0.2.53', image, 'true']);
    t.equal(ok.status, 0, `--dns IP IMAGE: ${ok.stderr}`);
  });
}
