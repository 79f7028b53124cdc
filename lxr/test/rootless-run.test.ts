// lxr as an ordinary user (issue 17): a real unprivileged user made by the test, with its own
// /etc/subuid range and no sudo, pulls from a loopback registry and runs containers. Image
// owners keep their (shifted) ids, the rootfs is an overlay mounted inside the user namespace,
// the network is slirp4netns (-p reachable on the host's loopback) or none, and nothing is
// left behind: no process, no mount, no file owned by root in the user's home.
import t from 'tap';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { REPO, registryImage, until } from './helpers/env.js';
import { dropSubIds, giveSubIds, lxrAsUser, lxrAsUserAsync, makeUser, rootOwnedUnder, rootlessProblem, userProcesses, asUser, type User } from './helpers/rootless.js';

const problem = rootlessProblem() ?? (['/usr/bin/pasta', '/usr/bin/slirp4netns'].every((p) => existsSync(p)) ? undefined : 'pasta and slirp4netns are needed (scripts/setup-debian.sh: passt slirp4netns)');
if (problem) t.fail(problem);

const START = 1700000000;
const SIZE = 4000000; // covers uid 3000000

/** One GET of http://127.0.0.1:port/path: the body of a 200, else undefined. */
function getOnce(port: number, path: string): Promise<string | undefined> {
  return new Promise<string | undefined>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** GET until it answers, with a deadline (the server in the container may still be starting). */
async function httpGet(port: number, path: string): Promise<string | undefined> {
  const end = Date.now() + 15000;
  for (;;) {
    const body = await getOnce(port, path);
    if (body !== undefined || Date.now() > end) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ownersLayer = [
  { path: 'owned/', type: 'dir' as const, uid: 1000, gid: 1000 },
  { path: 'owned/nobody', type: 'file' as const, data: 'n', uid: 65534, gid: 65534 },
  { path: 'owned/big', type: 'file' as const, data: 'b', uid: 3000000, gid: 3000001 },
  { path: 'dev/', type: 'dir' as const },
  { path: 'dev/mynull', type: 'char' as const, devmajor: 1, devminor: 3 },
];

function userState(u: User): { store: string; containers: string[] } {
  const store = join(u.home, '.local', 'share', 'lxr');
  const dir = join(store, 'containers');
  return { store, containers: existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [] };
}

/** Mounts on the host (this test's mount namespace) under the user's home. */
function hostMountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

t.test('lxr as an ordinary user', async (t) => {
  const image = await registryImage(t, 'rootless/owners:1', { entryLayers: [ownersLayer], cmd: ['sh'] });
  const plain = await registryImage(t, 'rootless/plain:1');
  const u = makeUser(t, 'lxrfe');
  giveSubIds(u, START, SIZE);

  await t.test('pull into the per-user store, with no flags', async (t) => {
    const r = await lxrAsUserAsync(u, ['pull', image]);
    t.equal(r.status, 0, r.stderr);
    t.ok(existsSync(join(u.home, '.local', 'share', 'lxr', 'images', 'index.json')), 'the store is ~/.local/share/lxr/images');
    const imgs = lxrAsUser(u, ['images']);
    t.match(imgs.stdout, /rootless\/owners/, 'lxr images lists it');
    const li = asUser(u, [process.execPath, join(REPO, 'bin', 'lxr-image.js'), 'images']);
    t.equal(li.status, 0, li.stderr);
    t.match(li.stdout, /rootless\/owners/, 'lxr-image uses the same per-user store by default');
    const r2 = await lxrAsUserAsync(u, ['pull', plain]);
    t.equal(r2.status, 0, r2.stderr);
  });

  await t.test('run --rm --network none: image owners, shifted into the subuid range', async (t) => {
    const r = lxrAsUser(u, ['run', '--rm', '--network', 'none', image, 'sh', '-c', 'id -u; stat -c "%n %u %g" /owned /owned/nobody /owned/big; cat /proc/self/uid_map | tr -s " "; ip -o link | grep -c ": "']);
    t.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.equal(lines[0], '0', 'root in the container');
    t.equal(lines[1], '/owned 1000 1000');
    t.equal(lines[2], '/owned/nobody 65534 65534');
    t.equal(lines[3], '/owned/big 3000000 3000001', 'a uid above 65535');
    t.equal(lines[4]!.trim(), `0 ${u.uid} 1`);
    t.equal(lines[5]!.trim(), `1 ${START} ${SIZE}`);
    t.equal(lines[6], '1', '--network none: only lo');
    // on the host, the snapshot's files belong to the user's subordinate ids
    const snaps = join(u.home, '.local', 'share', 'lxr', 'snapshots');
    const snap = readdirSync(snaps).map((d) => join(snaps, d)).find((d) => existsSync(join(d, 'owned')))!;
    t.equal(statSync(join(snap, 'owned')).uid, START + 999, 'uid 1000 is subuid start + 999 on the host');
    t.equal(lstatSync(join(snap, 'owned', 'big')).uid, START + 2999999);
    t.equal(lstatSync(join(snap, 'owned', 'big')).gid, START + 3000000);
    t.ok(existsSync(join(snap, 'dev')), 'the layer\'s /dev is there');
    t.notOk(existsSync(join(snap, 'dev', 'mynull')), 'but not its device node: skipped, as podman does in a user namespace');
    t.same(userState(u).containers, [], '--rm removed the container');
  });

  await t.test('run -d with -p, exec, logs, ps, inspect, stop, start, rm', async (t) => {
    const port = 20000 + (process.pid % 20000);
    const d = lxrAsUser(u, ['run', '-d', '--name', 'web', '--network', 'slirp4netns', '-p', `${port}:8080`, image, 'sh', '-c', 'echo started; touch /owned/new; echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']);
    t.equal(d.status, 0, d.stderr);
    t.teardown(() => lxrAsUser(u, ['rm', '-f', 'web']));
    t.equal(await httpGet(port, '/index.html'), 'hello\n', '-p: the published port answers on the host\'s loopback (slirp4netns)');
    const ps = lxrAsUser(u, ['ps']);
    t.match(ps.stdout, /\bweb\b/, 'ps lists it');
    t.match(ps.stdout, new RegExp(`${port}->8080`));
    t.match(lxrAsUser(u, ['logs', 'web']).stdout, /started/, 'logs');
    const ex = lxrAsUser(u, ['exec', 'web', 'sh', '-c', 'id -u; stat -c %u /owned/big; ip -o -4 addr show tap0']);
    t.equal(ex.status, 0, ex.stderr);
    t.match(ex.stdout, /^0\n3000000\n/, 'exec joins the user namespace');
    t.match(ex.stdout, /10\.0\.2\.100/, 'slirp4netns gave tap0 its address');
    const exu = lxrAsUser(u, ['exec', '-u', 'nobody', 'web', 'id']);
    t.equal(exu.status, 0, exu.stderr);
    t.match(exu.stdout, /^uid=65534\(nobody\) gid=65534\(nogroup\)/, 'exec -u NAME: the image\'s /etc/passwd, read through the running container');
    const ru = lxrAsUser(u, ['run', '--rm', '--network', 'none', '-u', 'dev', image, 'id', '-u']);
    t.equal(ru.stdout, '1000\n', `run -u NAME: ${ru.stderr}`);
    const insp = JSON.parse(lxrAsUser(u, ['inspect', 'web']).stdout);
    const c = Array.isArray(insp) ? insp[0] : insp;
    t.equal(c.Rootfs.Driver, 'overlay', 'the kernel\'s overlay');
    t.equal(c.Rootfs.Rootless, true);
    t.same(c.Rootfs.UidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: START, size: SIZE }]);
    t.equal(c.NetworkSettings.Network, 'slirp4netns');
    t.same(hostMountsUnder(u.home), [], 'the rootfs is not mounted on the host');
    t.ok(userProcesses(u).some((p) => /slirp4netns/.test(p.cmd)), 'slirp4netns runs');

    t.equal(lxrAsUser(u, ['stop', 'web']).status, 0);
    t.same(userProcesses(u).filter((p) => /slirp4netns|sleep infinity|httpd/.test(p.cmd)), [], 'stop ended the container, slirp4netns and its namespace holder');
    const st = lxrAsUser(u, ['start', 'web']);
    t.equal(st.status, 0, st.stderr);
    t.equal(await httpGet(port, '/index.html'), 'hello\n', 'after start, the port answers again');
    const rm = lxrAsUser(u, ['rm', '-f', 'web']);
    t.equal(rm.status, 0, rm.stderr);
    await until(() => userProcesses(u).length === 0, 10000);
    t.same(userProcesses(u), [], 'rm left no process of the user (monitor, slirp4netns, holder, container)');
    t.same(userState(u).containers, [], 'rm removed the container\'s files (its upper layer holds /owned, a directory of a subordinate uid)');
  });

  await t.test('the default network is pasta (podman 5), -p reachable on loopback', async (t) => {
    const port = 20001 + (process.pid % 20000);
    const d = lxrAsUser(u, ['run', '-d', '--name', 'pweb', '-p', `127.0.0.1:${port}:8080`, image, 'sh', '-c', 'echo pasta > /tmp/index.html; cat /etc/resolv.conf; exec httpd -f -p 8080 -h /tmp']);
    t.equal(d.status, 0, d.stderr);
    t.teardown(() => lxrAsUser(u, ['rm', '-f', 'pweb']));
    t.equal(await httpGet(port, '/index.html'), 'pasta\n', 'the published port answers on 127.0.0.1');
    const insp = JSON.parse(lxrAsUser(u, ['inspect', 'pweb']).stdout);
    t.equal((Array.isArray(insp) ? insp[0] : insp).NetworkSettings.Network, 'pasta', 'pasta is the default where it is installed');
    t.match(lxrAsUser(u, ['logs', 'pweb']).stdout, /nameserver 169\.254\.1\.1/, 'DNS through pasta\'s forwarder');
    t.ok(userProcesses(u).some((p) => /pasta/.test(p.cmd)), 'pasta runs');
    t.equal(lxrAsUser(u, ['rm', '-f', 'pweb']).status, 0);
    await until(() => userProcesses(u).length === 0, 10000);
    t.same(userProcesses(u), [], 'rm left no pasta, holder or container process');
  });

  await t.test('-v: a directory of the user, written by the container', async (t) => {
    const data = join(u.home, 'data');
    t.equal(asUser(u, ['mkdir', data]).status, 0);
    const r = lxrAsUser(u, ['run', '--rm', '--network', 'none', '-v', `${data}:/data`, image, 'sh', '-c', 'echo x > /data/f']);
    t.equal(r.status, 0, r.stderr);
    t.equal(statSync(join(data, 'f')).uid, u.uid, 'root in the container writes as the user');
  });

  await t.test('lxr unshare: root of the user namespace, where subuid files can be removed', async (t) => {
    const r = lxrAsUser(u, ['unshare', 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "']);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, new RegExp(`^0\\n\\s*0 ${u.uid} 1\\n\\s*1 ${START} ${SIZE}\\n$`));
    const victim = join(u.home, 'copy');
    // a copy of the snapshots, owned by the user's subuids
    const snaps = join(u.home, '.local', 'share', 'lxr', 'snapshots');
    t.equal(lxrAsUser(u, ['unshare', 'cp', '-a', snaps, victim]).status, 0);
    t.not(asUser(u, ['rm', '-rf', victim]).status, 0, 'outside, the user cannot remove files of their subuids');
    t.equal(lxrAsUser(u, ['unshare', 'rm', '-rf', victim]).status, 0, 'lxr unshare rm -rf can');
    t.notOk(existsSync(victim));
    t.equal(lxrAsUser(u, ['unshare', 'sh', '-c', 'exit 7']).status, 7, 'the exit status of the command');
  });

  await t.test('bad input', async (t) => {
    const low = lxrAsUser(u, ['run', '--rm', '-p', '80:8080', image, 'true']);
    t.equal(low.status, 125);
    t.match(low.stderr, /cannot expose privileged port 80: you can add 'net\.ipv4\.ip_unprivileged_port_start=80' to \/etc\/sysctl\.conf \(currently \d+\), or choose a larger port number/, 'a port below 1024: podman\'s advice');
    const mem = lxrAsUser(u, ['run', '--rm', '--network', 'none', '--memory', '64m', image, 'true']);
    t.equal(mem.status, 125);
    t.match(mem.stderr, /--memory: resource limits need cgroups/, '--memory without a delegated cgroup');
    t.equal(lxrAsUser(u, ['run', '--rm', '--network', 'none', image, 'true']).status, 0, 'without limits it runs');
    const br = lxrAsUser(u, ['run', '--rm', '--network', 'bridge', image, 'true']);
    t.match(br.stderr, /--network bridge: an ordinary user cannot make bridges/);

    // an owner outside the range: a smaller range, a fresh store
    giveSubIds(u, START, 65536);
    const small = { XDG_DATA_HOME: join(u.home, 'small') };
    const out = await lxrAsUserAsync(u, ['run', '--rm', '--network', 'none', image, 'true'], { env: small });
    t.equal(out.status, 125);
    t.match(out.stderr, /owned\/big: its owner uid 3000000 \(gid 3000001\) is outside your user namespace: the user namespace maps uids 0-65536 .*\/etc\/subuid/, 'names the uid and /etc/subuid');
    const smallSnaps = join(u.home, 'small', 'lxr', 'snapshots');
    t.same(existsSync(smallSnaps) ? readdirSync(smallSnaps).filter((n) => !n.startsWith('.') && !n.startsWith('sha256-') ) : [], [], 'no temporary snapshot left');
    t.same(existsSync(join(u.home, 'small', 'lxr', 'containers')) ? readdirSync(join(u.home, 'small', 'lxr', 'containers')).filter((n) => !n.startsWith('.')) : [], [], 'no container left');

    // no range at all
    dropSubIds(u);
    const none = { XDG_DATA_HOME: join(u.home, 'none') };
    const nr = await lxrAsUserAsync(u, ['run', '--rm', '--network', 'none', image, 'true'], { env: none });
    t.equal(nr.status, 125);
    t.match(nr.stderr, new RegExp(`warning: only your own uid is mapped .*usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${u.name}`), 'says what to add');
    t.match(nr.stderr, /\/etc\/subuid has no range for user/);
    const ok = await lxrAsUserAsync(u, ['run', '--rm', '--network', 'none', plain, 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "'], { env: none });
    t.equal(ok.status, 0, `an image of root's files still runs, with only the user's uid mapped: ${ok.stderr}`);
    t.match(ok.stdout, new RegExp(`^0\\n\\s*0 ${u.uid} 1\\n$`));
    giveSubIds(u, START, SIZE);
  });

  await t.test('without XDG_RUNTIME_DIR: a private 0700 run dir of the user', async (t) => {
    const tmp = join(u.home, 'tmp');
    t.equal(asUser(u, ['mkdir', '-m', '1777', tmp]).status, 0);
    const r = lxrAsUser(u, ['run', '--rm', '--network', 'none', image, 'true'], { env: { XDG_RUNTIME_DIR: undefined, TMPDIR: tmp } });
    t.equal(r.status, 0, r.stderr);
    const st = statSync(join(tmp, `lxr-run-${u.uid}`));
    t.equal(st.mode & 0o777, 0o700);
    t.equal(st.uid, u.uid);
    t.equal(asUser(u, ['chmod', '755', join(tmp, `lxr-run-${u.uid}`)]).status, 0);
    const bad = lxrAsUser(u, ['ps'], { env: { XDG_RUNTIME_DIR: undefined, TMPDIR: tmp } });
    t.equal(bad.status, 125);
    t.match(bad.stderr, /is not a private \(0700\) directory of uid \d+: remove it, or set XDG_RUNTIME_DIR/, 'a run dir others could use is refused');
    t.equal(readFileSync(join(u.runDir, 'lxr', 'rootfs-driver'), 'utf8'), 'overlay\n', 'the kernel\'s overlayfs works in a user namespace here (found out once, kept in the run dir)');
    const inf = JSON.parse(lxrAsUser(u, ['info']).stdout);
    t.match(inf, { Rootless: true, Uid: u.uid, Root: join(u.home, '.local', 'share', 'lxr'), RunRoot: join(u.runDir, 'lxr'), RootfsDriver: 'overlay', DefaultNetwork: 'pasta' }, 'lxr info');
  });

  await t.test('lxr-image unpack as the user: owners shifted, config.json mapped to match', async (t) => {
    const bundle = join(u.home, 'bundle');
    const r = asUser(u, [process.execPath, join(REPO, 'bin', 'lxr-image.js'), 'unpack', image, bundle]);
    t.equal(r.status, 0, r.stderr);
    t.equal(lstatSync(join(bundle, 'rootfs', 'owned', 'big')).uid, START + 2999999, 'uid 3000000 is shifted into the subuid range');
    t.equal(lstatSync(join(bundle, 'rootfs', 'owned', 'nobody')).gid, START + 65533);
    const cfgFile = join(bundle, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    t.same(cfg.linux.uidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: START, size: SIZE }]);
    t.ok(cfg.linux.namespaces.some((n: { type: string }) => n.type === 'user'));
    cfg.process.args = ['sh', '-c', 'stat -c %u /owned/big'];
    cfg.process.terminal = false;
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const run = asUser(u, [process.execPath, join(REPO, 'bin', 'lxr-runtime.js'), '--root', join(u.runDir, 'rt'), 'run', '-b', bundle, 'unpacked']);
    t.equal(run.status, 0, run.stderr);
    t.equal(run.stdout, '3000000\n', 'lxr-runtime, rootless, shows the image\'s owner');
    t.equal(lxrAsUser(u, ['unshare', 'rm', '-rf', bundle]).status, 0);
    t.notOk(existsSync(bundle));
  });

  await t.test('rmi and gc remove snapshots that hold files of subordinate ids', async (t) => {
    const snaps = join(u.home, '.local', 'share', 'lxr', 'snapshots');
    t.ok(readdirSync(snaps).some((n) => n.startsWith('sha256-')), 'there are snapshots');
    for (const img of [image, plain]) {
      const r = await lxrAsUserAsync(u, ['rmi', img]);
      t.equal(r.status, 0, r.stderr);
    }
    const gc = await lxrAsUserAsync(u, ['gc']);
    t.equal(gc.status, 0, gc.stderr);
    t.same(readdirSync(snaps).filter((n) => !n.startsWith('.')), [], 'no snapshot left');
    t.notMatch(lxrAsUser(u, ['images']).stdout, /rootless\//, 'no image left');
  });

  await t.test('nothing left behind', async (t) => {
    t.same(userProcesses(u), [], 'no process of the user');
    t.same(hostMountsUnder(u.home), [], 'no mount under the home');
    t.same(rootOwnedUnder(u.home), [], 'no file owned by root in the home');
    t.same(rootOwnedUnder(u.runDir), [], 'nor in the run dir');
    t.ok(existsSync(join(u.runDir, 'lxr')), 'the run dir is $XDG_RUNTIME_DIR/lxr');
  });
});
