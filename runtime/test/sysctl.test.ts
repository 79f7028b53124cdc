// linux.sysctl is allowed only in a namespace the container has for itself (runc's rule):
// otherwise it would change the host. To protect the machine even if lxr got this wrong,
// every case runs lxr-runtime inside a throw-away ipc+network+uts namespace made by
// unshare(1), and compares the values there before and after.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { Spec } from '../../oci-spec/types.js';
import { RUNTIME, cleanEnv, keyValues, makeBundle, makeRoot, uniqueId } from './helpers/bundle.js';

const WATCHED = {
  mqueue: '/proc/sys/fs/mqueue/queues_max',
  ping: '/proc/sys/net/ipv4/ping_group_range',
  domain: '/proc/sys/kernel/domainname',
  host: '/proc/sys/kernel/hostname',
};

const hostValues = (): Record<string, string> =>
  Object.fromEntries(Object.entries(WATCHED).map(([k, f]) => [k, readFileSync(f, 'utf8').trim()]));

/**
 * Run `lxr-runtime run` in a fresh ipc, network and uts namespace. `prelude` runs first
 * in the same shell (it may set $JOIN). Returns the runtime's status and output, and the
 * watched values of the throw-away namespaces before and after.
 */
function runIsolated(edit: (s: Spec) => void, prelude = ''): { status: number; stdout: string; stderr: string; before: Record<string, string>; after: Record<string, string>; left: string[] } {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sh', '-c', Object.entries(WATCHED).map(([k, f]) => `echo in_${k}=$(cat ${f})`).join('; ')];
    edit(s);
  });
  try {
    const snap = (tag: string) => Object.entries(WATCHED).map(([k, f]) => `echo ${tag}_${k}=$(cat ${f})`).join('; ');
    const script = [
      'set -u',
      prelude,
      snap('before'),
      `"$NODE" "$RUNTIME" --root "$ROOT" run -b "$BUNDLE" "$ID" 2>"$ROOT/stderr"; echo "rc=$?"`,
      snap('after'),
      'cat "$ROOT/stderr" >&2',
    ].filter(Boolean).join('\n');
    const r = spawnSync('unshare', ['--ipc', '--net', '--uts', '--', 'sh', '-c', script], {
      encoding: 'utf8',
      timeout: 60000,
      env: { ...cleanEnv(), NODE: process.execPath, RUNTIME, ROOT: root, BUNDLE: b.dir, ID: uniqueId('sysctl') },
    });
    const kv = keyValues(r.stdout);
    const pick = (tag: string) => Object.fromEntries(Object.keys(WATCHED).map((k) => [k, kv[`${tag}_${k}`] ?? '']));
    const left = readdirSync(root).filter((f) => f !== 'stderr' && !f.startsWith('.'));
    return { status: Number(kv.rc), stdout: r.stdout, stderr: r.stderr, before: pick('before'), after: pick('after'), left };
  } finally {
    b.cleanup();
    cleanup();
  }
}

const withoutNs = (s: Spec, ...types: string[]) => {
  s.linux!.namespaces = s.linux!.namespaces!.filter((n) => !types.includes(n.type));
  if (types.includes('uts')) {
    delete s.hostname;
    delete s.domainname;
  }
};

