// hooks (config.md "POSIX-platform Hooks"): all six kinds, with the state on stdin, in
// the right namespaces, and the failure rules.
import t from 'tap';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, makeRoot, runtime, uniqueId, waitForStatus } from './helpers/bundle.js';

const sh = (script: string) => ({ path: '/bin/sh', args: ['sh', '-c', script] });

t.test('every hook runs once, in order, with the state on stdin', async (t) => {
  const { root, cleanup } = makeRoot();
  let dir = '';
  const b = makeBundle((s) => {
    s.hostname = 'hooked';
    s.process!.args = ['sh', '-c', 'sleep 0.3'];
    s.hooks = {
      prestart: [sh(`cat > "$OUT/prestart.json"; echo prestart >> "$OUT/order"`)],
      createRuntime: [sh(`cat > "$OUT/createRuntime.json"; echo createRuntime >> "$OUT/order"; hostname > "$OUT/createRuntime.host"`)],
      createContainer: [sh(`cat > "$OUT/createContainer.json"; echo createContainer >> "$OUT/order"; hostname > "$OUT/createContainer.host"`)],
      // startContainer runs in the container: its path and files are the container's
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > /tmp/startContainer.json; hostname > /tmp/startContainer.host'] }],
      poststart: [sh(`cat > "$OUT/poststart.json"; echo poststart >> "$OUT/order"`)],
      poststop: [sh(`cat > "$OUT/poststop.json"; echo poststop >> "$OUT/order"`)],
    };
  });
  dir = b.dir;
  // the hooks find their output dir through env
  const cfgPath = join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  for (const list of Object.values(cfg.hooks) as { env?: string[] }[][]) for (const h of list) h.env = [`OUT=${dir}`, 'PATH=/bin:/usr/bin'];
  (await import('node:fs')).writeFileSync(cfgPath, JSON.stringify(cfg));
  t.teardown(() => (b.cleanup(), cleanup()));

  const id = uniqueId('hooks');
  const r = runtime(root, ['run', '-b', dir, id]);
  t.equal(r.status, 0, r.stderr);
  t.same(readFileSync(join(dir, 'order'), 'utf8').trim().split('\n'), ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
  for (const k of ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']) {
    const st = JSON.parse(readFileSync(join(dir, `${k}.json`), 'utf8'));
    t.equal(st.id, id, `${k} got the state`);
    t.equal(st.bundle, dir);
    t.equal(st.ociVersion, '1.3.0');
  }
  t.equal(JSON.parse(readFileSync(join(dir, 'createRuntime.json'), 'utf8')).status, 'creating');
  t.equal(JSON.parse(readFileSync(join(dir, 'poststart.json'), 'utf8')).status, 'running');
  t.equal(JSON.parse(readFileSync(join(dir, 'poststop.json'), 'utf8')).status, 'stopped');
  t.type(JSON.parse(readFileSync(join(dir, 'createRuntime.json'), 'utf8')).pid, 'number');
  t.not(readFileSync(join(dir, 'createRuntime.host'), 'utf8').trim(), 'hooked', 'createRuntime runs in the runtime namespace');
  t.equal(readFileSync(join(dir, 'createContainer.host'), 'utf8').trim(), 'hooked', 'createContainer runs in the container namespace');
  t.equal(readFileSync(join(b.rootfs, 'tmp', 'startContainer.host'), 'utf8').trim(), 'hooked', 'startContainer runs in the container');
  t.equal(JSON.parse(readFileSync(join(b.rootfs, 'tmp', 'startContainer.json'), 'utf8')).status, 'created');
});

t.test('a failing createRuntime hook fails create with its exit status and leaves nothing', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '100'];
    s.hooks = { createRuntime: [sh('echo something broke >&2; exit 3')] };
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('fail')]);
  t.not(r.status, 0);
  t.match(r.stderr, /hooks\.createRuntime\[0\] hook "\/bin\/sh" exited with status 3: something broke/);
  t.same(readdirSync(root), []);
});

t.test('a hook that runs past its timeout is killed and fails create', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '100'];
    s.hooks = { prestart: [{ ...sh('sleep 30'), timeout: 1 }] };
  });
  t.teardown(() => (b.cleanup(), cleanup()));
  const r = runtime(root, ['create', '-b', b.dir, uniqueId('slow')]);
  t.not(r.status, 0);
  t.match(r.stderr, /hooks\.prestart\[0\] hook "\/bin\/sh" timed out after 1s/);
  t.same(readdirSync(root), []);
});

t.test('a failing poststart hook fails start and stops the container (runtime.md 1.3.0, lifecycle step 9)', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => {
    s.process!.args = ['sleep', '30'];
    s.hooks = { poststart: [sh('exit 1')] };
  });
  const id = uniqueId('poststart');
  t.teardown(() => (runtime(root, ['delete', '-f', id]), b.cleanup(), cleanup()));
  t.equal(runtime(root, ['create', '-b', b.dir, id]).status, 0);
  const r = runtime(root, ['start', id]);
  t.not(r.status, 0, 'start fails');
  t.match(r.stderr, /poststart/, `the error names the hook: ${r.stderr}`);
  t.equal(await waitForStatus(root, id, 'stopped'), 'stopped', 'the container was stopped');
  t.equal(runtime(root, ['delete', id]).status, 0, 'and delete destroys it');
});

t.test('a hook without env gets the runtime\'s environment; one with env gets only that', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle();
  const dir = b.dir;
  t.teardown(() => (b.cleanup(), cleanup()));
  const cfgPath = join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.hooks = {
    prestart: [{ path: '/bin/sh', args: ['sh', '-c', `env > "${dir}/noenv"`] }],
    poststop: [{ path: '/bin/sh', args: ['sh', '-c', `env > "${dir}/withenv"`], env: ['ONLY=this'] }],
  };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  process.env.LXR_HOOK_ENV_MARK = 'from-the-runtime';
  try {
    const r = runtime(root, ['run', '-b', dir, uniqueId('hookenv')]);
    t.equal(r.status, 0, r.stderr);
  } finally {
    delete process.env.LXR_HOOK_ENV_MARK;
  }
  const noenv = readFileSync(join(dir, 'noenv'), 'utf8');
  t.match(noenv, /^LXR_HOOK_ENV_MARK=from-the-runtime$/m, 'the runtime\'s variables');
  t.match(noenv, /^PATH=/m, 'including PATH');
  const withenv = readFileSync(join(dir, 'withenv'), 'utf8');
  t.match(withenv, /^ONLY=this$/m);
  t.notMatch(withenv, /LXR_HOOK_ENV_MARK/, 'a hook\'s own env replaces the runtime\'s');
});
