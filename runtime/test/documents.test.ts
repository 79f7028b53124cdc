// The JSON documents lxr-runtime prints follow the spec's schemas: `state`
// (runtime.md "State"), `features` (features.md) and `spec` (config.md).
import t from 'tap';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateState, validateFeatures, validateConfig } from '../../oci-spec/validators.generated.js';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

t.test('state validates against state-schema.json in every status', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '100'];
    s.annotations = { 'org.example.key': 'value' };
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const id = uniqueId('doc');
  runtime(root, ['create', '-b', b.dir, id]);
  for (const step of ['created', 'running', 'stopped']) {
    if (step === 'running') runtime(root, ['start', id]);
    if (step === 'stopped') {
      runtime(root, ['kill', id, 'KILL']);
      await waitForStatus(root, id, 'stopped');
    }
    const st = JSON.parse(runtime(root, ['state', id]).stdout);
    t.equal(st.status, step);
    t.ok(validateState(st), `${step}: ${JSON.stringify(validateState.errors)}`);
    t.same(st.annotations, { 'org.example.key': 'value' }, 'annotations from config.json');
  }
  runtime(root, ['delete', id]);
});

t.test('features validates against features-schema.json and tells the truth', async (t) => {
  const { root, cleanup } = makeRoot();
  t.teardown(cleanup);
  const f = JSON.parse(runtime(root, ['features']).stdout);
  t.ok(validateFeatures(f), JSON.stringify(validateFeatures.errors));
  t.equal(f.ociVersionMax, '1.3.0');
  t.same(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  t.equal(f.linux.seccomp.enabled, true, 'seccomp is implemented');
  t.ok(f.linux.seccomp.actions.includes('SCMP_ACT_ERRNO'));
  t.ok(f.linux.namespaces.includes('time'));
  t.ok(f.linux.capabilities.includes('CAP_SYS_ADMIN'));
});

t.test('spec writes a valid default config.json, and --rootless a user-namespaced one', async (t) => {
  const { root, cleanup } = makeRoot();
  const dir = mkdtempSync(join(tmpdir(), 'lxr-spec-'));
  t.teardown(() => (cleanup(), rmSync(dir, { recursive: true, force: true })));
  t.equal(runtime(root, ['spec', '--bundle', dir]).status, 0);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  t.ok(validateConfig(spec), JSON.stringify(validateConfig.errors));
  t.same(spec.process.args, ['sh']);
  const again = runtime(root, ['spec', '--bundle', dir]);
  t.not(again.status, 0, 'an existing config.json is not overwritten');
  t.match(again.stderr, /already exists/);
  rmSync(join(dir, 'config.json'));
  t.equal(runtime(root, ['spec', '--rootless', '--bundle', dir]).status, 0);
  const rl = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  t.ok(validateConfig(rl));
  t.ok(rl.linux.namespaces.some((n: { type: string }) => n.type === 'user'), 'a user namespace');
  t.equal(rl.linux.uidMappings[0].containerID, 0);
});
