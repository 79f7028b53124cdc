// `lxr logs` keeps the container's stderr apart from its stdout (each printed to its own
// stream, as podman and docker do), and has -t/--timestamps and --since. The monitor writes
// the records (native/monitor.c); compared with podman in the same run where it is installed.
// --log-opt max-size/max-file: the monitor rotates as it writes, and no line is lost.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';
import { startPodman, which, type Podman } from '../../test/engines/helpers/engines.js';

if (!BUSYBOX) {
  t.plan(0, 'busybox is needed (apt-get install -y busybox-static)');
} else {
  let image: string;
  let pod: Podman | undefined;
  const env: LxrEnv = lxrEnv(t);
  const SCRIPT = 'echo out1; echo err1 >&2; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo out2; echo err2 >&2; printf partial; exit 0';
  t.before(async () => {
    image = await registryImage(t, 'test/logs:1', { cmd: ['sh', '-c', SCRIPT], env: ['PATH=/bin'] });
    if (which('podman') && which('runc') && !process.env.LXR_TEST_NO_PODMAN) {
      pod = await startPodman();
      const p = pod.podman('runc', ['pull', '--tls-verify=false', image]);
      if (p.status !== 0) throw new Error(`podman pull: ${p.stderr}`);
    }
  });
  t.teardown(async () => {
    await pod?.stop();
  });

  t.test('stdout and stderr apart, -t, --since, --tail; the same as podman', async (t) => {
    const c = lxr(env, ['create', '--name', 'two', image]);
    t.equal(c.status, 0, c.stderr);
    t.ok(await until(() => lxr(env, ['logs', 'two']).stderr === 'err1\n'), 'the first lines are logged');
    const first = lxr(env, ['logs', 'two']);
    t.equal(first.stdout, 'out1\n', 'stdout only on stdout');
    t.equal(first.stderr, 'err1\n', 'stderr only on stderr');
    const since = new Date().toISOString();
    t.equal(lxr(env, ['exec', 'two', 'touch', '/tmp/go']).status, 0);
    t.ok(await until(() => JSON.parse(lxr(env, ['inspect', 'two']).stdout)[0].State.Status === 'exited'), 'the container exits');
    const all = lxr(env, ['logs', 'two']);
    t.equal(all.stdout, 'out1\nout2\npartial', 'a last line without a newline stays without one');
    t.equal(all.stderr, 'err1\nerr2\n');
    const later = lxr(env, ['logs', '--since', since, 'two']);
    t.equal(later.stdout, 'out2\npartial', `--since ${since}: only what came after`);
    t.equal(later.stderr, 'err2\n');
    t.equal(lxr(env, ['logs', '--since', '1h', 'two']).stdout, all.stdout, '--since 1h: everything');
    t.equal(lxr(env, ['logs', '--since', String(Math.floor(Date.now() / 1000) + 3600), 'two']).stdout, '', '--since a Unix time in the future: nothing');
    const ts = lxr(env, ['logs', '-t', 'two']);
    const lines = ts.stdout.split('\n');
    t.equal(lines.length, 3);
    for (const l of lines) t.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (out1|out2|partial)$/, '-t: RFC 3339 nanoseconds before each line');
    t.match(ts.stderr, /^\d{4}-\S+Z err1\n\d{4}-\S+Z err2\n$/);
    const tail = lxr(env, ['logs', '--tail', '1', 'two']);
    t.equal(tail.stdout, 'partial', '--tail 1: the last line of all');
    t.equal(tail.stderr, '');
    const bad = lxr(env, ['logs', '--since', 'yesterday', 'two']);
    t.not(bad.status, 0);
    t.match(bad.stderr, /--since yesterday/);
    // the log file holds k8s-file records, as conmon writes them
    const id = c.stdout.trim();
    t.match(readFileSync(join(env.root, 'containers', id, 'ctr.log'), 'utf8'), /^\S+Z stdout F out1\n/);
    if (pod) {
      t.equal(pod.podman('runc', ['run', '-d', '--network', 'none', '--name', 'two', image]).status, 0);
      t.ok(await until(() => pod!.podman('runc', ['logs', 'two']).stderr === 'err1\n'));
      pod.podman('runc', ['exec', 'two', 'touch', '/tmp/go']);
      t.ok(await until(() => pod!.podman('runc', ['inspect', '--format', '{{.State.Status}}', 'two']).stdout.trim() === 'exited'));
      const p = pod.podman('runc', ['logs', 'two']);
      t.equal(p.stdout, all.stdout, 'podman logs: the same stdout');
      t.equal(p.stderr, all.stderr, 'podman logs: the same stderr');
    }
  });

  t.test('logs -f follows both streams until the container exits', async (t) => {
    const c = lxr(env, ['create', '--name', 'follow', image]);
    t.equal(c.status, 0, c.stderr);
    t.ok(await until(() => lxr(env, ['logs', 'follow']).stdout === 'out1\n'));
    const { lxrAsync } = await import('./helpers/env.js');
    const f = lxrAsync(env, ['logs', '-f', 'follow']);
    t.equal(lxr(env, ['exec', 'follow', 'touch', '/tmp/go']).status, 0);
    const r = await f;
    t.equal(r.stdout, 'out1\nout2\npartial');
    t.equal(r.stderr, 'err1\nerr2\n');
  });

  t.test('a reader that goes away early (logs | head) is no error', async (t) => {
    const c = lxr(env, ['run', '-d', '--name', 'big', image, 'seq', '1', '200000']);
    t.equal(c.status, 0, c.stderr);
    t.ok(await until(() => JSON.parse(lxr(env, ['inspect', 'big']).stdout)[0].State.Status === 'exited'));
    const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${LXR}" logs big | head -c 6`], { env: env.env, encoding: 'utf8' });
    t.equal(piped.stdout, '1\n2\n3\n');
    t.equal(piped.stderr, '', 'nothing about EPIPE');
    t.equal(lxr(env, ['logs', '--tail', '2', 'big']).stdout, '199999\n200000\n', 'all of it was logged');
  });

  /** The numbers of `line-N` lines, and what is not such a line. */
  const numbers = (text: string) => {
    const lines = text.split('\n').filter((l) => l !== '');
    return { nums: lines.map((l) => Number(/^line-(\d+)$/.exec(l)?.[1] ?? NaN)), bad: lines.filter((l) => !/^line-\d+$/.test(l)) };
  };
  /** The first place where the numbers are not each the one before plus one, or -1. */
  const firstBreak = (nums: number[]) => nums.findIndex((n, i) => i > 0 && n !== nums[i - 1]! + 1);

  t.test('max-size and max-file rotate as the monitor writes: no line lost, logs reads the files in order', async (t) => {
    const MAX = 2048;
    const r = lxr(env, ['run', '-d', '--name', 'rot', '--log-opt', `max-size=${MAX / 1024}k`, '--log-opt', 'max-file=3', image, 'sh', '-c', 'i=0; while :; do echo line-$i; i=$((i+1)); done']);
    t.equal(r.status, 0, r.stderr);
    const dir = join(env.root, 'containers', r.stdout.trim());
    const log = join(dir, 'ctr.log');
    t.ok(await until(() => existsSync(`${log}.2`), 30000), 'rotated twice');
    // read while the container writes as fast as it can: every read is whole and in order
    for (let i = 0; i < 3; i++) {
      const l = lxr(env, ['logs', 'rot']);
      const { nums, bad } = numbers(l.stdout);
      t.same(bad, [], `lxr logs while writing (${i}): only whole lines`);
      t.ok(nums.length > 2 * (MAX / 64), `lxr logs while writing (${i}): three files' worth (${nums.length} lines)`);
      const at = firstBreak(nums);
      t.equal(at, -1, `lxr logs while writing (${i}): contiguous${at >= 0 ? `, but ${nums[at - 1]} then ${nums[at]}` : ''} (${nums[0]}..${nums[nums.length - 1]})`);
    }
    t.equal(lxr(env, ['stop', '-t', '0', 'rot']).status, 0);
    t.ok(await until(() => JSON.parse(lxr(env, ['inspect', 'rot']).stdout)[0].State.Status === 'exited'));
    const names = readdirSync(dir).filter((f) => f.startsWith('ctr.log')).sort();
    t.same(names, ['ctr.log', 'ctr.log.1', 'ctr.log.2'], 'max-file=3: three files, nothing else');
    const files = [`${log}.2`, `${log}.1`, log];
    const sizes = files.map((f) => statSync(f).size);
    const texts = files.map((f) => readFileSync(f, 'utf8'));
    const longest = Math.max(...texts.flatMap((x) => x.split('\n').map((l) => l.length + 1)));
    t.ok(sizes.every((n) => n <= MAX), `no file over max-size ${MAX} (${sizes})`);
    t.ok(sizes.slice(0, 2).every((n) => n > MAX - longest), `a file is rotated only when the next record would not fit (${sizes}, records up to ${longest} bytes)`);
    const kept = texts.join('').split('\n').filter((l) => l !== '').map((l) => l.replace(/^\S+Z stdout F /, '')).join('\n');
    const { nums, bad } = numbers(kept);
    t.same(bad, [], 'the files hold stdout records of whole lines');
    t.equal(firstBreak(nums), -1, `the kept lines are contiguous across the files (${nums[0]}..${nums[nums.length - 1]})`);
    t.ok(nums[0]! > 0, 'the oldest lines were dropped');
    const after = lxr(env, ['logs', 'rot']);
    t.equal(after.stdout, `${kept}\n`, 'lxr logs prints the kept lines, oldest file first');
    t.equal(lxr(env, ['logs', '--tail', '2', 'rot']).stdout, `line-${nums[nums.length - 2]}\nline-${nums[nums.length - 1]}\n`, '--tail: the last lines of the current file');
    lxr(env, ['rm', '-f', 'rot']);
  });

  t.test('max-size without max-file: one file, the newest lines (docker\'s max-file defaults to 1)', async (t) => {
    const r = lxr(env, ['run', '-d', '--name', 'one', '--log-opt', 'max-size=1k', image, 'sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done']);
    t.equal(r.status, 0, r.stderr);
    t.ok(await until(() => JSON.parse(lxr(env, ['inspect', 'one']).stdout)[0].State.Status === 'exited', 30000));
    const dir = join(env.root, 'containers', r.stdout.trim());
    t.same(readdirSync(dir).filter((f) => f.startsWith('ctr.log')), ['ctr.log'], 'only ctr.log');
    t.ok(statSync(join(dir, 'ctr.log')).size <= 1024, 'within max-size');
    const { nums, bad } = numbers(lxr(env, ['logs', 'one']).stdout);
    t.same(bad, []);
    t.equal(nums[nums.length - 1], 1999, 'ends with the last line');
    t.equal(firstBreak(nums), -1, `contiguous (${nums[0]}..1999)`);
    lxr(env, ['rm', '-f', 'one']);
  });

  t.test('logs -f follows across rotations', async (t) => {
    const N = 300;
    // the container writes its numbered lines only once `logs -f` has shown its first line,
    // so that no line can rotate away before the follower opened the files, however slow
    // this machine is at the moment
    const gate = mkdtempSync(join(tmpdir(), 'lxr-logs-gate-'));
    t.teardown(() => rmSync(gate, { recursive: true, force: true }));
    const r = lxr(env, ['run', '-d', '--name', 'slow', '-v', `${gate}:/gate`, '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', image, 'sh', '-c',
      `echo ready; while [ ! -e /gate/go ]; do sleep 0.05; done; i=0; while [ $i -lt ${N} ]; do echo line-$i; i=$((i+1)); sleep 0.01; done`]);
    t.equal(r.status, 0, r.stderr);
    const f = spawn(process.execPath, [LXR, 'logs', '-f', 'slow'], { env: env.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    f.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.startsWith('ready\n') && !existsSync(join(gate, 'go'))) writeFileSync(join(gate, 'go'), '');
    });
    f.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise<number | null>((resolve) => f.on('close', resolve));
    t.equal(status, 0, stderr);
    const { nums, bad } = numbers(stdout.replace(/^ready\n/, ''));
    t.same(bad, []);
    t.same(nums, Array.from({ length: N }, (_, i) => i), `every line once, in order, across ${Math.floor((N * 50) / 1024)} or so rotations`);
    t.ok(existsSync(join(env.root, 'containers', r.stdout.trim(), 'ctr.log.2')), 'the log was rotated');
    lxr(env, ['rm', '-f', 'slow']);
  });

  t.test('--log-driver none: nothing logged, logs says so', async (t) => {
    const n = lxr(env, ['run', '-d', '--name', 'quiet', '--log-driver', 'none', image, 'sh', '-c', 'echo hidden; exec sleep 300']);
    t.equal(n.status, 0, n.stderr);
    const dir = join(env.root, 'containers', n.stdout.trim());
    const ql = lxr(env, ['logs', 'quiet']);
    t.equal(ql.status, 125);
    t.match(ql.stderr, /configured logging driver does not support reading/);
    t.same(readdirSync(dir).filter((f) => f.startsWith('ctr.log') && statSync(join(dir, f)).size > 0), [], 'nothing logged');
    lxr(env, ['rm', '-f', 'quiet']);
  });
}
