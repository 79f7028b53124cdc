// Boots the QEMU/TCG test VM and checks, inside the guest, that it is a
// working cgroup v2 system that runc (the reference runtime) can drive.
// Boots are expensive under TCG (several seconds each), so one boot runs a
// script that performs many checks and prints one "name: value" line each.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runInVm, vmAvailable, type RunInVmResult } from './vm.js';

const avail = vmAvailable();

// Runs in the guest as /bin/sh -c. Each check prints "name: value".
const CHECKS = String.raw`
echo "fstype: $(stat -f -c %T /sys/fs/cgroup)"
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "uid: $(id -u)"
echo "kernel: $(uname -r)"
echo "to-stderr" >&2

# pids: a child cgroup limited to 5 tasks; a shell in it forks a burst of 10
# sleepers. dash gives up ("Cannot fork") at the first failed fork.
CG=/sys/fs/cgroup/lxrtest-pids
mkdir $CG
echo +pids > /sys/fs/cgroup/cgroup.subtree_control
echo 5 > $CG/pids.max
sh -c 'echo $$ > '$CG'/cgroup.procs; exec sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 600 & done"' 2>/tmp/burst.err
echo "burst_status: $?"
echo "burst_error: $(head -n1 /tmp/burst.err)"
echo "pids_current: $(cat $CG/pids.current)"
echo "pids_events: $(cat $CG/pids.events)"
echo 1 > $CG/cgroup.kill
while [ -n "$(cat $CG/cgroup.procs)" ]; do sleep 0.1; done
rmdir $CG && echo "pids_cleanup: ok"

# runc as the oracle: a busybox bundle with a 32 MiB memory limit.
B=/tmp/bundle
mkdir -p $B/rootfs/bin && cp /bin/busybox $B/rootfs/bin/busybox && cd $B && runc spec
node -e '
const fs = require("fs");
const c = JSON.parse(fs.readFileSync("config.json", "utf8"));
c.process.terminal = false;
c.process.args = ["/bin/busybox", "cat", "/sys/fs/cgroup/memory.max"];
c.linux.resources = { memory: { limit: 33554432 } };
c.linux.cgroupsPath = "/lxrtest/runc1";
fs.writeFileSync("config.json", JSON.stringify(c));'
echo "runc_inside_memory_max: $(runc run ctr-run)"
runc create ctr-create
echo "runc_state: $(runc state ctr-create | grep -o '"status": *"[a-z]*"')"
echo "runc_outside_memory_max: $(cat /sys/fs/cgroup/lxrtest/runc1/memory.max)"
runc delete -f ctr-create
# The same limit enforced: touching 64 MiB in a 32 MiB cgroup gets the OOM killer.
node -e '
const fs = require("fs");
const c = JSON.parse(fs.readFileSync("config.json", "utf8"));
c.process.args = ["/bin/busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];
c.linux.cgroupsPath = "/lxrtest/runc2";
fs.writeFileSync("config.json", JSON.stringify(c));'
runc run ctr-oom >/dev/null 2>&1
echo "runc_oom_status: $?"
rmdir /sys/fs/cgroup/lxrtest/runc1 /sys/fs/cgroup/lxrtest/runc2 2>/dev/null
exit 3
`;

function parseLines(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 2).trim());
  }
  return m;
}

function installedKernel(): string {
  return readdirSync('/lib/modules').filter((v) => existsSync(`/boot/vmlinuz-${v}`)).sort().at(-1) ?? '';
}

// Every process whose command line mentions dir (QEMU gets its paths on the command line).
function processesMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch { /* exited */ }
  }
  return pids;
}

