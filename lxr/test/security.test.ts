// The front end's protections (issue 11, item 4): lxr's default seccomp profile, podman's
// capability set, ping without NET_RAW, --security-opt seccomp=unconfined|PROFILE.json,
// no-new-privileges, --privileged, and what `lxr inspect` says is in force. A static probe
// program in the image calls the syscalls and prints the errno each one got.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, cgroupsLeft, lxr, lxrEnv, mountsUnder, netnsLeft, registryImage, type LxrEnv } from './helpers/env.js';
import { DEFAULT_PROFILE, buildSeccomp, checkProfile } from '../security/seccomp.js';
import { DEFAULT_CAPS } from '../containers/spec.js';

const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <sys/time.h>

/* what ping does without NET_RAW: an ICMP datagram socket, an echo to 127.0.0.1, its reply */
static long ping_lo(void) {
  int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  if (s < 0) return -1;
  struct timeval tv = { 2, 0 };
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct icmphdr h;
  memset(&h, 0, sizeof h);
  h.type = ICMP_ECHO;
  h.un.echo.sequence = htons(1);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (sendto(s, &h, sizeof h, 0, (struct sockaddr *)&to, sizeof to) < 0) return -1;
  char buf[256];
  if (recv(s, buf, sizeof buf, 0) < (long)sizeof h) return -1;
  return ((struct icmphdr *)buf)->type == ICMP_ECHOREPLY ? 0 : (errno = EPROTO, -1);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *c = argv[i];
    long r = -1;
    errno = 0;
    if (!strcmp(c, "unshare-user")) r = unshare(CLONE_NEWUSER);
    else if (!strcmp(c, "unshare-user-net")) r = unshare(CLONE_NEWUSER | CLONE_NEWNET);
    else if (!strcmp(c, "unshare-files")) r = unshare(CLONE_FILES);
    else if (!strcmp(c, "clone-user")) {
      r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
      if (r == 0) _exit(0);
      if (r > 0) waitpid(r, 0, 0);
    } else if (!strcmp(c, "fork")) {
      r = fork();
      if (r == 0) _exit(0);
      if (r > 0) waitpid(r, 0, 0);
    } else if (!strcmp(c, "keyctl")) r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    else if (!strcmp(c, "add_key")) r = syscall(SYS_add_key, "user", "lxr-test", "x", 1, -3);
    else if (!strcmp(c, "request_key")) r = syscall(SYS_request_key, "user", "lxr-test", 0, 0);
    else if (!strcmp(c, "io_uring_setup")) {
      char params[120];
      memset(params, 0, sizeof params);
      r = syscall(SYS_io_uring_setup, 1, params);
    } else if (!strcmp(c, "userfaultfd")) r = syscall(SYS_userfaultfd, 0);
    else if (!strcmp(c, "perf_event_open")) {
      struct perf_event_attr a;
      memset(&a, 0, sizeof a);
      a.size = sizeof a;
      a.type = PERF_TYPE_SOFTWARE;
      a.config = PERF_COUNT_SW_CPU_CLOCK;
      a.exclude_kernel = 1;
      r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    } else if (!strcmp(c, "bpf")) {
      char attr[128];
      memset(attr, 0, sizeof attr);
      r = syscall(SYS_bpf, 0, attr, sizeof attr);
    } else if (!strcmp(c, "mount")) r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
    else if (!strcmp(c, "icmp-socket")) r = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    else if (!strcmp(c, "raw-socket")) r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    else if (!strcmp(c, "ping-lo")) r = ping_lo();
    else if (!strcmp(c, "personality-query")) r = syscall(SYS_personality, 0xffffffffUL);
    else if (!strcmp(c, "personality-bad")) r = syscall(SYS_personality, 0x0040000UL /* ADDR_NO_RANDOMIZE */);
    else { printf("%s: unknown\n", c); continue; }
    if (r < 0) printf("%s: %s\n", c, strerrorname_np(errno));
    else printf("%s: OK\n", c);
  }
  return 0;
}
`;

/** podman's default CapEff: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP */
const PODMAN_CAPEFF = '00000000800405fb';

const haveCc = spawnSync('cc', ['--version']).status === 0;

function buildProbe(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-sec-probe-'));
  try {
    writeFileSync(join(dir, 'probe.c'), PROBE_C);
    const r = spawnSync('cc', ['-static', '-O1', '-o', join(dir, 'probe'), join(dir, 'probe.c')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cc -static probe.c: ${r.stderr}`);
    return readFileSync(join(dir, 'probe'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** "name: ERRNO" lines as a map. */
function results(out: string): Record<string, string> {
  const m: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const [k, v] = l.split(': ');
    if (k && v) m[k] = v;
  }
  return m;
}

const PROBES = ['unshare-user', 'unshare-user-net', 'clone-user', 'keyctl', 'add_key', 'request_key', 'io_uring_setup', 'userfaultfd', 'perf_event_open', 'bpf', 'mount', 'personality-bad', 'personality-query', 'fork', 'unshare-files'];

if (!BUSYBOX || !haveCc) {
  t.plan(0, 'busybox and a C compiler (cc -static) are needed');
} else {
  const env: LxrEnv = lxrEnv(t);
  let image: string;
  t.before(async () => {
    image = await registryImage(t, 'test/sec:1', { entryLayers: [[{ path: 'bin/probe', type: 'file', data: buildProbe(), mode: 0o755 }]] });
  });

  const run = (args: string[], cmd: string[]) => lxr(env, ['run', '--rm', ...args, image, ...cmd]);
  const status = (args: string[]) => run(args, ['sh', '-c', 'grep -E "^(Seccomp|CapEff|CapBnd|NoNewPrivs):" /proc/self/status']);
  // each call in a process of its own: one that succeeds (a new user namespace) changes what the next may do
  const probe = (args: string[]) => run(args, ['sh', '-c', `for p in ${PROBES.join(' ')}; do probe $p; done`]);
  const field = (out: string, k: string) => new RegExp(`^${k}:\\s+(\\S+)$`, 'm').exec(out)?.[1];
  const nothingLeft = (t: Test, what: string) => {
    const ids = existsSync(join(env.root, 'containers')) ? readdirSync(join(env.root, 'containers')).filter((f) => /^[0-9a-f]{64}$/.test(f)) : [];
    t.same(ids, [], `${what}: no container directory left`);
    t.same(mountsUnder(env.root), [], `${what}: no mount left`);
    t.same(netnsLeft(env), [], `${what}: no netns left`);
    t.same(cgroupsLeft(env), [], `${what}: no cgroup left`);
  };

  t.test('the default: seccomp filter on, podman\'s 11 capabilities, dangerous syscalls refused with EPERM', async (t) => {
    const s = status([]);
    t.equal(s.status, 0, s.stderr);
    t.equal(field(s.stdout, 'Seccomp'), '2', 'a seccomp filter is in force');
    t.equal(field(s.stdout, 'CapEff'), PODMAN_CAPEFF, 'CapEff is podman\'s default set');
    t.equal(field(s.stdout, 'CapBnd'), PODMAN_CAPEFF, 'and so is the bounding set');

    const r = probe([]);
    t.equal(r.status, 0, r.stderr);
    const got = results(r.stdout);
    for (const k of ['unshare-user', 'unshare-user-net', 'clone-user', 'keyctl', 'add_key', 'request_key', 'io_uring_setup', 'userfaultfd', 'perf_event_open', 'bpf', 'mount']) {
      t.equal(got[k], 'EPERM', `${k} is refused with EPERM`);
    }
    t.equal(got['personality-bad'], 'ENOSYS', 'personality() with a value outside the allowed ones is refused');
    t.equal(got['personality-query'], 'OK', 'personality(0xffffffff) (the query) is allowed');
    t.equal(got.fork, 'OK', 'clone without namespace flags (fork) works');
    t.equal(got['unshare-files'], 'OK', 'unshare without namespace flags works');
  });

  t.test('seccomp=unconfined: no filter, and the same calls reach the kernel', async (t) => {
    const s = status(['--security-opt', 'seccomp=unconfined']);
    t.equal(s.status, 0, s.stderr);
    t.equal(field(s.stdout, 'Seccomp'), '0', 'no seccomp filter');
    const r = probe(['--security-opt', 'seccomp=unconfined']);
    const got = results(r.stdout);
    // without the filter the kernel answers: proof that EPERM above came from the profile
    t.equal(got['unshare-user'], 'OK', 'unshare(CLONE_NEWUSER) succeeds without the filter');
    t.equal(got.keyctl, 'OK', 'keyctl succeeds without the filter');
    t.equal(got['clone-user'], 'OK', 'clone(CLONE_NEWUSER) succeeds without the filter');
    t.not(got['personality-bad'], 'ENOSYS', 'personality(ADDR_NO_RANDOMIZE) is the kernel\'s to answer');
    t.comment(`without the filter: ${JSON.stringify(got)}`);
    for (const k of ['unshare-user-net', 'add_key', 'request_key', 'io_uring_setup', 'perf_event_open', 'bpf']) t.not(got[k], 'EPERM', `${k} is the kernel's to answer`);
  });

  t.test('a custom profile file (docker\'s format) is applied, resolved for the container\'s capabilities', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-sec-prof-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'profile.json');
    writeFileSync(file, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }, { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: [] }],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        // only for a container with CAP_SYS_ADMIN, which this one does not have
        { name: 'getcwd', action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_SYS_ADMIN'] } },
      ],
    }));
    const r = run(['--security-opt', `seccomp=${file}`], ['sh', '-c', 'grep ^Seccomp: /proc/self/status; pwd; mkdir /tmp/x; probe keyctl']);
    t.equal(field(r.stdout, 'Seccomp'), '2', 'a filter is in force');
    t.match(r.stderr, /Permission denied/, 'mkdir gets the profile\'s errno (EACCES)');
    t.match(r.stdout, /^\/$/m, 'a rule for a capability the container lacks is left out');
    t.match(r.stdout, /keyctl: OK/, 'lxr\'s default profile is not applied on top');

    const c = lxr(env, ['create', '--name', 'custom', '--security-opt', `seccomp=${file}`, image, 'sleep', '60']);
    t.equal(c.status, 0, c.stderr);
    writeFileSync(file, 'changed after create');
    const [info] = JSON.parse(lxr(env, ['inspect', 'custom']).stdout);
    t.equal(info.Security.Seccomp, file, 'inspect names the profile file');
    t.same(info.Spec.linux.seccomp.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], 'archMap gives this machine\'s architectures');
    t.equal(lxr(env, ['restart', '-t', '1', 'custom']).status, 0, 'the profile was kept at create: a restart does not read the file again');
    t.equal(lxr(env, ['rm', '-f', 'custom']).status, 0);
  });

  t.test('bad --security-opt values: a clear error, and nothing left behind', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lxr-sec-bad-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "defaultAction": "SCMP_ACT_ERRNO", ');
    const badAction = join(dir, 'action.json');
    writeFileSync(badAction, JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['write'], action: 'ALLOW' }] }));
    const missing = join(dir, 'missing.json');
    const cases: [string, string[], RegExp][] = [
      ['a missing file', ['--security-opt', `seccomp=${missing}`], new RegExp(`seccomp=${missing}: cannot read the profile \\(ENOENT\\)`)],
      ['bad JSON', ['--security-opt', `seccomp=${bad}`], /bad\.json: the profile is not valid JSON/],
      ['an unknown action', ['--security-opt', `seccomp=${badAction}`], /action\.json: syscalls\[1\]\.action: unknown action "ALLOW"/],
      ['an unknown option', ['--security-opt', 'apparmor=myprofile'], /--security-opt apparmor=myprofile: use seccomp=unconfined/],
    ];
    for (const [what, args, msg] of cases) {
      for (const cmd of [['run', '--rm'], ['create']]) {
        const r = lxr(env, [...cmd, ...args, image, 'true']);
        t.equal(r.status, 125, `${cmd[0]} with ${what} fails`);
        t.match(r.stderr, msg, `${cmd[0]} with ${what}: the error names the option and the problem`);
        nothingLeft(t, `${cmd[0]} with ${what}`);
      }
    }
  });

  t.test('--privileged: every capability, no filter, no masked or read-only paths', async (t) => {
    const r = run(['--privileged'], ['sh', '-c', 'grep -E "^(Seccomp|CapEff):" /proc/self/status; grep -c -E " /proc/(keys|sys) " /proc/self/mountinfo || true']);
    t.equal(r.status, 0, r.stderr);
    t.equal(field(r.stdout, 'Seccomp'), '0', 'no seccomp filter');
    const ours = /^CapBnd:\s+(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
    t.equal(field(r.stdout, 'CapEff'), ours, 'every capability lxr itself has');
    t.match(r.stdout, /^0$/m, '/proc/keys is not masked and /proc/sys not read-only');
    const hostDevs = readdirSync('/dev', { withFileTypes: true }).filter((e) => (e.isCharacterDevice() || e.isBlockDevice()) && !e.name.startsWith('tty') && !['console', 'ptmx'].includes(e.name)).map((e) => e.name);
    const devs = run(['--privileged'], ['ls', '/dev']);
    const inside = new Set(devs.stdout.split(/\s+/));
    t.same(hostDevs.filter((n) => !inside.has(n)), [], `the host's devices are there (${hostDevs.length} of them)`);
    const d = run([], ['sh', '-c', 'grep -c -E " /proc/(keys|sys) " /proc/self/mountinfo']);
    t.match(d.stdout, /^2$/m, 'while by default both are');

    const c = lxr(env, ['create', '--name', 'priv', '--privileged', image, 'sleep', '60']);
    t.equal(c.status, 0, c.stderr);
    const [info] = JSON.parse(lxr(env, ['inspect', 'priv']).stdout);
    t.equal(info.Security.Privileged, true);
    t.equal(info.Security.Seccomp, 'unconfined');
    t.equal(lxr(env, ['rm', '-f', 'priv']).status, 0);
  });

  t.test('--cap-add still adds; no-new-privileges; inspect shows what is in force', async (t) => {
    const r = status(['--cap-add', 'NET_RAW', '--security-opt', 'no-new-privileges=false']);
    t.equal(r.status, 0, r.stderr);
    t.equal(BigInt(`0x${field(r.stdout, 'CapEff')}`), BigInt(`0x${PODMAN_CAPEFF}`) | (1n << 13n), 'CAP_NET_RAW added to the 11');
    t.equal(field(r.stdout, 'NoNewPrivs'), '0', 'no-new-privileges=false turns no_new_privs off');
    t.equal(field(r.stdout, 'Seccomp'), '2', 'and the filter is loaded before the capabilities are dropped');
    t.equal(field(status([]).stdout, 'NoNewPrivs'), '1', 'lxr\'s default keeps no_new_privs on');
    t.equal(field(status(['--security-opt', 'no-new-privileges']).stdout, 'NoNewPrivs'), '1');

    const c = lxr(env, ['create', '--name', 'def', image, 'sleep', '60']);
    t.equal(c.status, 0, c.stderr);
    const [info] = JSON.parse(lxr(env, ['inspect', 'def']).stdout);
    t.same(info.Security, {
      Privileged: false, Seccomp: 'default', NoNewPrivileges: true, EffectiveCaps: DEFAULT_CAPS, BoundingCaps: DEFAULT_CAPS, CapAdd: [], CapDrop: [],
    });
    t.equal(info.Spec.linux.seccomp.defaultAction, 'SCMP_ACT_ERRNO', 'the profile is in config.json');
    t.equal(info.Spec.linux.sysctl['net.ipv4.ping_group_range'], '0 2147483647');
    t.equal(lxr(env, ['rm', '-f', 'def']).status, 0);
  });

  t.test('ping works without NET_RAW: net.ipv4.ping_group_range in the container\'s own netns', async (t) => {
    const r = run(['-u', 'nobody'], ['sh', '-c', 'cat /proc/sys/net/ipv4/ping_group_range; probe raw-socket icmp-socket ping-lo']);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^0\s+2147483647$/m, 'the whole gid range may open ICMP sockets');
    t.match(r.stdout, /raw-socket: EPERM/, 'no raw socket without NET_RAW');
    t.match(r.stdout, /icmp-socket: OK/, 'an ICMP datagram socket, as ping opens it, even for a user other than root');
    t.match(r.stdout, /ping-lo: OK/, 'and an echo to 127.0.0.1 gets its reply');
    // --network host: the host's sysctl is the host's, lxr must not set it
    const c = lxr(env, ['create', '--name', 'hostnet', '--network', 'host', image, 'sleep', '60']);
    t.equal(c.status, 0, c.stderr);
    const [info] = JSON.parse(lxr(env, ['inspect', 'hostnet']).stdout);
    t.notOk(info.Spec.linux.sysctl?.['net.ipv4.ping_group_range'], 'no ping_group_range with --network host');
    t.equal(lxr(env, ['rm', '-f', 'hostnet']).status, 0);
  });
}

