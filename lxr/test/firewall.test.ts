// lxr's iptables rules (lxr/network/firewall.ts) against the real iptables, each case in a
// network namespace of its own: iptables rules are per network namespace, so the host's
// rules are never touched and deleting the namespace deletes every rule made here. The
// module runs in a child process (`ip netns exec NS node driver.mjs`), with iptables,
// iptables-save and iptables-restore behind logging shims, so the cases also count the
// iptables processes one call starts.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ListedRule, Rule } from '../network/firewall.js';

const repo = join(import.meta.dirname, '..', '..');
const firewall = join(repo, 'lxr', 'network', 'firewall.ts');
const TOOLS = ['iptables', 'iptables-save', 'iptables-restore'];

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const real = Object.fromEntries(TOOLS.map((c) => [c, which(c)]));
const missing = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : TOOLS.find((c) => !real[c]) ? 'iptables is not installed (apt-get install -y iptables)' : !which('ip') ? 'iproute2 is needed' : undefined;

// Runs the steps from stdin against the module named by argv[2]; prints one result per step,
// with the iptables calls (from the shims' log) that the step made.
const DRIVER = `
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
const fw = await import(pathToFileURL(process.argv[2]).href);
const steps = JSON.parse(readFileSync(0, 'utf8'));
const log = process.env.LXR_FW_LOG;
const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\\n').filter(Boolean) : []);
const out = [];
for (const s of steps) {
  if (s.path !== undefined) process.env.PATH = s.path;
  const before = calls().length;
  let inPrecheck;
  const precheck = s.precheck === undefined ? undefined : () => {
    if (s.precheck === 'lock') inPrecheck = spawnSync('flock', ['-n', fw.LOCK_PATH, 'true']).status;
    else if (s.precheck === 'list') inPrecheck = fw.listRules();
    else throw new Error('precheck refused');
  };
  try {
    let value;
    if (s.op === 'set') value = fw.setRules(s.tag, s.rules, precheck);
    else if (s.op === 'remove') value = fw.removeRules(s.tag);
    else if (s.op === 'removeWhere') value = fw.removeRulesWhere((tag) => tag.startsWith(s.prefix));
    else if (s.op === 'list') value = fw.listRules();
    else if (s.op === 'tags') value = [...fw.ruleTags()].sort();
    out.push({ ok: true, value, inPrecheck, calls: calls().slice(before) });
  } catch (e) {
    out.push({ ok: false, error: e.message, inPrecheck, calls: calls().slice(before) });
  }
}
process.stdout.write(JSON.stringify(out));
`;

type Step =
  | { op: 'set'; tag: string; rules: Rule[]; precheck?: 'lock' | 'list' | 'throw'; path?: string }
  | { op: 'remove'; tag: string; path?: string }
  | { op: 'removeWhere'; prefix: string; path?: string }
  | { op: 'list' | 'tags'; path?: string };

interface Result {
  ok: boolean;
  value?: any;
  error?: string;
  inPrecheck?: any;
  calls: string[];
}

const A = 'lxr-bridge:t:a';
const B = 'lxr-bridge:t:b';
const P = 'lxr-portmap:t:a';