if (!avail.ok) {
  t.plan(0, `VM harness not available: ${avail.reason}`);
} else {
  // A private work dir: this file's runs can then be checked for leftovers.
  const workDir = t.testdir({});
  process.env['LXR_VM_DIR'] = workDir;
  const here = dirname(fileURLToPath(import.meta.url));

  t.test('bad input is refused before booting', async (t) => {
    await t.rejects(runInVm({ command: [] }), /command is empty/);
    await t.rejects(runInVm({ command: 'true', env: { 'NOT-A-NAME': 'x' } }), /invalid environment variable name "NOT-A-NAME"/);
  });

  t.test('guest', async (t) => {
    // Two VMs at once, which also shows that parallel runs do not collide.
    const [checks, argv] = await Promise.all([
      runInVm({ command: CHECKS }),
      runInVm({
        command: ['node', '-e', 'console.log(process.version); console.log(process.cwd()); console.log(process.env.LXR_VM_TEST); console.error("node-stderr")'],
        cwd: here,
        env: { LXR_VM_TEST: "a value with 'quotes' and $dollars" },
      }),
    ]);
    t.comment(`boot-to-result: checks ${checks.elapsedMs} ms, node one-liner ${argv.elapsedMs} ms (two VMs in parallel)`);
    const out = parseLines(checks.stdout);
    // Shown by tap only when an assertion fails.
    const show = (r: RunInVmResult) => ({ stdout: r.stdout, stderr: r.stderr, console: r.console.slice(-2000) });

    t.test('shell command: exit code, stdout and stderr come back', async (t) => {
      t.equal(checks.exitCode, 3, 'exit 3 propagates', show(checks));
      t.match(checks.stderr, /^to-stderr$/m, 'stderr is separate');
      t.equal(out.get('uid'), '0', 'root in the guest');
      t.equal(out.get('kernel'), installedKernel(), "guest runs the installed Debian kernel, not the host's");
      t.match(checks.console, /lxr-vm: stage 2 done/, 'serial console captured');
    });

    t.test('/sys/fs/cgroup is a cgroup v2 hierarchy with all the controllers', async (t) => {
      t.equal(out.get('fstype'), 'cgroup2fs', 'stat -f reports cgroup2fs', show(checks));
      const controllers = (out.get('controllers') ?? '').split(' ');
      for (const c of ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids']) t.ok(controllers.includes(c), `controller ${c} available`);
    });

    t.test('pids.max=5 makes a fork burst fail', async (t) => {
      t.not(out.get('burst_status'), '0', 'the forking shell failed');
      t.match(out.get('burst_error') ?? '', /Cannot fork/, 'with a fork error');
      t.ok(Number(out.get('pids_current')) <= 5, `pids.current stays within the limit (${out.get('pids_current')})`);
      const failures = /max (\d+)/.exec(out.get('pids_events') ?? '');
      t.ok(failures && Number(failures[1]) >= 1, `pids.events counts the refused forks (${out.get('pids_events')})`);
      t.equal(out.get('pids_cleanup'), 'ok', 'cgroup killed and removed');
    });

    t.test('runc runs a busybox bundle with a memory limit', async (t) => {
      t.equal(out.get('runc_inside_memory_max'), '33554432', 'the container sees memory.max = 32 MiB', show(checks));
      t.match(out.get('runc_state') ?? '', /"created"/, 'runc create leaves the container created');
      t.equal(out.get('runc_outside_memory_max'), '33554432', "memory.max of the container's cgroup, read from the guest's root");
      t.equal(out.get('runc_oom_status'), '137', 'touching 64 MiB under a 32 MiB limit is killed by SIGKILL (OOM)');
    });

    t.test('argv command: node runs, with cwd and env passed through', async (t) => {
      t.equal(argv.exitCode, 0, 'exit 0', show(argv));
      t.same(argv.stdout.split('\n'), [process.version, here, "a value with 'quotes' and $dollars", ''], 'node version, cwd, env');
      t.equal(argv.stderr, 'node-stderr\n', 'stderr comes back separately');
    });
  });

  t.test('a missing cwd is reported as exit 125 with the path', async (t) => {
    const r = await runInVm({ command: 'true', cwd: '/nonexistent/lxr-vm-cwd' });
    t.equal(r.exitCode, 125);
    t.match(r.stderr, /cannot change to directory \/nonexistent\/lxr-vm-cwd/);
  });

  t.test('a guest that dies before reporting is an error, not an exit code', async (t) => {
    await t.rejects(runInVm({ command: 'echo going down; echo o > /proc/sysrq-trigger; sleep 600' }), /guest reported no exit code[^]*going down/);
  });

  t.test('a guest that outlives timeoutMs is killed', async (t) => {
    await t.rejects(runInVm({ command: 'sleep 600', timeoutMs: 2000 }), /VM timed out after 2000 ms \(QEMU killed\)/);
  });

  t.test('nothing is left behind', async (t) => {
    t.same(processesMentioning(workDir), [], 'no QEMU process is still running');
    t.same(readdirSync(`${workDir}/runs`), [], 'per-run directories removed');
  });
}
