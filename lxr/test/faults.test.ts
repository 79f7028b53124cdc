// Faults, as a new user meets them: a torn container record, a killed monitor, usage errors
// of create. Every container stays visible and removable, and nothing is left behind
// (processes, mounts, veths, NAT rules, leases, cgroups, files). The bridge and subnet are
// the test's own, never lxr0.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, startRegistry, type RegistryHandle } from '../../image-tool/test/helpers/registry.js';
import { rulesMentioning } from './helpers/netns.js';
import * as net from '../network/manager/index.js';
import { networkOptions } from '../containers/network.js';
import { lxrContext } from '../core/context.js';
import { overlappingRoutes } from '../network/link.js';
import { parseSubnet } from '../network/ipv4.js';
import { BUSYBOX, cgroupsLeft, lxr, lxrEnv, mountsUnder, netnsLeft, pushTestImage, until, type LxrEnv } from './helpers/env.js';

const haveIp = spawnSync('ip', ['-V']).status === 0;

function gone(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

if (!BUSYBOX || !haveIp) {
  t.plan(0, 'busybox and iproute2 are needed');
} else {
  let reg: RegistryHandle;
  let image: string;
  let webImage: string;
  const env: LxrEnv = lxrEnv(t);
  const bridge = `lxrft${process.pid % 10000}`;
  const subnet = `10.214.${process.pid % 200}.0/24`;
  const confDir = mkdtempSync(join(tmpdir(), 'lxr-fault-net-'));
  env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: subnet };
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(confDir, { recursive: true, force: true });
  });
  t.before(async () => {
    reg = await startRegistry();
    image = await pushTestImage(reg.host, 'test/faults:1', { cmd: ['sleep', '300'] });
    webImage = await pushTestImage(reg.host, 'test/faults-web:1', { cmd: ['httpd', '-f', '-p', '80', '-h', '/www'], extraLayers: [{ 'www/': '', 'www/index.html': 'hello\n' }] });
  });
  t.teardown(() => reg?.stop());

  const ps = (): Array<Record<string, any>> => JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout);
  const veths = () => spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  const netState = env.netState;
  /** the leases and attachment records of the network layer */
  const netFiles = (): string[] => {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of existsSync(d) ? readdirSync(d, { withFileTypes: true }) : []) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name === 'leases.json') {
          const leases = JSON.parse(readFileSync(join(d, e.name), 'utf8')).leases ?? {};
          for (const ip of Object.keys(leases)) out.push(`${join(d, e.name)}: ${ip}`);
        } else if (e.name.endsWith('.json')) out.push(join(d, e.name));
      }
    };
    walk(netState);
    return out;
  };

  function assertClean(t: Test, what: string, ip?: string): void {
    const containers = join(env.root, 'containers');
    t.same(existsSync(containers) ? readdirSync(containers).filter((f) => !f.startsWith('.')) : [], [], `${what}: no container directory`);
    t.same(mountsUnder(env.root), [], `${what}: nothing mounted`);
    const rt = join(env.runRoot, 'runtime');
    t.same(existsSync(rt) ? readdirSync(rt).filter((f) => !f.startsWith('.') && f !== '@seccomp') : [], [], `${what}: no runtime state`);
    t.same(cgroupsLeft(env), [], `${what}: no cgroup`);
    t.same(netnsLeft(env), [], `${what}: no network namespace`);
    t.same(veths(), [], `${what}: no veth`);
    t.same(netFiles(), [], `${what}: no lease or attachment`);
    if (ip) t.same(rulesMentioning(ip), [], `${what}: no iptables rule for ${ip}`);
    t.same(ps(), [], `${what}: ps -a is empty`);
  }

  t.test('a torn container.json: ps -a shows it broken, rm -f NAME removes everything', async (t) => {
    for (const by of ['name', 'id']) {
      const c = lxr(env, ['create', '--name', `torn-${by}`, '-p', '18080:80', image]);
      t.equal(c.status, 0, c.stderr);
      const id = c.stdout.trim();
      const [row] = ps();
      const pid = row!.Pid as number;
      const ip = row!.IP as string;
      t.ok(pid > 0 && ip, 'running with an address');
      const rec = JSON.parse(readFileSync(join(env.root, 'containers', id, 'container.json'), 'utf8'));
      const monitorPid = rec.monitorPid as number;
      // keep the first bytes: a torn write that still holds the name
      const file = join(env.root, 'containers', id, 'container.json');
      truncateSync(file, readFileSync(file, 'utf8').indexOf('"image"'));

      const rows = ps();
      t.equal(rows.length, 1, 'ps -a still lists it');
      t.equal(rows[0]!.State, 'broken');
      t.match(rows[0]!.Status, /Broken .*container\.json/, 'with the reason and the file');
      t.equal(rows[0]!.Name, `torn-${by}`, 'the name is recovered');
      t.match(lxr(env, ['ps', '-a']).stdout, /Broken/, 'the table shows it too');
      const start = lxr(env, ['start', `torn-${by}`]);
      t.not(start.status, 0);
      t.match(start.stderr, /is broken/, 'other commands say the record is broken');

      const rm = lxr(env, ['rm', '-f', by === 'name' ? `torn-${by}` : id.slice(0, 12)]);
      t.equal(rm.status, 0, rm.stderr);
      t.ok(await until(() => gone(pid)), 'the container process is gone');
      t.ok(await until(() => gone(monitorPid)), 'its monitor is gone');
      assertClean(t, `torn record, rm -f by ${by}`, ip);
    }
  });

  t.test('the monitor killed: ps asks the runtime and shows the container running', async (t) => {
    const c = lxr(env, ['create', '--name', 'orphan', image]);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    const rec = JSON.parse(readFileSync(join(env.root, 'containers', id, 'container.json'), 'utf8'));
    const pid = rec.pid as number;
    process.kill(rec.monitorPid, 'SIGKILL');
    t.ok(await until(() => gone(rec.monitorPid)), 'the monitor died');
    t.ok(!gone(pid), 'the container process still runs');
    const [row] = ps();
    t.equal(row!.State, 'running', 'ps says running, as the runtime does');
    t.equal(row!.Pid, pid);
    t.notMatch(row!.Status, /Exited|stale/);
    // stop without a monitor: the container stops and what it used is released
    const stop = lxr(env, ['stop', '-t', '1', 'orphan']);
    t.equal(stop.status, 0, stop.stderr);
    t.ok(await until(() => gone(pid)));
    t.equal(ps()[0]!.State, 'exited');
    t.same(netnsLeft(env), [], 'stop released the network');
    t.same(mountsUnder(env.root), [], 'and the mount');
    t.equal(lxr(env, ['rm', 'orphan']).status, 0);
    assertClean(t, 'monitor killed');
  });

  t.test('the default subnet: the first pool that overlaps no route, never podman\'s or docker\'s', async (t) => {
    // a throw-away network namespace with routes the test makes: never the host's routes
    const ns = `lxrft-subnet-${process.pid}`;
    const ip = (...a: string[]) => spawnSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
    t.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    t.teardown(() => void spawnSync('ip', ['netns', 'del', ns]));
    // a veth pair, both ends inside (no dummy module on every kernel)
    t.equal(ip('link', 'add', 'dummy0', 'type', 'veth', 'peer', 'name', 'dummy1').status, 0);
    t.equal(ip('link', 'set', 'dummy0', 'up').status, 0);
    t.equal(ip('link', 'set', 'dummy1', 'up').status, 0);
    const path = `/run/netns/${ns}`;
    t.equal(net.pickDefaultSubnet({ netns: path }), '10.80.0.0/16', 'no routes: the first pool');
    t.notOk(net.DEFAULT_SUBNET_POOLS.some((p) => p === '10.88.0.0/16' || p === '172.17.0.0/16'), 'podman and docker defaults are not candidates');
    t.equal(ip('route', 'add', '10.80.0.0/16', 'dev', 'dummy0').status, 0);
    t.equal(ip('addr', 'add', '10.81.3.1/24', 'dev', 'dummy0').status, 0);
    t.equal(net.pickDefaultSubnet({ netns: path }), '10.82.0.0/16', 'routes and addresses are skipped');
    t.equal(net.pickDefaultSubnet({ netns: path, taken: ['10.82.0.0/24'] }), '10.83.0.0/16', 'so are other networks\' subnets');
    t.equal(ip('route', 'add', '10.64.0.0/10', 'dev', 'dummy0').status, 0);
    t.equal(net.pickDefaultSubnet({ netns: path }), '172.18.0.0/16', 'a wide route skips every pool inside it');
    t.same(overlappingRoutes(parseSubnet('10.85.0.0/16'), undefined, path), ['10.64.0.0/10 dev dummy0'], 'an overlap names the interface');
    t.throws(() => net.pickDefaultSubnet({ netns: path, pools: ['10.90.0.0/16'] }), /no free subnet/);
  });

  t.test('network state is one global place, whatever --root', async (t) => {
    const saved = process.env.LXR_NET_STATE_DIR;
    delete process.env.LXR_NET_STATE_DIR;
    t.teardown(() => void (saved === undefined ? delete process.env.LXR_NET_STATE_DIR : (process.env.LXR_NET_STATE_DIR = saved)));
    const a = networkOptions(lxrContext({ root: '/some/root', runRoot: '/some/run' }));
    const b = networkOptions(lxrContext({ root: '/other/root', runRoot: '/other/run' }));
    t.same(a, b, 'two roots share the network state');
    const ipam = (net.bridgeConfList({ ...a, name: 'x', bridge: 'x0', subnet: '10.80.0.0/16' }).plugins[0] as unknown as { ipam: { dataDir: string } }).ipam;
    t.equal(ipam.dataDir, join(net.DEFAULT_NET_STATE_DIR, 'ipam'), 'the default network records the global lease directory');
    t.notMatch(ipam.dataDir, /^\/(some|other)\//, 'not one inside a root');

    // two roots, one network: distinct addresses; the first root removed, the other's lease stays
    const other = lxrEnv(t);
    other.env = { ...other.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: subnet, LXR_NET_STATE_DIR: env.netState };
    const c1 = lxr(other, ['create', '--name', 'in-other', image]);
    t.equal(c1.status, 0, c1.stderr);
    const c2 = lxr(env, ['create', '--name', 'in-main', image]);
    t.equal(c2.status, 0, c2.stderr);
    const ip1 = JSON.parse(lxr(other, ['ps', '--format', 'json']).stdout)[0].IP;
    const ip2 = ps()[0]!.IP;
    t.ok(ip1 && ip2 && ip1 !== ip2, `distinct addresses: ${ip1} ${ip2}`);
    const gc = lxr(env, ['gc']);
    t.equal(gc.status, 0, gc.stderr);
    t.ok(netFiles().some((f) => f.endsWith(`: ${ip1}`)), 'gc in one root keeps the network of another root\'s running container');
    t.equal(lxr(other, ['rm', '-f', 'in-other']).status, 0);
    rmSync(other.root, { recursive: true, force: true });
    t.ok(netFiles().some((f) => f.endsWith(`: ${ip2}`)), 'the other root\'s lease is still held');
    const c3 = lxr(other, ['create', '--name', 'again', image]);
    t.equal(c3.status, 0, c3.stderr);
    t.not(JSON.parse(lxr(other, ['ps', '--format', 'json']).stdout)[0].IP, ip2, 'its address is not handed out twice');
    t.equal(lxr(other, ['rm', '-f', 'again']).status, 0);
    t.equal(lxr(env, ['rm', '-f', 'in-main']).status, 0);
    assertClean(t, 'two roots');
  });

  t.test('a simulated reboot: ps -a shows exited, start brings network and ports back, --restart always comes back by itself', async (t) => {
    const port = await freePort();
    const web = lxr(env, ['create', '--name', 'web', '-p', `${port}:80`, webImage]);
    t.equal(web.status, 0, web.stderr);
    t.equal(lxr(env, ['create', '--name', 'keeper', '--restart', 'always', image]).status, 0);
    const before = ps();
    const ips = before.map((r) => r.IP as string);
    // what a reboot does: every process dies, mounts, namespaces, bridges, rules and /run vanish
    for (const r of before) {
      const rec = JSON.parse(readFileSync(join(env.root, 'containers', r.Id, 'container.json'), 'utf8'));
      process.kill(rec.monitorPid, 'SIGKILL');
      process.kill(rec.pid, 'SIGKILL');
      t.ok(await until(() => gone(rec.pid) && gone(rec.monitorPid)));
    }
    for (const m of mountsUnder(env.root).reverse()) spawnSync('umount', ['-l', m]);
    for (const n of netnsLeft(env)) spawnSync('ip', ['netns', 'del', n]);
    for (const ip of ips) for (const table of ['nat', 'filter']) for (const rule of rulesMentioning(ip)) {
      if (rule.startsWith('-A ')) spawnSync('iptables', ['-w', '-t', table, '-D', ...rule.slice(3).split(' ')]);
    }
    spawnSync('ip', ['link', 'del', bridge]);
    rmSync(env.runRoot, { recursive: true, force: true });
    rmSync(env.netState, { recursive: true, force: true });
    for (const c of cgroupsLeft(env)) spawnSync('rmdir', [`/sys/fs/cgroup/${c}`]);

    const noPolicies = { env: { LXR_NO_RESTART_POLICIES: '1' } };
    const after = JSON.parse(lxr(env, ['ps', '-a', '--format', 'json'], noPolicies).stdout) as Array<Record<string, any>>;
    t.same(after.map((r) => r.State), ['exited', 'exited'], 'every container is exited');
    const st = lxr(env, ['start', 'web'], noPolicies);
    t.equal(st.status, 0, st.stderr);
    // each attempt bounded: a SYN sent before the container's veth is up is dropped, not refused
    const body = await until(async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();
      } catch {
        return undefined;
      }
    }, 30000);
    if (body !== 'hello\n') {
      // what to look at when this fails: the state of web, its rules and its log
      const sh = (c: string, a: string[]) => spawnSync(c, a, { encoding: 'utf8' }).stdout;
      t.comment(`ps -a: ${lxr(env, ['ps', '-a'], noPolicies).stdout}`);
      t.comment(`nat LXR-HOSTPORTS: ${sh('iptables', ['-w', '-t', 'nat', '-S', 'LXR-HOSTPORTS'])}`);
      t.comment(`nat LXR-POSTROUTING: ${sh('iptables', ['-w', '-t', 'nat', '-S', 'LXR-POSTROUTING'])}`);
      t.comment(`filter LXR-INPUT: ${sh('iptables', ['-w', '-S', 'LXR-INPUT'])}`);
      t.comment(`${bridge}: ${sh('ip', ['-br', 'addr', 'show', 'dev', bridge])} route_localnet ${sh('sysctl', ['-n', `net.ipv4.conf.${bridge}.route_localnet`])}`);
      t.comment(`logs web: ${lxr(env, ['logs', 'web'], noPolicies).stdout.slice(-500)}`);
    }
    t.equal(body, 'hello\n', 'start brought back its network and its published port');
    // the next lxr command starts the --restart always container
    const rows = ps();
    t.equal(rows.find((r) => r.Name === 'keeper')?.State, 'running', '--restart always came back');
    t.ok(rows.find((r) => r.Name === 'keeper')?.IP, 'with an address');
    t.equal(lxr(env, ['rm', '-f', 'web', 'keeper']).status, 0);
    assertClean(t, 'after the reboot');
  });

  t.test('usage errors of create leave nothing, not even the state directory', async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'lxr-fault-usage-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const fresh = join(root, 'lxr');
    // the default state paths (no --root), so that the early monitor is started
    const e = { ...env, env: { ...env.env, LXR_ROOT: fresh, LXR_RUN_ROOT: join(root, 'run'), LXR_IMAGE_STORE: join(root, 'images') } };
    for (const args of [['create'], ['create', '--memory', '-5m', image], ['create', '--memory=-5m', image], ['create', '--no-such-flag', image], ['run', '-d', '--bogus=1', image]]) {
      const r = lxr(e, args);
      t.equal(r.status, 125, args.join(' '));
      t.match(r.stderr, /^lxr: /, `${args.join(' ')}: ${r.stderr.trim()}`);
      if (args.some((a) => a.includes('-5m'))) t.match(r.stderr, /^lxr: --memory -5m: /, 'the error names the flag and its value');
      t.notOk(existsSync(fresh), `${args.join(' ')}: nothing was written`);
    }
    t.same(readdirSync(root), [], 'nothing at all');
  });
}