/** What lxr-bridge sets for a container at `addr`. */
const bridgeRules = (addr: string): Rule[] => [
  { table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', `${addr}/32`, '!', '-d', '10.88.0.0/16', '-j', 'MASQUERADE'] },
  { table: 'filter', chain: 'LXR-FORWARD', args: ['-s', `${addr}/32`, '-j', 'ACCEPT'] },
  { table: 'filter', chain: 'LXR-FORWARD', args: ['-d', `${addr}/32`, '-j', 'ACCEPT'] },
];

/** What lxr-portmap sets for hostPort -> addr:80. */
const portRules = (addr: string, hostPort: number): Rule[] => {
  const svc = ['-d', `${addr}/32`, '-p', 'tcp', '-m', 'tcp', '--dport', '80'];
  return [
    { table: 'nat', chain: 'LXR-HOSTPORTS', args: ['-p', 'tcp', '-m', 'tcp', '--dport', String(hostPort), '-j', 'DNAT', '--to-destination', `${addr}:80`] },
    { table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', '127.0.0.0/8', ...svc, '-j', 'MASQUERADE'] },
    { table: 'nat', chain: 'LXR-POSTROUTING', args: ['-s', '10.88.0.0/16', ...svc, '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'MASQUERADE'] },
    { table: 'filter', chain: 'LXR-FORWARD', args: [...svc, '-j', 'ACCEPT'] },
  ];
};

const JUMPS = [
  '-A PREROUTING -m addrtype --dst-type LOCAL -j LXR-HOSTPORTS',
  '-A OUTPUT -m addrtype --dst-type LOCAL -j LXR-HOSTPORTS',
  '-A POSTROUTING -j LXR-POSTROUTING',
  '-A FORWARD -j LXR-FORWARD',
];

if (missing) {
  t.plan(0, missing);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-fw-test-'));
  const driver = join(dir, 'driver.mjs');
  writeFileSync(driver, DRIVER);
  // shims that log each call, then exec the real tool
  const shims = join(dir, 'shims');
  mkdirSync(shims);
  for (const c of TOOLS) {
    writeFileSync(join(shims, c), `#!/bin/sh\necho "\${0##*/} $*" >> "$LXR_FW_LOG"\nexec ${real[c]} "$@"\n`);
    chmodSync(join(shims, c), 0o755);
  }
  const namespaces: string[] = [];
  t.teardown(() => {
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh network namespace: empty iptables tables. */
  const newNs = (): string => {
    const ns = `lxrfwtest-${process.pid}-${namespaces.length}`;
    const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    namespaces.push(ns);
    return ns;
  };

  // the children get neither tap's loaders nor its variables
  const childEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${shims}:${process.env.PATH}`, LXR_FW_LOG: join(dir, `calls-${Math.random().toString(36).slice(2)}`) };
    for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k === 'NODE_EXTRA_CA_CERTS' || k.startsWith('TAP') || k.startsWith('_TAPJS')) delete env[k];
    return env;
  };
  const driverArgs = (ns: string) => ['netns', 'exec', ns, process.execPath, '--import', 'tsx', driver, firewall];
  const parse = (status: number | null, stdout: string, stderr: string): Result[] => {
    if (status !== 0) throw new Error(`firewall driver exited with ${status}: ${stderr}`);
    return JSON.parse(stdout) as Result[];
  };

  /** Run `steps` in order in one process inside `ns`. */
  const fw = (ns: string, steps: Step[]): Result[] => {
    const r = spawnSync('ip', driverArgs(ns), { cwd: repo, env: childEnv(), input: JSON.stringify(steps), encoding: 'utf8' });
    return parse(r.status, r.stdout, r.stderr);
  };
  const fwAsync = (ns: string, steps: Step[]): Promise<Result[]> =>
    new Promise((resolve, reject) => {
      const c = spawn('ip', driverArgs(ns), { cwd: repo, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('error', reject);
      c.on('close', (code) => {
        try {
          resolve(parse(code, out, err));
        } catch (e) {
          reject(e);
        }
      });
      c.stdin.end(JSON.stringify(steps));
    });

  /** iptables-save of `ns`, without its dated comment lines. */
  const saved = (ns: string): string[] => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'iptables-save'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`iptables-save: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
  };
  const count = (lines: string[], line: string) => lines.filter((l) => l === line).length;
  const ipt = (ns: string, ...args: string[]) => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'iptables', '-w', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`iptables ${args.join(' ')}: ${r.stderr}`);
  };
  const tagged = (rules: ListedRule[], tag: string) => rules.filter((r) => r.tag === tag);

  t.test('setRules creates the chains and jumps once, with one iptables-save and one iptables-restore', async (t) => {
    const ns = newNs();
    const [first, again, port, list, tags] = fw(ns, [
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2') },
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2') },
      { op: 'set', tag: P, rules: portRules('10.88.0.2', 8080), precheck: 'list' },
      { op: 'list' },
      { op: 'tags' },
    ]);
    for (const r of [first, again, port]) {
      t.ok(r.ok, r.error ?? 'succeeds');
      t.same(r.calls, ['iptables-save ', 'iptables-restore --noflush -w'], 'two iptables processes: one save, one restore');
    }
    t.equal(tagged(port.inPrecheck, A).length, 3, 'listRules in the precheck sees the rules, without another iptables-save');

    const lines = saved(ns);
    for (const j of JUMPS) t.equal(count(lines, j), 1, `one jump: ${j}`);
    for (const c of ['LXR-HOSTPORTS', 'LXR-POSTROUTING', 'LXR-FORWARD']) t.equal(count(lines, `:${c} - [0:0]`), 1, `chain ${c} once`);
    t.equal(count(lines, `-A LXR-FORWARD -s 10.88.0.2/32 -m comment --comment "${A}" -j ACCEPT`), 1, 'setRules twice: the rule is there once');

    const rules: ListedRule[] = list.value;
    t.equal(tagged(rules, A).length, 3);
    t.equal(tagged(rules, P).length, 4);
    t.same(rules[0], {
      table: 'nat',
      chain: 'LXR-HOSTPORTS',
      index: 1,
      args: ['-p', 'tcp', '-m', 'tcp', '--dport', '8080', '-m', 'comment', '--comment', P, '-j', 'DNAT', '--to-destination', '10.88.0.2:80'],
      tag: P,
    });
    t.same(
      rules.map((r) => [r.table, r.chain, r.index]),
      [
        ['nat', 'LXR-HOSTPORTS', 1],
        ['nat', 'LXR-POSTROUTING', 1],
        ['nat', 'LXR-POSTROUTING', 2],
        ['nat', 'LXR-POSTROUTING', 3],
        ['filter', 'LXR-FORWARD', 1],
        ['filter', 'LXR-FORWARD', 2],
        ['filter', 'LXR-FORWARD', 3],
      ],
      'listRules: chains in order, 1-based positions',
    );
    t.same(tags.value, [A, P]);
    t.same(tags.calls, ['iptables-save '], 'ruleTags: one iptables-save');
  });

  t.test("replacing a tag's rules leaves the other tags' rules where they are", async (t) => {
    const ns = newNs();
    const [, , , replaced, emptied] = fw(ns, [
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2') },
      { op: 'set', tag: B, rules: bridgeRules('10.88.0.3') },
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.4') },
      { op: 'list' },
      { op: 'set', tag: A, rules: [] },
    ]);
    const rules: ListedRule[] = replaced.value;
    t.same(
      tagged(rules, A).map((r) => r.args[1]),
      ['10.88.0.4/32', '10.88.0.4/32', '10.88.0.4/32'],
      'only the new rules of A',
    );
    t.same(
      rules.filter((r) => r.chain === 'LXR-FORWARD').map((r) => [r.tag, r.index]),
      [
        [B, 1],
        [B, 2],
        [A, 3],
        [A, 4],
      ],
      "B's rules keep their place, A's new ones come after",
    );
    t.ok(emptied.ok, emptied.error ?? 'succeeds');
    const lines = saved(ns);
    t.notOk(lines.some((l) => l.includes(A)), 'setRules(tag, []) removes the tag');
    t.equal(lines.filter((l) => l.includes(B)).length, 3, "B's rules stay");
  });

  t.test('removeRules and removeRulesWhere remove the tagged rules, and only those', async (t) => {
    const ns = newNs();
    fw(ns, [
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2') },
      { op: 'set', tag: B, rules: bridgeRules('10.88.0.3') },
    ]);
    // other tools' rules in lxr's chain: one without a comment that is A's rule otherwise,
    // one with a comment that needs quoting, and A's rule a second time
    const foreign = 'made by "someone" else';
    ipt(ns, '-A', 'LXR-FORWARD', '-s', '10.88.0.2/32', '-j', 'ACCEPT');
    ipt(ns, '-A', 'LXR-FORWARD', '-s', '10.88.0.2/32', '-m', 'comment', '--comment', foreign, '-j', 'ACCEPT');
    ipt(ns, '-A', 'LXR-FORWARD', '-s', '10.88.0.2/32', '-m', 'comment', '--comment', A, '-j', 'ACCEPT');
    const [list, removed, none, where, tags] = fw(ns, [
      { op: 'list' },
      { op: 'remove', tag: A },
      { op: 'remove', tag: A },
      { op: 'removeWhere', prefix: 'lxr-bridge:t:' },
      { op: 'tags' },
    ]);
    t.equal(tagged(list.value, foreign).length, 1, 'a quoted comment reads back as it was written');
    t.equal(removed.value, 4, "A's three rules and its duplicate");
    t.same(removed.calls, ['iptables-save ', 'iptables-restore --noflush -w'], 'removeRules: one save, one restore');
    t.equal(none.value, 0, 'nothing left to remove');
    t.same(none.calls, ['iptables-save '], 'and then no iptables-restore at all');
    t.equal(where.value, 3, "removeRulesWhere: B's rules");
    t.same(tags.value, [foreign], 'the foreign comment is still there');
    const forward = saved(ns).filter((l) => l.startsWith('-A LXR-FORWARD'));
    t.same(
      forward,
      ['-A LXR-FORWARD -s 10.88.0.2/32 -j ACCEPT', '-A LXR-FORWARD -s 10.88.0.2/32 -m comment --comment "made by \\"someone\\" else" -j ACCEPT'],
      'the rules without lxr tags are left alone',
    );
  });

  t.test('arguments with blanks, quotes and backslashes reach iptables intact', async (t) => {
    const ns = newNs();
    const prefix = `lxr "q" a\\b 'x' `;
    const [set, list, removed] = fw(ns, [
      { op: 'set', tag: A, rules: [{ table: 'filter', chain: 'LXR-FORWARD', args: ['-s', '10.88.0.9/32', '-j', 'LOG', '--log-prefix', prefix] }] },
      { op: 'list' },
      { op: 'remove', tag: A },
    ]);
    t.ok(set.ok, set.error ?? 'succeeds');
    t.same(list.value[0].args.slice(-2), ['--log-prefix', prefix]);
    t.equal(removed.value, 1, 'and the rule is removed by the spec iptables-save printed');
    t.notOk(
      saved(ns).some((l) => l.includes('LOG')),
      'gone',
    );
  });

  t.test('the precheck runs under the lock, and when it throws nothing changes', async (t) => {
    const ns = newNs();
    const [refused] = fw(ns, [{ op: 'set', tag: A, rules: bridgeRules('10.88.0.2'), precheck: 'throw' }]);
    t.notOk(refused.ok);
    t.equal(refused.error, 'precheck refused');
    t.same(refused.calls, ['iptables-save '], 'no iptables-restore');
    t.notOk(
      saved(ns).some((l) => l.includes('LXR-')),
      'not even the chains were created',
    );

    const [locked] = fw(ns, [{ op: 'set', tag: A, rules: bridgeRules('10.88.0.2'), precheck: 'lock' }]);
    t.ok(locked.ok, locked.error ?? 'succeeds');
    t.equal(locked.inPrecheck, 1, 'another process cannot take the lock while the precheck runs');
    const before = saved(ns);
    const [again] = fw(ns, [{ op: 'set', tag: A, rules: bridgeRules('10.88.0.7'), precheck: 'throw' }]);
    t.notOk(again.ok);
    t.same(saved(ns), before, "A's rules are unchanged");
  });

  t.test('a rule iptables refuses: the error names it, and nothing is half-applied', async (t) => {
    const ns = newNs();
    // nat is committed before filter fails: that nat part (chains, jumps, rule) is undone
    const bad: Rule = { table: 'filter', chain: 'LXR-FORWARD', args: ['-s', '10.88.0.5/32', '-j', 'LXR-NO-SUCH-CHAIN'] };
    const [fresh] = fw(ns, [{ op: 'set', tag: A, rules: [...bridgeRules('10.88.0.5'), bad] }]);
    t.notOk(fresh.ok);
    t.match(fresh.error, `iptables-restore failed while adding a rule of ${A} to filter LXR-FORWARD (-A LXR-FORWARD -s 10.88.0.5/32 -j LXR-NO-SUCH-CHAIN -m comment --comment ${A}): `);
    t.match(fresh.error, /LXR-NO-SUCH-CHAIN' does not exist/);
    t.match(fresh.error, /undid what was applied to table nat; no rule changed/);
    t.notOk(
      saved(ns).some((l) => l.includes('LXR-')),
      'no chain, jump or rule of lxr is left',
    );

    fw(ns, [
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2') },
      { op: 'set', tag: B, rules: bridgeRules('10.88.0.3') },
    ]);
    const before = saved(ns);
    // A's nat rule is deleted from position 1 and a new one appended, then filter fails:
    // the old rule goes back to position 1
    const [late, early] = fw(ns, [
      { op: 'set', tag: A, rules: [...bridgeRules('10.88.0.6'), bad] },
      { op: 'set', tag: B, rules: [{ table: 'nat', chain: 'LXR-HOSTPORTS', args: ['-p', 'tcp', '-m', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.88.0.999:80'] }, ...bridgeRules('10.88.0.8')] },
    ]);
    t.notOk(late.ok);
    t.match(late.error, /while adding a rule of lxr-bridge:t:a to filter LXR-FORWARD .*LXR-NO-SUCH-CHAIN.*no rule changed/);
    t.notOk(early.ok);
    t.match(early.error, `while adding a rule of ${B} to nat LXR-HOSTPORTS (-A LXR-HOSTPORTS -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.88.0.999:80`);
    t.match(early.error, /\(no rule changed\)$/, 'the first table failed: nothing was committed');
    t.same(saved(ns), before, 'the rules are exactly as before, in the same order');
  });

  t.test('concurrent lxr processes neither duplicate nor lose rules', async (t) => {
    const ns = newNs();
    const shared = 'lxr-portmap:t:shared';
    const runs = [1, 2, 3, 4].map((i) =>
      fwAsync(ns, [
        { op: 'set', tag: `lxr-bridge:t:c${i}`, rules: bridgeRules(`10.88.1.${i}`) },
        { op: 'set', tag: shared, rules: bridgeRules(`10.88.2.${i}`) },
        { op: 'set', tag: `lxr-bridge:t:c${i}`, rules: bridgeRules(`10.88.1.${i}`) },
      ]),
    );
    for (const results of await Promise.all(runs)) for (const r of results) t.ok(r.ok, r.error ?? 'succeeds');
    const lines = saved(ns);
    for (const j of JUMPS) t.equal(count(lines, j), 1, `one jump: ${j}`);
    for (const i of [1, 2, 3, 4]) t.equal(lines.filter((l) => l.includes(`"lxr-bridge:t:c${i}"`)).length, 3, `c${i}: its three rules`);
    const sharedLines = lines.filter((l) => l.includes(`"${shared}"`));
    t.equal(sharedLines.length, 3, 'the shared tag: the three rules of whoever set it last');
    t.equal(new Set(sharedLines.map((l) => /10\.88\.2\.\d/.exec(l)?.[0])).size, 1, 'all from the same setRules');
  });

  t.test('without iptables-save or iptables-restore the error says what to install', async (t) => {
    const ns = newNs();
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const onlySave = join(dir, 'only-save');
    mkdirSync(onlySave);
    writeFileSync(join(onlySave, 'iptables-save'), `#!/bin/sh\nexec ${real['iptables-save']} "$@"\n`);
    chmodSync(join(onlySave, 'iptables-save'), 0o755);
    const [list, set] = fw(ns, [
      { op: 'list', path: empty },
      { op: 'set', tag: A, rules: bridgeRules('10.88.0.2'), path: onlySave },
    ]);
    t.equal(list.error, 'iptables-save is not installed (apt-get install -y iptables)');
    t.equal(set.error, 'iptables-restore is not installed (apt-get install -y iptables)');
  });
}
