// docker run's everyday flags (issue 22), each checked by what the container sees, with the
// same check against podman (runc, pinned ulimits) in the same run when podman is installed.
// Bad input gets docker's kind of error (exit 125) and leaves nothing behind.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, cgroupsLeft, lxr, lxrEnv, mountsUnder, registryImage, until, type CliResult, type LxrEnv } from './helpers/env.js';
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

  t.test('limits: --shm-size, --ulimit, --memory-swap, --memory-reservation, --cpu-shares, --cpuset-cpus/-mems, --oom-score-adj', async (t) => {
    const flags = [
      '--memory', '64m', '--memory-swap', '128m', '--memory-reservation', '32m', '--cpu-shares', '512', '--cpuset-cpus', '0', '--cpuset-mems', '0',
      '--oom-score-adj', '500', '--shm-size', '128m', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=4096:4096', '--ulimit', 'core=0',
    ];
    const script = 'cd /sys/fs/cgroup; cat memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes cpu/cpu.shares cpuset/cpuset.cpus cpuset/cpuset.mems /proc/self/oom_score_adj; grep " /dev/shm " /proc/mounts; grep -E "open files|processes|core file" /proc/self/limits';
    both(t, flags, ['sh', '-c', script], (out, who) => {
      const l = out.split('\n');
      t.same(l.slice(0, 6), ['134217728', '33554432', '512', '0', '0', '500'], `${who}: memsw, soft limit, shares, cpuset, oom_score_adj`);
      t.match(out, /^shm \/dev\/shm tmpfs \S*size=131072k/m, `${who}: /dev/shm is 128m`);
      t.match(out, /^Max open files\s+1024\s+2048\s/m, `${who}: nofile 1024:2048`);
      t.match(out, /^Max processes\s+4096\s+4096\s/m, `${who}: nproc`);
      t.match(out, /^Max core file size\s+0\s+0\s/m, `${who}: core 0 (SOFT only: HARD is the same)`);
    });
    refused(t, lxr(env, ['run', '--rm', '--ulimit', 'nofile=abc', image, 'true']), /^lxr: invalid argument "nofile=abc" for "--ulimit" flag: "abc" is not a number$/m, '--ulimit nofile=abc');
    refused(t, lxr(env, ['run', '--rm', '--ulimit', 'nofiles=1', image, 'true']), /invalid ulimit type: nofiles/, '--ulimit nofiles=1');
    refused(t, lxr(env, ['run', '--rm', '--ulimit', 'nofile=20:10', image, 'true']), /soft limit must be less than or equal to hard limit/, '--ulimit soft > hard');
    refused(t, lxr(env, ['run', '--rm', '--memory-swap', '1g', image, 'true']), /You should always set the Memory limit when using Memoryswap limit/, '--memory-swap without --memory');
    refused(t, lxr(env, ['run', '--rm', '--cpu-shares', 'lots', image, 'true']), /invalid argument "lots" for "--cpu-shares" flag/, '--cpu-shares lots');
    refused(t, lxr(env, ['run', '--rm', '--oom-score-adj', '1001', image, 'true']), /invalid argument "1001" for "--oom-score-adj" flag: must be between -1000 and 1000/, '--oom-score-adj 1001');
    refused(t, lxr(env, ['run', '--rm', '--shm-size', 'big', image, 'true']), /invalid argument "big" for "--shm-size" flag/, '--shm-size big');
  });

  t.test('--device and --tmpfs', async (t) => {
    // /dev/loop-control (10:237) is in no default device rule: only --device's rule lets it be opened
    both(t, ['--device', '/dev/zero:/dev/xzero', '--device', '/dev/loop-control:/dev/lcr:r'], ['sh', '-c',
      'stat -c "%F %t:%T" /dev/xzero /dev/lcr; head -c 5 /dev/xzero | wc -c; (: > /dev/lcr) 2>/dev/null && echo write-ok || echo write-refused; (exec 3</dev/lcr) && echo read-ok'], (out, who) => {
      t.equal(out, 'character special file 1:5\ncharacter special file a:ed\n5\nwrite-refused\nread-ok\n', `${who}: the nodes; :r allows reads only (cgroup rule)`);
    });
    both(t, ['--device', '/dev/loop-control:/dev/lcw'], ['sh', '-c', '(: > /dev/lcw) && echo write-ok'], (out, who) => t.equal(out, 'write-ok\n', `${who}: rwm by default`));
    both(t, ['--tmpfs', '/scratch:size=1m,mode=1770', '--tmpfs', '/run'], ['sh', '-c', 'grep -E " /(scratch|run) " /proc/mounts; stat -c %a /scratch'], (out, who) => {
      // docker's default options are nosuid,nodev,noexec; podman 4.3 leaves out noexec
      const opts = who === 'lxr' ? 'rw,nosuid,nodev,noexec,relatime' : 'rw,nosuid,nodev,relatime';
      t.match(out, new RegExp(`^tmpfs /scratch tmpfs ${opts},size=1024k,mode=1770 `, 'm'), `${who}: /scratch`);
      t.match(out, new RegExp(`^tmpfs /run tmpfs ${opts} `, 'm'), `${who}: /run`);
      t.match(out, /^1770$/m, `${who}: mode`);
    });
    refused(t, lxr(env, ['run', '--rm', '--device', '/dev/nonexistent', image, 'true']), /^lxr: error gathering device information while adding custom device "\/dev\/nonexistent": no such file or directory$/m, '--device /dev/nonexistent');
    refused(t, lxr(env, ['run', '--rm', '--device', '/etc/passwd', image, 'true']), /"\/etc\/passwd": not a device node/, '--device /etc/passwd');
    refused(t, lxr(env, ['run', '--rm', '--tmpfs', 'rel', image, 'true']), /invalid argument "rel" for "--tmpfs" flag: the mount path must be absolute/, '--tmpfs rel');
  });

  t.test('--pid, --ipc, --uts: host and container:NAME; --ipc shareable; --sysctl', async (t) => {
    const hostNs = (n: string) => readlinkSync(`/proc/self/ns/${n}`);
    both(t, ['--pid', 'host', '--ipc', 'host', '--uts', 'host'], ['sh', '-c', 'for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname'], (out, who) => {
      t.equal(out, `${hostNs('pid')}\n${hostNs('ipc')}\n${hostNs('uts')}\n${hostname()}\n`, `${who}: the host's pid, ipc and uts namespaces`);
    });
    both(t, ['--ipc', 'shareable'], ['sh', '-c', 'readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid'], (out, who) => {
      t.notOk(out.includes(hostNs('ipc')), `${who}: --ipc shareable is an ipc namespace of its own`);
      t.notOk(out.includes(hostNs('pid')), `${who}: and a pid namespace of its own`);
    });
    // another container's namespaces
    const engines: [string, (args: string[]) => CliResult][] = [['lxr', (args) => lxr(env, args)]];
    if (pm) engines.push(['podman', (args) => pm!.podman('runc', args)]);
    for (const [who, run] of engines) {
      const target = `target-${who}`;
      const d = run(['run', '-d', '--name', target, '--ipc', 'shareable', image, 'sleep', '300']);
      t.equal(d.status, 0, `${who}: target: ${d.stderr}`);
      const ns = run(['exec', target, 'sh', '-c', 'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc']);
      const r = run(['run', '--rm', '--pid', `container:${target}`, '--ipc', `container:${target}`, image, 'sh', '-c', 'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; ps -o comm | grep -c sleep']);
      t.equal(r.status, 0, `${who}: ${r.stderr}`);
      t.equal(r.stdout, `${ns.stdout}1\n`, `${who}: the target's pid and ipc namespaces; its sleep is visible`);
      run(['rm', '-f', target]);
    }
    refused(t, lxr(env, ['run', '--rm', '--pid', 'container:nosuch', image, 'true']), /^lxr: --pid container:nosuch: no such container$/m, '--pid container:nosuch');
    // namespaced sysctls: network (its own namespace) and ipc
    both(t, ['--network', 'none', '--sysctl', 'net.ipv4.ip_unprivileged_port_start=80', '--sysctl', 'kernel.shmmni=1234'], ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start', '/proc/sys/kernel/shmmni'], (out, who) => {
      t.equal(out, '80\n1234\n', `${who}: the sysctls`);
    });
    refused(t, lxr(env, ['run', '--rm', '--sysctl', 'kernel.hostname=x', image, 'true']), /^lxr: invalid argument "kernel\.hostname=x" for "--sysctl" flag: sysctl 'kernel\.hostname' is not allowed/m, '--sysctl kernel.hostname=x');
    refused(t, lxr(env, ['run', '--rm', '--sysctl', 'kernel.panic=1', image, 'true']), /sysctl 'kernel\.panic' is not allowed/, '--sysctl kernel.panic=1');
    refused(t, lxr(env, ['run', '--rm', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', image, 'true']), /not allowed in the host network namespace/, '--sysctl net.* with --network host');
    refused(t, lxr(env, ['run', '--rm', '--ipc', 'host', '--sysctl', 'kernel.shmmni=5', image, 'true']), /not allowed with --ipc host/, '--sysctl kernel.shm* with --ipc host');
    refused(t, lxr(env, ['run', '--rm', '--pid', 'sideways', image, 'true']), /invalid argument "sideways" for "--pid" flag/, '--pid sideways');
  });

  t.test('--init, --group-add, --stop-signal, --stop-timeout', async (t) => {
    both(t, ['--init'], ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; (echo x >> /proc/1/exe) 2>/dev/null && echo writable || echo read-only'], (out, who) => {
      t.match(out, /^\S*init -- sh -c /, `${who}: PID 1 is the init, the command its child`);
      t.match(out, /\nread-only\n$/, `${who}: the init cannot be written`);
    });
    // an orphan that exits is reaped by PID 1 (the init)
    const orphan = 'mkfifo /tmp/f; (sh -c "cat /tmp/f >/dev/null" &); echo > /tmp/f; i=0; while [ $i -lt 200 ]; do ps -o stat | grep -q Z || { echo reaped; exit 0; }; sleep 0.05; i=$((i+1)); done; echo zombie';
    both(t, ['--init'], ['sh', '-c', orphan], (out, who) => t.equal(out, 'reaped\n', `${who}: the orphan is reaped`));
    for (const [cmd, code] of [['exit 3', 3], ['kill -9 $$', 137]] as const) {
      const r = lxr(env, ['run', '--rm', '--init', image, 'sh', '-c', cmd]);
      t.equal(r.status, code, `--init passes on the command's status (${cmd}): ${r.stderr}`);
    }
    // signals reach the command: sleep, as PID 1, would ignore SIGTERM; under the init it dies of it
    const engines: [string, (args: string[]) => CliResult][] = [['lxr', (args) => lxr(env, args)]];
    if (pm) engines.push(['podman', (args) => pm!.podman('runc', args)]);
    for (const [who, run] of engines) {
      t.equal(run(['run', '-d', '--name', `init-${who}`, '--init', image, 'sleep', '300']).status, 0);
      t.equal(run(['stop', '-t', '60', `init-${who}`]).status, 0);
      t.equal(run(['inspect', `init-${who}`]).stdout.match(/"ExitCode": (\d+)/)?.[1], '143', `${who}: SIGTERM forwarded to sleep (128+15), not SIGKILL after the timeout`);
      t.equal(run(['run', '-d', '--name', `sig-${who}`, '--stop-signal', 'SIGUSR1', image, 'sh', '-c', 'trap "exit 7" USR1; while :; do sleep 0.1; done']).status, 0);
      t.equal(run(['stop', '-t', '60', `sig-${who}`]).status, 0);
      t.equal(run(['inspect', `sig-${who}`]).stdout.match(/"ExitCode": (\d+)/)?.[1], '7', `${who}: --stop-signal SIGUSR1 is what stop sends`);
      run(['rm', '-f', `init-${who}`, `sig-${who}`]);
    }
    // --stop-timeout: stop without -t waits that long, then SIGKILL (sleep as PID 1 ignores SIGTERM)
    t.equal(lxr(env, ['run', '-d', '--name', 'st', '--stop-timeout', '0', image, 'sleep', '300']).status, 0);
    const st = lxr(env, ['stop', 'st']);
    t.equal(st.status, 0, st.stderr);
    t.match(lxr(env, ['inspect', 'st']).stdout, /"ExitCode": 137/, '--stop-timeout 0: killed');
    lxr(env, ['rm', '-f', 'st']);
    both(t, ['--group-add', '1000', '--group-add', 'nogroup', '-u', 'dev'], ['id', '-G'], (out, who) => t.equal(out, '1000 65534\n', `${who}: the added groups`));
    refused(t, lxr(env, ['run', '--rm', '--group-add', 'nosuchgroup', image, 'true']), /--group-add nosuchgroup: no group "nosuchgroup" in the image's \/etc\/group/, '--group-add nosuchgroup');
    refused(t, lxr(env, ['run', '--rm', '--stop-signal', 'SIGFOO', image, 'true']), /invalid argument "SIGFOO" for "--stop-signal" flag/, '--stop-signal SIGFOO');
  });

  t.test('--cidfile and --platform', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-cid-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const cid = join(dir, 'cid');
    const r = lxr(env, ['run', '-d', '--name', 'cid', '--cidfile', cid, image, 'sleep', '300']);
    t.equal(r.status, 0, r.stderr);
    t.equal(readFileSync(cid, 'utf8'), r.stdout.trim(), 'the file holds the id (no newline)');
    const again = lxr(env, ['run', '-d', '--cidfile', cid, image, 'sleep', '300']);
    t.equal(again.status, 125);
    t.equal(again.stderr, `lxr: Container ID file found, make sure the other container isn't running or delete ${cid}\n`, "docker's words");
    t.equal(JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout).length, 1, 'no second container');
    t.equal(readFileSync(cid, 'utf8'), r.stdout.trim(), 'the file is untouched');
    lxr(env, ['rm', '-f', 'cid']);
    // a create that fails removes nothing it did not write, and writes nothing
    const cid2 = join(dir, 'cid2');
    refused(t, lxr(env, ['run', '--rm', '--cidfile', cid2, '--device', '/dev/nonexistent', image, 'true']), /custom device/, '--cidfile with a failing create');
    t.notOk(existsSync(cid2), 'no cidfile after a failed create');
    const ok = lxr(env, ['run', '--rm', '--platform', 'linux/amd64', image, 'true']);
    t.equal(ok.status, 0, `--platform linux/amd64: ${ok.stderr}`);
    refused(t, lxr(env, ['run', '--rm', '--platform', 'linux/arm64', image, 'true']),
      /^lxr: image with reference \S+ was found but does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64$/m, '--platform linux/arm64 on an amd64 image');
    refused(t, lxr(env, ['run', '--rm', '--platform', 'amd64', image, 'true']), /invalid argument "amd64" for "--platform" flag/, '--platform amd64');
  });

  t.test('--log-opt max-size/max-file rotate the log; --log-driver none', async (t) => {
    const r = lxr(env, ['run', '-d', '--name', 'chatty', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', image, 'sh', '-c', 'i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.01; done']);
    t.equal(r.status, 0, r.stderr);
    const log = join(env.root, 'containers', r.stdout.trim(), 'ctr.log');
    // the first line's text (the log holds k8s-file records: TIME STREAM F|P TEXT)
    const first = (f: string) => (existsSync(f) ? `${readFileSync(f, 'utf8').split('\n')[0]!.replace(/^\S+ (stdout|stderr) [FP] /, '')}\n`.slice(0, 7) : '');
    t.ok(await until(() => first(`${log}.2`).startsWith('line-') && first(`${log}.2`) !== 'line-0\n', 30000), 'rotated three times: the first file is dropped');
    const logs = lxr(env, ['logs', 'chatty']).stdout;
    const sizes = [log, `${log}.1`, `${log}.2`].map((f) => (existsSync(f) ? statSync(f).size : -1));
    t.notOk(existsSync(`${log}.3`), 'no more than max-file files');
    t.equal(lxr(env, ['rm', '-f', 'chatty']).status, 0);
    // the monitor rotates before a record would take the file over max-size (logs.test.ts checks no line is lost)
    t.ok(sizes.every((n) => n <= 1024), `no file over max-size (${sizes})`);
    t.ok(sizes[1]! > 1024 - 64 && sizes[2]! > 1024 - 64, `the rotated files were filled up to it (${sizes})`);
    t.notMatch(logs, /^line-0$/m, 'lxr logs: the oldest lines are gone');
    t.match(logs, /^line-\d+\n$/m, 'lxr logs reads the rotated files and the current one');
    const n = lxr(env, ['run', '-d', '--name', 'quiet', '--log-driver', 'none', image, 'sh', '-c', 'echo hidden; exec sleep 300']);
    t.equal(n.status, 0, n.stderr);
    const ql = lxr(env, ['logs', 'quiet']);
    t.equal(ql.status, 125);
    t.match(ql.stderr, /configured logging driver does not support reading/);
    t.notOk(existsSync(join(env.root, 'containers', n.stdout.trim(), 'ctr.log')) && statSync(join(env.root, 'containers', n.stdout.trim(), 'ctr.log')).size > 0, 'nothing logged');
    lxr(env, ['rm', '-f', 'quiet']);
    refused(t, lxr(env, ['run', '--rm', '--log-opt', 'max-size=lots', image, 'true']), /invalid argument "max-size=lots" for "--log-opt" flag/, '--log-opt max-size=lots');
    refused(t, lxr(env, ['run', '--rm', '--log-opt', 'colour=blue', image, 'true']), /unknown log opt 'colour'/, '--log-opt colour=blue');
    refused(t, lxr(env, ['run', '--rm', '--log-driver', 'syslog', image, 'true']), /--log-driver syslog/, '--log-driver syslog');
  });

  t.test('exec --env-file and -d; run --help in groups', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-envf-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'env'), '# a comment\nFROM_FILE=yes\n');
    t.equal(lxr(env, ['run', '-d', '--name', 'ex', image, 'sleep', '300']).status, 0);
    const e = lxr(env, ['exec', '--env-file', join(dir, 'env'), 'ex', 'sh', '-c', 'echo $FROM_FILE']);
    t.equal(e.stdout, 'yes\n', `exec --env-file: ${e.stderr}`);
    const d = lxr(env, ['exec', '-d', 'ex', 'sh', '-c', 'echo done > /tmp/bg']);
    t.equal(d.status, 0, d.stderr);
    t.equal(d.stdout, '', 'exec -d prints nothing');
    t.ok(await until(() => lxr(env, ['exec', 'ex', 'cat', '/tmp/bg']).stdout === 'done\n', 20000), 'the -d command ran');
    lxr(env, ['rm', '-f', 'ex']);
    const h = lxr(env, ['run', '--help']).stdout;
    for (const g of ['Network and names:', 'Resources:', 'Namespaces:', 'Lifecycle and health:', 'Logging:']) t.match(h, `\n${g}\n`, `run --help: ${g}`);
    t.match(h, /Resources:\n(?:.*\n)*?\s+--ulimit /, '--ulimit is under Resources');
  });
}

