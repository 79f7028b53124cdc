// lxr-runtime as a Kubernetes RuntimeClass: containerd 1.6's CRI plugin, driven through
// the CRI gRPC API as kubelet drives it, with two runtime handlers in one daemon, `runc`
// (the reference) and `lxr`. Every check runs for both; what passes for runc must pass
// for lxr (issue 13).
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  BRIDGE, HANDLERS, GATEWAY, criMissing, execStream, execSync, importImages, iptablesRulesLeft, mountsUnder, podConfig, removePod, runPod,
  shimsOf, startContainer, startCri, untilAsync, type Cri, type Msg,
} from './helpers/cri.js';

const MiB = 1 << 20;
const missing = criMissing();
if (missing) t.plan(0, missing);
else {
  // About 1 to 2 minutes on a quiet machine.
  t.setTimeout(600_000);
  let c: Cri;
  const hostMnt = () => join(c.dir, 'hostmnt');
  t.before(async () => {
    c = await startCri();
    importImages(c);
    // A HostToContainer mount needs a shared (or slave) mount on the host: a tmpfs of
    // the test's own, made rshared (this host's / is private).
    mkdirSync(hostMnt());
    for (const args of [['-t', 'tmpfs', '-o', 'size=1m', 'lxr-cri-test', hostMnt()], ['--make-rshared', hostMnt()]]) {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
    }
  });
  t.teardown(async () => {
    await c?.stop();
  });

  const status = async (id: string): Promise<Msg> => (await c.rt('ContainerStatus', { container_id: id })).status;
  const exited = (id: string, ms = 60000) => untilAsync(async () => (await status(id)).state === 'CONTAINER_EXITED', ms);
  const logLines = (pod: Msg, name: string): { stream: string; tag: string; text: string }[] => {
    const f = join(pod.log_directory, `${name}.log`);
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => {
      const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/.exec(l);
      return m && !Number.isNaN(Date.parse(m[1]!)) ? { stream: m[2]!, tag: m[3]!, text: m[4]! } : { stream: '?', tag: '?', text: l };
    });
  };
  const V2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const cgroupFile = (pod: Msg, id: string, v1: [string, string], v2: string) =>
    readFileSync(V2 ? join('/sys/fs/cgroup', pod.linux.cgroup_parent, id, v2) : join('/sys/fs/cgroup', v1[0], pod.linux.cgroup_parent, id, v1[1]), 'utf8').trim();

  for (const h of HANDLERS) {
    t.test(`handler ${h}`, async (t) => {
      t.test('a pod: hostname, DNS, shared network and IPC, ExecSync, logs, update, stats, exec -t', async (t) => {
        const pod = podConfig(c, h, 'web', { dns: { servers: ['10.213.13.53'], searches: ['lxr.test'], options: ['ndots:3'] } });
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        const main = await startContainer(c, podId, pod, 'main', { command: ['sh', '-c', 'echo out-line; echo err-line >&2; exec sleep 1000'] });
        const side = await startContainer(c, podId, pod, 'side', { command: ['sleep', '1000'] });
        t.equal((await status(main)).state, 'CONTAINER_RUNNING');

        const names = await execSync(c, main, ['sh', '-c', 'hostname; cat /etc/hostname; cat /etc/resolv.conf']);
        t.equal(names.exit_code, 0, names.stderr);
        const [host, hostFile, ...resolv] = names.stdout.split('\n');
        t.same([host, hostFile], [pod.hostname, pod.hostname], 'the pod\'s hostname');
        t.match(resolv.join('\n'), /nameserver 10\.213\.13\.53/, 'the pod\'s DNS server');
        t.match(resolv.join('\n'), /search lxr\.test/, 'search domains');
        t.match(resolv.join('\n'), /options ndots:3/, 'options');

        const ns = async (id: string) => (await execSync(c, id, ['sh', '-c', 'for n in net ipc uts pid; do readlink /proc/self/ns/$n; done'])).stdout.split('\n');
        const [a, b] = [await ns(main), await ns(side)];
        t.same(a.slice(0, 3), b.slice(0, 3), 'the containers share the pod\'s network, IPC and UTS namespaces');
        t.not(a[3], b[3], 'each has its own pid namespace');
        const podStatus = (await c.rt('PodSandboxStatus', { pod_sandbox_id: podId })).status;
        const ip = podStatus.network?.ip as string;
        t.match(ip, /^10\.213\.13\.\d+$/, 'the pod has an address on the test bridge');
        const addr = await execSync(c, side, ['ip', '-4', 'addr', 'show', 'eth0']);
        t.match(addr.stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`), 'eth0 in the container has it');
        const route = await execSync(c, side, ['ip', 'route']);
        t.match(route.stdout, new RegExp(`default via ${GATEWAY.replace(/\./g, '\\.')}`), 'and the default route');

        const ex = await execSync(c, main, ['sh', '-c', 'echo o; echo e >&2; exit 3']);
        t.same(ex, { stdout: 'o\n', stderr: 'e\n', exit_code: 3 }, 'ExecSync: output and exit code');
        const t0 = Date.now();
        const timedOut = await c.rt('ExecSync', { container_id: main, cmd: ['sleep', '60'], timeout: 1 }).then(() => undefined, (e: Error) => e);
        t.match(timedOut?.message, /timeout 1s exceeded/, 'ExecSync with a timeout fails when it runs out');
        t.ok(Date.now() - t0 < 50000, 'without waiting for the command');
        t.equal((await status(main)).state, 'CONTAINER_RUNNING', 'and the container runs on');

        t.ok(await untilAsync(async () => logLines(pod, 'main').length >= 2), 'the CRI log has both lines');
        t.same(logLines(pod, 'main').map((l) => [l.stream, l.tag, l.text]).sort(), [['stderr', 'F', 'err-line'], ['stdout', 'F', 'out-line']],
          'CRI log format: RFC 3339 time, stream, F, the line');

        // (kubectl exec -it: with a tty and no stdin, containerd 1.6 loses the output of a short command, whatever the runtime)
        // What kubelet sends to resize a pod; containerd passes the full resources, device rules included.
        await c.rt('UpdateContainerResources', { container_id: main, linux: { cpu_period: 100000, cpu_quota: 50000, cpu_shares: 512, memory_limit_in_bytes: 64 * MiB } });
        t.equal(cgroupFile(pod, main, ['memory', 'memory.limit_in_bytes'], 'memory.max'), String(64 * MiB), 'the new memory limit');
        t.equal(cgroupFile(pod, main, ['cpu', 'cpu.cfs_quota_us'], 'cpu.max'), V2 ? '50000 100000' : '50000', 'the new CPU quota');
        const dev = await execSync(c, main, ['sh', '-c', 'echo x > /dev/null && head -c 3 /dev/zero | wc -c']);
        t.same(dev, { stdout: '3\n', stderr: '', exit_code: 0 }, '/dev/null and /dev/zero are still usable after the update');

        const url = (await c.rt('Exec', { container_id: main, cmd: ['sh', '-c', 'tty; echo in-tty; exit 5'], tty: true, stdin: true, stdout: true, stderr: false })).url as string;
        t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//, 'Exec gives a streaming URL');
        const st = await execStream(url);
        t.match(st.stdout, /^\/dev\/pts\/\d+\r\nin-tty\r\n$/, 'exec -t through the streaming server: a terminal (CRLF line ends)', { status: st.status });
        t.equal(st.exitCode, 5, 'and the exit code', { status: st.status });

        const stats = (await c.rt('ContainerStats', { container_id: main })).stats;
        t.equal(stats.attributes.id, main, 'ContainerStats');
        t.ok(stats.memory.working_set_bytes.value > 0, 'memory in use', { memory: stats.memory });
        t.ok(stats.cpu.usage_core_nano_seconds.value > 0, 'CPU time used', { cpu: stats.cpu });
        const list = (await c.rt('ListContainerStats', { filter: { pod_sandbox_id: podId } })).stats as Msg[];
        t.same(list.map((s) => s.attributes.metadata.name).sort(), ['main', 'side'], 'ListContainerStats');

        await removePod(c, podId);
        t.same((await c.rt('ListContainers', { filter: { pod_sandbox_id: podId } })).containers, [], 'the pod\'s containers are gone');
      });

      t.test('shareProcessNamespace: one pid namespace; an init leaving a child behind exits', async (t) => {
        const pod = podConfig(c, h, 'shared', { pid: 'POD' });
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        const a = await startContainer(c, podId, pod, 'a', { command: ['sleep', '1000'] });
        t.equal((await execSync(c, a, ['cat', '/proc/1/cmdline'])).stdout, '/pause\0', 'pid 1 is the pod\'s pause');
        // containerd's shim sends `kill --all ID 9` when this init exits, and waits for its cgroup to empty
        const b = await startContainer(c, podId, pod, 'b', { command: ['sh', '-c', 'setsid sleep 2000 </dev/null >/dev/null 2>&1 & exit 4'] });
        t.ok(await exited(b), 'the container exits though its child was still running');
        const sb = await status(b);
        t.equal(sb.exit_code, 4, 'with its init\'s exit code');
        t.ok(await untilAsync(async () => !(await execSync(c, a, ['ps'])).stdout.includes('sleep 2000'), 20000), 'the child was killed');
        const ps = await execSync(c, a, ['ps', '-o', 'pid,args']);
        t.match(ps.stdout, /\/pause/, 'ps shows the other containers\' processes');
        t.match(ps.stdout, /sleep 1000/);
        await c.rt('RemoveContainer', { container_id: b });
        await removePod(c, podId);
      });

      t.test('an OOM kill is reported as OOMKilled', async (t) => {
        const pod = podConfig(c, h, 'oom');
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        const id = await startContainer(c, podId, pod, 'hog', { command: ['sh', '-c', 'head -c 300m /dev/zero | tail'], resources: { memory_limit_in_bytes: 32 * MiB } });
        t.ok(await exited(id, 120000), 'the container exits');
        const s = await status(id);
        t.equal(s.reason, 'OOMKilled', 'reason OOMKilled', { exit_code: s.exit_code, message: s.message });
        await removePod(c, podId);
      });

      t.test('StopContainer with a grace period: SIGTERM, then SIGKILL', async (t) => {
        const pod = podConfig(c, h, 'stop');
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        const id = await startContainer(c, podId, pod, 'stubborn', { command: ['sh', '-c', 'trap "echo got-term" TERM; echo ready; while true; do sleep 0.2; done'] });
        t.ok(await untilAsync(async () => logLines(pod, 'stubborn').some((l) => l.text === 'ready')), 'the trap is set');
        await c.rt('StopContainer', { container_id: id, timeout: 2 });
        const s = await status(id);
        t.equal(s.state, 'CONTAINER_EXITED');
        t.equal(s.exit_code, 137, 'killed by SIGKILL after the grace period');
        t.ok(logLines(pod, 'stubborn').some((l) => l.text === 'got-term'), 'SIGTERM came first, and was ignored');
        await removePod(c, podId);
      });

      t.test('security context: run_as_user, readonly rootfs, drop ALL, masked paths, RuntimeDefault seccomp', async (t) => {
        const pod = podConfig(c, h, 'sec');
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        const id = await startContainer(c, podId, pod, 'locked', {
          command: ['sleep', '1000'],
          security: { run_as_user: { value: 1000 }, readonly_rootfs: true, capabilities: { add_capabilities: [], drop_capabilities: ['ALL'] }, seccomp: { profile_type: 'RuntimeDefault' } },
        });
        const r = await execSync(c, id, ['sh', '-c', 'id -u; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; touch /x 2>&1; cat /proc/kcore | wc -c; grep " /proc/sys " /proc/self/mountinfo | grep -c " ro,"']);
        t.equal(r.stdout, [
          '1000',
          'CapEff:\t0000000000000000',
          'CapBnd:\t0000000000000000',
          'NoNewPrivs:\t0',
          'Seccomp:\t2',
          'touch: /x: Read-only file system',
          '0',
          '1',
          '',
        ].join('\n'), 'uid 1000, no capabilities, a seccomp filter, a read-only rootfs, /proc/kcore masked, /proc/sys read-only', { stderr: r.stderr });
        await removePod(c, podId);
      });

      t.test('a HostToContainer mount (rootfsPropagation: rslave)', async (t) => {
        const pod = podConfig(c, h, 'prop');
        const podId = await runPod(c, h, pod);
        t.teardown(() => removePod(c, podId).catch(() => undefined));
        let id: string;
        try {
          id = await startContainer(c, podId, pod, 'watcher', {
            command: ['sleep', '1000'],
            mounts: [{ container_path: '/mnt/h', host_path: hostMnt(), readonly: false, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }],
          });
        } catch (e) {
          // containerd writes linux.rootfsPropagation "rslave" for such a pod
          t.fail(`the container starts: ${(e as Error).message}`);
          return;
        }
        const sub = join(hostMnt(), `sub-${h}`);
        mkdirSync(sub);
        t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lxr-cri-sub', sub]).status, 0, 'a new mount on the host');
        t.teardown(() => void spawnSync('umount', ['-l', sub]));
        writeFileSync(join(sub, 'f'), `seen by ${h}\n`);
        const r = await execSync(c, id, ['cat', `/mnt/h/sub-${h}/f`]);
        t.same([r.stdout, r.exit_code], [`seen by ${h}\n`, 0], 'reaches the container', { stderr: r.stderr });
        spawnSync('umount', [sub]);
        await removePod(c, podId);
      });

      t.test('teardown leaves nothing behind', async (t) => {
        t.same((await c.rt('ListPodSandbox', { filter: {} })).items.filter((p: Msg) => p.metadata.name.startsWith(`${h}-`)), [], 'no pod');
        const root = join(c.runtimeRoot[h], 'k8s.io');
        t.same(existsSync(root) ? readdirSync(root).filter((e) => !e.startsWith('.') && e !== '@seccomp') : [], [], `no runtime state in ${root}`);
      });
    });
  }

  t.test('after both handlers: no shim, mount, netns, veth, cgroup or iptables rule left', async (t) => {
    t.ok(await untilAsync(async () => shimsOf(c).length === 0, 20000), 'no shim runs', { shims: shimsOf(c) });
    t.same(mountsUnder(c.dir).filter((m) => m !== hostMnt()), [], `no mount under ${c.dir} (the test's own tmpfs aside)`);
    const links = spawnSync('ip', ['-o', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' }).stdout.trim();
    t.equal(links, '', `no veth left on ${BRIDGE}`);
    const netns = existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : [];
    t.ok(c.netns.size >= 2 * 6, 'the pods\' netns were seen', { netns: [...c.netns] });
    t.same(netns.filter((n) => c.netns.has(n)), [], 'no netns of this daemon\'s pods left in /var/run/netns');
    t.same(iptablesRulesLeft(), [], 'no iptables rule for the test network');
    // the pods' own cgroups (cgroup_parent) are kubelet's to remove; the containers' are the runtime's
    const left: string[] = [];
    for (const ctl of V2 ? [''] : readdirSync('/sys/fs/cgroup')) {
      const top = join('/sys/fs/cgroup', ctl, c.cgroupParent);
      if (!existsSync(top)) continue;
      for (const pod of readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory())) {
        for (const e of readdirSync(join(top, pod.name), { withFileTypes: true })) if (e.isDirectory()) left.push(join(top, pod.name, e.name));
      }
    }
    t.same(left, [], 'no container cgroup left');
  });
}