if (BUSYBOX && haveIp) {
  // last: it spoils a blob of the store
  t.test('system check finds what no container owns, one line each; --repair removes it', async (t) => {
    const env: LxrEnv = lxrEnv(t);
    const reg = await startRegistry();
    t.teardown(() => reg.stop());
    const image = await pushTestImage(reg.host, 'test/check:1', { cmd: ['sleep', '300'] });
    const bridge = `lxrck${process.pid % 10000}`;
    const confDir = mkdtempSync(join(tmpdir(), 'lxr-check-net-'));
    env.env = { ...env.env, LXR_NETWORK: 'bridge', LXR_NET_CONF_DIR: confDir, LXR_NET_BRIDGE: bridge, LXR_NET_SUBNET: `10.216.${process.pid % 200}.0/24` };
    t.teardown(() => {
      spawnSync('ip', ['link', 'del', bridge]);
      rmSync(confDir, { recursive: true, force: true });
    });
    const check = (repair = false) => lxr(env, ['system', 'check', ...(repair ? ['--repair'] : [])]);
    let r = check();
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'no problems found\n', 'a fresh root is clean');

    // a container killed with its monitor (what OOM or kill -9 leave): mount, runtime state, netns, attachment
    const c = lxr(env, ['create', '--name', 'killed', '-p', '18081:80', image]);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    const rec = JSON.parse(readFileSync(join(env.root, 'containers', id, 'container.json'), 'utf8'));
    process.kill(rec.monitorPid, 'SIGKILL');
    process.kill(rec.pid, 'SIGKILL');
    t.ok(await until(() => gone(rec.pid) && gone(rec.monitorPid)));
    // a running container whose record is torn: reported, never removed by --repair
    const b = lxr(env, ['create', '--name', 'torn', image]);
    t.equal(b.status, 0, b.stderr);
    const tornFile = join(env.root, 'containers', b.stdout.trim(), 'container.json');
    truncateSync(tornFile, readFileSync(tornFile, 'utf8').indexOf('"image"'));
    // a directory a dead create left, a cgroup of no container, a blob with a flipped byte
    const orphanDir = join(env.root, 'containers', 'f'.repeat(64));
    mkdirSync(orphanDir);
    const orphanCg = `/sys/fs/cgroup/pids/${env.cgroupParent}/${'e'.repeat(64)}`;
    mkdirSync(orphanCg);
    t.teardown(() => void (existsSync(orphanCg) && rmdirSync(orphanCg)));
    const halfSnapshot = join(env.root, 'snapshots', `.tmp-sha256-${'d'.repeat(64)}-999999999-x`);
    mkdirSync(halfSnapshot);
    const blobs = join(env.store, 'blobs', 'sha256');
    const blob = join(blobs, readdirSync(blobs).find((f) => readFileSync(join(blobs, f)).length > 100)!);
    const data = readFileSync(blob);
    data[50] ^= 0xff;
    writeFileSync(blob, data);

    r = check();
    t.equal(r.status, 1, 'problems found: exit 1');
    const lines = r.stdout.trim().split('\n');
    t.comment(r.stdout);
    const has = (re: RegExp, what: string) => t.ok(lines.some((l) => re.test(l)), what);
    has(/^container: container torn: its record .*container\.json is broken/, 'the broken record');
    has(new RegExp(`^container: container directory ${orphanDir} has no record`), 'the directory without a record');
    has(new RegExp(`^runtime: runtime state .*${id} of stopped container killed`), 'runtime state of a container that died');
    has(new RegExp(`^mount: .*${id}/merged: container killed is not running`), 'its overlay mount');
    has(new RegExp(`^netns: .*${id}: container killed is not running`), 'its network namespace');
    has(/^attachment: network lxr: attachment of killed .*belongs to no running container/, 'its network attachment (veth, lease, rules)');
    has(new RegExp(`^cgroup: cgroup ${orphanCg}: no container`), 'the cgroup of no container');
    has(new RegExp(`^snapshot: snapshot ${halfSnapshot}: a half-unpacked layer`), 'a snapshot a crash left half-unpacked');
    has(new RegExp(`^blob: blob sha256:${blob.slice(-64)} fails its digest`), 'the blob that fails its digest');

    r = check(true);
    t.equal(r.status, 1, 'the broken record remains after --repair');
    r = check();
    t.same(r.stdout.trim().split('\n').filter((l) => !/^container: container torn/.test(l)), [], 'only the broken record is left');
    t.notOk(existsSync(orphanDir));
    t.notOk(existsSync(orphanCg));
    t.notOk(existsSync(halfSnapshot));
    t.notOk(existsSync(blob));
    t.equal(JSON.parse(lxr(env, ['ps', '-a', '--format', 'json']).stdout).find((x: { Name: string }) => x.Name === 'killed').State, 'exited');
    t.equal(lxr(env, ['rm', '-f', 'killed', 'torn']).status, 0);
    r = check();
    t.equal(r.stdout, 'no problems found\n', r.stdout);
    t.same(mountsUnder(env.root), []);
    t.same(netnsLeft(env), []);
    t.same(cgroupsLeft(env), []);
    t.same(spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout.trim(), '', 'no veth');
  });
}
