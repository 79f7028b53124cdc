// Lock files can be removed (gc of snapshot locks) without breaking the exclusion they give:
// removeUnusedLockFile takes a lock nobody holds and unlinks it while holding it, and a
// locker that locked the unlinked file notices and locks the file now at the path.
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeUnusedLockFile, withExclusiveLock } from '../native/lock.js';
import { native, LOCK_EX, LOCK_UN } from '../native/index.js';
import { until } from './helpers/until.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'lxr-locks-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a lock file nobody holds is removed; a held one stays', async (t) => {
  const p = join(dir, '.a.lock');
  await withExclusiveLock(p, () => {
    t.equal(removeUnusedLockFile(p), false, 'held: kept');
    t.ok(existsSync(p));
  });
  t.equal(removeUnusedLockFile(p), true, 'free: removed');
  t.notOk(existsSync(p));
  t.equal(removeUnusedLockFile(p), false, 'already gone');
});

/** /proc/locks lines of pid blocked ("->") on the file with inode ino. */
const waitingOn = (pid: number, ino: number | bigint) =>
  readFileSync('/proc/locks', 'utf8').split('\n').some((l) => l.includes('->') && l.split(/\s+/).includes(String(pid)) && l.includes(`:${ino} `));

t.test('a locker whose file was removed under it locks the new file', async (t) => {
  const p = join(dir, '.b.lock');
  writeFileSync(p, '');
  const old = openSync(p, 'r');
  t.equal(native().flock(old, LOCK_EX), 0);
  const oldIno = statSync(p).ino;
  // another process opens the lock file and waits for it
  const script = `import { withExclusiveLock } from ${JSON.stringify(join(REPO, 'native', 'lock.ts'))};
await withExclusiveLock(${JSON.stringify(p)}, () => process.stdout.write('got\\n'));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  t.ok(await until(() => waitingOn(child.pid!, oldIno), 20000), 'the other process waits on the old file');
  // what removeUnusedLockFile does between its open and its flock: the file goes, a new one comes
  unlinkSync(p);
  await withExclusiveLock(p, async () => {
    const newIno = statSync(p).ino;
    t.not(newIno, oldIno);
    native().flock(old, LOCK_UN); // the old file's lock is free: the other process gets it...
    closeSync(old);
    t.ok(await until(() => waitingOn(child.pid!, newIno), 20000), '...sees it was removed, and waits on the new file');
    t.equal(out, '', 'it did not run while we hold the lock');
  });
  t.equal(await exited, 0);
  t.equal(out, 'got\n', 'then it runs');
});