t.test('the profile resolves by capability and architecture, as docker resolves its own', async (t) => {
  const names = (s: ReturnType<typeof buildSeccomp>, action: string) => new Set((s.syscalls ?? []).filter((r) => r.action === action && !r.args).flatMap((r) => r.names));
  const base = buildSeccomp(DEFAULT_PROFILE, { caps: DEFAULT_CAPS, arch: 'x64' });
  t.equal(base.defaultErrnoRet, 38, 'calls the profile does not know say ENOSYS');
  t.same(base.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const allowed = names(base, 'SCMP_ACT_ALLOW');
  for (const n of ['read', 'chroot', 'arch_prctl']) t.ok(allowed.has(n), `${n} allowed`);
  for (const n of ['mount', 'setns', 'ptrace', 'bpf', 'perf_event_open', 'keyctl', 'io_uring_setup', 'unshare', 'clone', 'cacheflush']) t.notOk(allowed.has(n), `${n} not allowed unconditionally`);
  const admin = buildSeccomp(DEFAULT_PROFILE, { caps: [...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'], arch: 'arm64' });
  const allowedAdmin = names(admin, 'SCMP_ACT_ALLOW');
  for (const n of ['mount', 'setns', 'unshare', 'clone', 'ptrace', 'bpf', 'cacheflush']) t.ok(allowedAdmin.has(n), `${n} allowed with CAP_SYS_ADMIN / CAP_SYS_PTRACE on arm64`);
  t.notOk(allowedAdmin.has('keyctl') || allowedAdmin.has('io_uring_setup'), 'keyrings and io_uring stay refused');
  t.notOk(allowedAdmin.has('arch_prctl'), 'arch_prctl is x86 only');
  t.same(admin.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  t.throws(() => checkProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 7, value: 1, op: 'SCMP_CMP_EQ' }] }] }, 'p.json'), /p\.json: syscalls\[0\]\.args\[0\]\.index: must be an integer from 0 to 5/);
  t.throws(() => checkProfile([], 'p.json'), /p\.json: \(top level\): must be a JSON object/);
});
