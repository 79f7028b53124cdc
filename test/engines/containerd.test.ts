// lxr-runtime as the runc binary of containerd's io.containerd.runc.v2 shim
// (`ctr run --runc-binary`), with the same checks run against runc as a control.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { IMAGE, LXR_RUNTIME, cgroupDirsLeft, runCmd, imageArchive, startContainerd, until, which, type Containerd } from './helpers/engines.js';
import { BUSYBOX } from './helpers/image.js';

const missing = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'setsid'].filter((c) => !which(c));
if (process.getuid?.() !== 0) t.plan(0, 'containerd tests need root');
else if (missing.length) t.plan(0, `not installed: ${missing.join(', ')} (apt-get install containerd runc util-linux)`);
else if (!BUSYBOX) t.plan(0, 'busybox is not installed (apt-get install busybox-static)');
else if (!existsSync(new URL('../../dist/lxr-runtime.js', import.meta.url))) t.fail('dist/lxr-runtime.js is missing: run npm run build');
else {
  let c: Containerd;
  t.before(async () => {
    c = await startContainerd();
    const r = c.ctr(['images', 'import', imageArchive(c.dir)]);
    if (r.status !== 0) throw new Error(`ctr images import failed: ${r.stderr}`);
  });
  t.teardown(async () => {
    await c?.stop();
  });

  for (const [label, runtime] of [['runc', 'runc'], ['lxr-runtime', LXR_RUNTIME]] as const) {
    t.test(label, async (t) => {
      const flags = () => c.runtimeFlags(runtime);
      const id = (s: string) => `${label.replace(/\W/g, '')}-${s}`;

      t.test('ctr run --rm: output and exit code', async (t) => {
        const r = c.ctr(['run', ...flags(), '--rm', IMAGE, id('rm'), 'sh', '-c', 'echo out; echo err >&2; exit 3']);
        t.equal(r.stdout, 'out\n');
        t.match(r.stderr, /err/);
        t.equal(r.status, 3, 'the exit code of the container process');
        const ok = c.ctr(['run', ...flags(), '--rm', IMAGE, id('rm0'), 'true']);
        t.equal(ok.status, 0);
        t.notOk(c.ctr(['containers', 'list', '-q']).stdout.includes(id('rm')), '--rm removed the container');
      });

      t.test('ctr run --rm -t: a terminal', async (t) => {
        const r = await c.ctrTty(['run', ...flags(), '--rm', '-t', IMAGE, id('tty'), 'sh', '-c', 'tty; exit 4']);
        t.match(r.stdout, /\/dev\/pts\/\d+/, 'the process has a pty as its terminal');
        t.equal(r.status, 4);
      });

      t.test('an error of the runtime reaches ctr (--log JSON)', async (t) => {
        const r = c.ctr(['run', ...flags(), '--rm', IMAGE, id('enoent'), '/no/such/binary']);
        t.not(r.status, 0);
        t.match(r.stderr, /\/no\/such\/binary/, 'the message names the missing executable');
        t.notOk(c.ctr(['task', 'list', '-q']).stdout.includes(id('enoent')), 'no task is left');
        c.ctr(['containers', 'delete', id('enoent')]);
      });

      t.test('a detached task: exec, ps, pause, resume, metrics, kill, delete', async (t) => {
        const name = id('d');
        const run = c.ctr(['run', ...flags(), '-d', '--memory-limit', String(64 << 20), IMAGE, name, 'sleep', '1000']);
        t.equal(run.status, 0, `ctr run -d: ${run.stderr}`);
        const tasks = () => c.ctr(['task', 'list']).stdout.split('\n').filter((l) => l.startsWith(name + ' '))[0]?.trim().split(/\s+/) ?? [];
        t.equal(tasks()[2], 'RUNNING');
        const pid = tasks()[1]!;

        const ex = c.ctr(['task', 'exec', ...c.fifoFlags, '--exec-id', 'e1', name, 'sh', '-c', 'echo in-exec; exit 5']);
        t.equal(ex.stdout, 'in-exec\n', 'exec output');
        t.equal(ex.status, 5, 'exec exit code');
        const ext = await c.ctrTty(['task', 'exec', ...c.fifoFlags, '-t', '--exec-id', 'e2', name, 'sh', '-c', 'tty; exit 6']);
        t.match(ext.stdout, /\/dev\/pts\/\d+/, 'exec -t has a terminal');
        t.equal(ext.status, 6, 'exec -t exit code');

        const bg = c.ctr(['task', 'exec', ...c.fifoFlags, '-d', '--exec-id', 'e3', name, 'sleep', '500']);
        t.equal(bg.status, 0, `exec -d: ${bg.stderr}`);
        const ps = c.ctr(['task', 'ps', name]);
        t.equal(ps.status, 0, `task ps: ${ps.stderr}`);
        const pids = ps.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
        t.ok(pids.includes(pid), 'task ps lists the init');
        t.equal(pids.length, 2, 'and the exec process');

        t.equal(c.ctr(['task', 'pause', name]).status, 0, 'pause');
        t.equal(tasks()[2], 'PAUSED');
        t.equal(c.ctr(['task', 'resume', name]).status, 0, 'resume');
        t.equal(tasks()[2], 'RUNNING');

        const m = c.ctr(['task', 'metrics', name]);
        t.equal(m.status, 0, `task metrics: ${m.stderr}`);
        t.match(m.stdout, new RegExp(`memory.limit_in_bytes\\s+${64 << 20}\\b`), 'the memory limit');
        t.match(m.stdout, /pids.current\s+2\b/, 'two processes');
        t.match(m.stdout, /memory.usage_in_bytes\s+[1-9]/, 'memory in use');

        // the shim's Update runs `<runtime> update --resources - ID` with the JSON on stdin
        const up = runCmd(runtime === 'runc' ? 'runc' : LXR_RUNTIME, ['--root', `${c.runcRoot(runtime)}/${c.namespace}`, 'update', '--resources', '-', name], {
          input: JSON.stringify({ memory: { limit: 32 << 20 }, pids: { limit: 20 } }),
        });
        t.equal(up.status, 0, `update --resources -: ${up.stderr}`);
        const m2 = c.ctr(['task', 'metrics', name]).stdout;
        t.match(m2, new RegExp(`memory.limit_in_bytes\\s+${32 << 20}\\b`), 'the new memory limit');
        t.match(m2, /pids.limit\s+20\b/, 'the new pids limit');

        // containerd's CRI sends the whole linux.resources on every UpdateContainerResources,
        // the config's device rules ("deny all": the defaults are the runtime's) included
        const full = runCmd(runtime === 'runc' ? 'runc' : LXR_RUNTIME, ['--root', `${c.runcRoot(runtime)}/${c.namespace}`, 'update', '--resources', '-', name], {
          input: JSON.stringify({ devices: [{ allow: false, access: 'rwm' }], memory: { limit: 48 << 20 }, cpu: { shares: 512, period: 100000, quota: 0 }, pids: { limit: 30 } }),
        });
        t.equal(full.status, 0, `update --resources - with devices: ${full.stderr}`);
        const dn = c.ctr(['task', 'exec', ...c.fifoFlags, '--exec-id', 'e4', name, 'sh', '-c', 'echo > /dev/null && echo written']);
        t.same([dn.status, dn.stdout, dn.stderr], [0, 'written\n', ''], '/dev/null is still writable after the update');
        const tty2 = await c.ctrTty(['task', 'exec', ...c.fifoFlags, '-t', '--exec-id', 'e5', name, 'sh', '-c', 'tty; exit 7']);
        t.match(tty2.stdout, /\/dev\/pts\/\d+/, 'and exec -t still gets a terminal');
        t.equal(tty2.status, 7);

        t.equal(c.ctr(['task', 'kill', '-s', 'SIGKILL', name]).status, 0, 'kill');
        t.ok(await until(() => tasks()[2] === 'STOPPED'), 'the task stops');
        const again = c.ctr(['task', 'kill', '-s', 'SIGKILL', name]);
        t.not(again.status, 0, 'killing a stopped task fails');
        t.match(again.stderr, /process already finished/, 'as "process already finished", like runc');
        t.equal(c.ctr(['task', 'delete', name]).status, 0, 'task delete');
        t.equal(c.ctr(['containers', 'delete', name]).status, 0, 'container delete');
        t.equal(tasks().length, 0, 'no task left');
      });

      t.test('a task stopped by its own exit is deleted cleanly', async (t) => {
        const name = id('exit');
        t.equal(c.ctr(['run', ...flags(), '-d', IMAGE, name, 'sh', '-c', 'exit 9']).status, 0);
        t.ok(await until(() => /STOPPED/.test(c.ctr(['task', 'list']).stdout)), 'stopped');
        const del = c.ctr(['task', 'delete', name]);
        t.equal(del.status, 0);
        t.match(del.stdout + del.stderr, /9/, 'task delete reports exit status 9');
        t.equal(c.ctr(['containers', 'delete', name]).status, 0);
      });

      t.test('nothing is left behind', async (t) => {
        const root = `${c.runcRoot(runtime)}/${c.namespace}`;
        // @seccomp: compiled seccomp programs (runtime/linux/seccomp-cache.ts), no container's state
        const left = existsSync(root) ? readdirSync(root).filter((e) => !e.startsWith('.') && e !== '@seccomp') : [];
        t.same(left, [], `no container state in ${root}`);
        for (const d of cgroupDirsLeft(c.namespace)) {
          const sub = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
          t.same(sub, [], `no container cgroup left in ${d}`);
        }
      });
    });
  }
}
