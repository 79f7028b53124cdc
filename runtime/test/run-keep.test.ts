// `run --keep` (runc's): the container is not deleted when its process exits; it stays,
// stopped, until `delete`.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { makeBundle, makeRoot, runtime, uniqueId } from './helpers/bundle.js';

t.test('run --keep leaves the container stopped; run without it deletes it', async (t) => {
  const { root, cleanup } = makeRoot();
  const b = makeBundle((s) => (s.process!.args = ['sh', '-c', 'echo kept; exit 3']));
  t.teardown(() => (b.cleanup(), cleanup()));

  const id = uniqueId('keep');
  const r = runtime(root, ['run', '--keep', '-b', b.dir, id]);
  t.equal(r.status, 3, `the exit status of the process: ${r.stderr}`);
  t.equal(r.stdout, 'kept\n');
  const st = runtime(root, ['state', id]);
  t.equal(st.status, 0, st.stderr);
  t.equal(JSON.parse(st.stdout).status, 'stopped', 'state shows it, stopped');
  t.match(runtime(root, ['list', '-q']).stdout, id, 'list shows it');
  t.equal(runtime(root, ['delete', id]).status, 0, 'delete removes it');
  t.not(runtime(root, ['state', id]).status, 0, 'then it is gone');

  const gone = uniqueId('nokeep');
  t.equal(runtime(root, ['run', '-b', b.dir, gone]).status, 3);
  t.match(runtime(root, ['state', gone]).stderr, /does not exist/, 'without --keep, run deletes it');
  t.same(readdirSync(root).filter((d) => !d.startsWith('.')), [], 'nothing left');
});
