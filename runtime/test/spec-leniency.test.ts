// Where lxr accepts more than the runtime-spec schema (runtime/spec/leniency.ts), and
// nothing more: the recursive rootfsPropagation values that containerd's CRI writes.
import t from 'tap';
import { validateSpecObject } from '../spec/load.js';
import { LENIENCIES } from '../spec/leniency.js';
import { defaultSpec } from '../../oci-spec/default.js';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

const spec = (edit: (s: Record<string, any>) => void) => {
  const s = JSON.parse(JSON.stringify(defaultSpec({ args: ['true'] })));
  edit(s);
  return s;
};

t.test('the recursive rootfsPropagation values pass the schema check, and nothing else does', async (t) => {
  for (const v of ['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable']) {
    const s = spec((s) => (s.linux.rootfsPropagation = v));
    t.doesNotThrow(() => validateSpecObject(s), v);
    t.equal(s.linux.rootfsPropagation, v, `${v}: the config itself is not rewritten`);
  }
  t.throws(() => validateSpecObject(spec((s) => (s.linux.rootfsPropagation = 'rbogus'))), /linux\.rootfsPropagation: must be one of/, 'other values are still refused');
  t.throws(
    () => validateSpecObject(spec((s) => {
      s.linux.rootfsPropagation = 'rslave';
      s.process.user.uid = 'root';
    })),
    /process\.user\.uid: must be integer/,
    'every other schema check still applies beside a leniency',
  );
  for (const l of LENIENCIES) {
    t.ok(l.field && l.schema && l.accepts && l.needs, `${l.field}: the leniency says what it accepts and who needs it`);
  }
});

t.test('a container runs with each recursive rootfsPropagation', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  for (const [v, want] of [['rprivate', /^$/], ['rshared', /^shared:\d+$/], ['rslave', /^(master:\d+)?$/], ['runbindable', /^unbindable$/]] as const) {
    const b = makeBundle((s) => {
      s.linux!.rootfsPropagation = v;
      s.process!.args = ['sh', '-c', 'grep -E "^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / " /proc/self/mountinfo'];
    });
    const r = runtime(root, ['run', '-b', b.dir, uniqueId('prop')]);
    b.cleanup();
    t.equal(r.status, 0, `${v}: ${r.stderr}`);
    // the optional fields of the root's line: between the mount options and " - "
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const optional = line.split(' - ')[0]!.split(' ').slice(6).join(' ');
    t.match(optional, want, `${v}: the root mount's propagation (${line})`);
  }
});