t.test('sysctls without their namespace are refused, and nothing changes', async (t) => {
  const host = hostValues();
  const cases: { key: string; value: string; drop: string[]; want: string }[] = [
    { key: 'fs.mqueue.queues_max', value: '100', drop: ['ipc'], want: 'sysctl "fs.mqueue.queues_max" is not allowed in the hosts ipc namespace' },
    { key: 'kernel.shmmni', value: '100', drop: ['ipc'], want: 'sysctl "kernel.shmmni" is not allowed in the hosts ipc namespace' },
    { key: 'net.ipv4.ping_group_range', value: '0 0', drop: ['network'], want: 'sysctl "net.ipv4.ping_group_range" is not allowed in the hosts network namespace' },
    { key: 'kernel.domainname', value: 'evil.test', drop: ['uts'], want: 'sysctl "kernel.domainname" is not allowed in the hosts uts namespace' },
    { key: 'kernel.hostname', value: 'evil', drop: ['uts'], want: 'sysctl "kernel.hostname" is not allowed in the hosts uts namespace' },
    // not namespaced at all: refused even with every namespace. No throw-away namespace
    // protects this one, so the value asked for is the host's own: a runtime that wrote
    // it anyway would change nothing.
    { key: 'vm.overcommit_memory', value: readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim(), drop: [], want: 'sysctl "vm.overcommit_memory" is not in a separate kernel namespace' },
  ];
  for (const c of cases) {
    const r = runIsolated((s) => {
      withoutNs(s, ...c.drop);
      s.linux!.sysctl = { [c.key]: c.value };
    });
    t.equal(r.status, 1, `${c.key}: refused`);
    t.match(r.stderr, c.want, `${c.key}: the error names the key and the namespace`);
    t.same(r.after, r.before, `${c.key}: the values in the namespace the runtime ran in are unchanged`);
    t.same(r.left, [], `${c.key}: no container state left behind`);
  }
  t.same(hostValues(), host, "the host's values are unchanged");
});

t.test('a namespace joined by path counts only when it is not the runtime\'s own', async (t) => {
  // the runtime's own ipc namespace, by the path of the shell that runs it
  const r = runIsolated((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'ipc' ? { type: 'ipc', path: '/proc/self/ns/ipc' } : n));
    s.linux!.sysctl = { 'fs.mqueue.queues_max': '100' };
  });
  t.equal(r.status, 1, 'joining the runtime\'s own ipc namespace: refused');
  t.match(r.stderr, 'sysctl "fs.mqueue.queues_max" is not allowed in the hosts ipc namespace');
  t.same(r.after, r.before, 'unchanged');

  // another ipc namespace: a process that waits in one of its own (killed by the script)
  const other = runIsolated((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'ipc' ? { type: 'ipc', path: '__JOIN__' } : n));
    s.linux!.sysctl = { 'fs.mqueue.queues_max': '123' };
  }, [
    'unshare --ipc sleep 60 & SLEEPER=$!',
    'trap \'kill $SLEEPER 2>/dev/null\' EXIT',
    // unshare(1) execs sleep in the same process: wait until its namespace differs
    'i=0; while [ "$(readlink /proc/$SLEEPER/ns/ipc)" = "$(readlink /proc/self/ns/ipc)" ] && [ $i -lt 500 ]; do i=$((i+1)); sleep 0.01; done',
    'sed -i "s|__JOIN__|/proc/$SLEEPER/ns/ipc|" "$BUNDLE/config.json"',
  ].join('\n'));
  t.equal(other.status, 0, other.stderr);
  t.equal(keyValues(other.stdout).in_mqueue, '123', 'the sysctl is set in the joined namespace');
  t.same(other.after, other.before, 'the runtime\'s namespace is unchanged');
});

t.test('sysctls in the container\'s own namespaces are set there', async (t) => {
  const host = hostValues();
  const r = runIsolated((s) => {
    s.linux!.sysctl = {
      'fs.mqueue.queues_max': '100', 'kernel.shmmni': '1234', 'net.ipv4.ping_group_range': '0 0', 'kernel.domainname': 'inside.test',
      'net/ipv4/ip_forward': '1',
    };
    s.process!.args = ['sh', '-c', 'echo in_mqueue=$(cat /proc/sys/fs/mqueue/queues_max); echo in_ping=$(cat /proc/sys/net/ipv4/ping_group_range); echo in_domain=$(cat /proc/sys/kernel/domainname); echo in_shm=$(cat /proc/sys/kernel/shmmni); echo in_fwd=$(cat /proc/sys/net/ipv4/ip_forward)'];
  });
  t.equal(r.status, 0, r.stderr);
  const o = keyValues(r.stdout);
  t.equal(o.in_mqueue, '100');
  t.equal(o.in_shm, '1234');
  t.match(o.in_ping, /^0\s+0$/);
  t.equal(o.in_domain, 'inside.test');
  t.equal(o.in_fwd, '1', 'a key written with slashes');
  t.same(r.after, r.before, 'the runtime\'s namespaces are unchanged');
  t.same(hostValues(), host, "the host's values are unchanged");
});
