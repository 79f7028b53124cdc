// The docker CLI subset tools rely on: labels and ps filters, inspect in docker's shape with
// --format templates, --mount, volume commands, events, version/info, run --sig-proxy=false.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, lxr, lxrEnv, registryImage, until, type LxrEnv } from './helpers/env.js';
import { compileFormat } from '../cli/format.js';

t.test('Go templates', async (t) => {
  const dot = { State: { Status: 'running' }, Config: { Labels: { 'a.b': 'x', c: 'y' }, Env: ['A=1', 'B=2'] }, Empty: [] };
  t.equal(compileFormat('{{.State.Status}}')(dot), 'running');
  t.equal(compileFormat('{{json .Config.Labels}}')(dot), '{"a.b":"x","c":"y"}');
  t.equal(compileFormat('{{index .Config.Labels "a.b"}}')(dot), 'x');
  t.equal(compileFormat('{{range .Config.Env}}[{{.}}]{{end}}')(dot), '[A=1][B=2]');
  t.equal(compileFormat('{{if .Empty}}yes{{else}}no{{end}} {{- " " -}} {{join .Config.Env ","}}')(dot), 'no A=1,B=2');
  t.equal(compileFormat('{{.Nope.Deeper}}')(dot), '<no value>');
  t.equal(compileFormat('json')(dot), JSON.stringify(dot));
  t.throws(() => compileFormat('{{.A'), /unclosed action/);
  t.throws(() => compileFormat('{{frob .A}}')(dot), /unknown function "frob"/);
});

if (!BUSYBOX) {
  t.plan(1, 'busybox is not installed');
} else {
  let image: string;
  const env: LxrEnv = lxrEnv(t);
  const host = mkdtempSync(join(tmpdir(), 'lxr-dcli-'));
  t.teardown(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'f'), 'host file\n');
  t.before(async () => {
    image = await registryImage(t, 'test/dcli:1', { env: ['PATH=/bin', 'FROM_IMAGE=1'] });
  });

  t.test('labels, ps filters, inspect and --format', async (t) => {
    writeFileSync(join(host, 'labels'), '# a comment\nfile.label=from-file\n');
    const c = lxr(env, ['create', '--name', 'lab', '-l', 'app=web', '--label', 'tier=front', '--label-file', join(host, 'labels'), image, 'sleep', '100']);
    t.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    t.equal(lxr(env, ['create', '--name', 'other', '-l', 'app=db', image, 'sleep', '100']).status, 0);
    const ps = (...f: string[]) => lxr(env, ['ps', '-a', '-q', ...f.flatMap((x) => ['--filter', x])]).stdout;
    t.equal(ps('label=app=web'), `${id.slice(0, 12)}\n`, 'label=K=V');
    t.equal(ps('label=app=web', 'label=tier=front'), `${id.slice(0, 12)}\n`, 'every label filter must match');
    t.equal(ps('label=app=web', 'label=tier=back'), '', 'a label that does not match hides it');
    t.equal(ps('label=app').split('\n').filter(Boolean).length, 2, 'label=K: has the key');
    t.equal(ps('name=oth'), `${lxr(env, ['inspect', '-f', '{{.Id}}', 'other']).stdout.trim().slice(0, 12)}\n`, 'name= matches part of the name');
    t.equal(ps(`id=${id.slice(0, 5)}`), `${id.slice(0, 12)}\n`, 'id= matches a prefix');
    t.equal(ps('status=running', 'label=app=web'), `${id.slice(0, 12)}\n`);
    t.equal(ps('status=exited', 'label=app=web'), '');
    t.equal(lxr(env, ['ps', '-q', '-a', '--no-trunc', '--filter', 'label=app=web']).stdout, `${id}\n`, '--no-trunc: the full id');
    t.match(lxr(env, ['ps', '--filter', 'colour=red']).stderr, /--filter colour=red: expected one of label=/);
    t.equal(lxr(env, ['ps', '-a', '--filter', 'label=app=web', '--format', '{{.Names}} {{.State}}']).stdout, 'lab running\n');

    const [i] = JSON.parse(lxr(env, ['inspect', '--type', 'container', 'lab']).stdout);
    t.same(i.Config.Labels, { app: 'web', tier: 'front', 'file.label': 'from-file' });
    t.same(i.Config.Cmd, ['sleep', '100']);
    t.ok(i.Config.Env.includes('FROM_IMAGE=1'), 'Config.Env is the process environment');
    t.equal(i.State.Status, 'running');
    t.match(i.State.StartedAt, /^\d{4}-\d\d-\d\dT/);
    t.equal(lxr(env, ['inspect', '--format', '{{index .Config.Labels "tier"}} {{.State.Running}}', 'lab']).stdout, 'front true\n');
    const img = lxr(env, ['inspect', '--type', 'image', image]);
    t.equal(img.status, 0, img.stderr);
    const [im] = JSON.parse(img.stdout);
    t.match(im.Id, /^sha256:[0-9a-f]{64}$/);
    t.same(im.Config.Env, ['PATH=/bin', 'FROM_IMAGE=1']);
    t.equal(im.Os, 'linux');
    t.equal(lxr(env, ['inspect', '-f', '{{.Os}}', image]).stdout, 'linux\n', 'without --type, an image name is found as an image');
    const miss = lxr(env, ['inspect', '--type', 'image', 'nope:1']);
    t.equal(miss.status, 125);
    t.match(miss.stderr, /no such image: "nope:1"/);
    t.equal(lxr(env, ['rm', '-f', 'lab', 'other']).status, 0);
  });

  t.test('--mount bind, volume and tmpfs; volume commands', async (t) => {
    t.equal(lxr(env, ['volume', 'create', '-l', 'k=v', 'mvol']).stdout, 'mvol\n');
    const r = lxr(env, ['run', '--rm', '--mount', `type=bind,source=${host},target=/h,readonly`, '--mount', 'source=mvol,target=/v', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1048576',
      image, 'sh', '-c', 'cat /h/f; touch /h/x 2>/dev/null || echo ro; echo data > /v/d; grep " /t " /proc/mounts | cut -d" " -f3']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, 'host file\nro\ntmpfs\n');
    const [v] = JSON.parse(lxr(env, ['volume', 'inspect', 'mvol']).stdout);
    t.same([v.Name, v.Driver, v.Labels], ['mvol', 'local', { k: 'v' }]);
    t.equal(lxr(env, ['volume', 'ls', '-q']).stdout, 'mvol\n');
    t.match(lxr(env, ['run', '--rm', '--mount', 'type=bind,source=/nonexistent-dir,target=/x', image, 'true']).stderr, /bind source path \/nonexistent-dir does not exist/);
    t.match(lxr(env, ['run', '--rm', '--mount', 'type=nfs,target=/x', image, 'true']).stderr, /type must be bind, volume or tmpfs/);
    t.match(lxr(env, ['run', '--rm', '--mount', 'source=x', image, 'true']).stderr, /target= is required/);
    t.equal(lxr(env, ['create', '--name', 'user', '--mount', 'source=mvol,target=/v', image, 'sleep', '100']).status, 0);
    t.match(lxr(env, ['volume', 'rm', 'mvol']).stderr, /volume mvol is in use by container user/);
    t.equal(lxr(env, ['rm', '-f', 'user']).status, 0);
    t.equal(lxr(env, ['volume', 'rm', 'mvol']).status, 0);
    t.equal(lxr(env, ['volume', 'ls', '-q']).stdout, '');
  });

  t.test('events, run --sig-proxy=false, version and info', async (t) => {
    const ev = spawn(process.execPath, [LXR, 'events', '--format', '{{json .}}', '--filter', 'event=start', '--filter', 'label=watch=me'], { env: env.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    ev.stdout.on('data', (d) => (text += d));
    try {
      const r = lxr(env, ['run', '--sig-proxy=false', '-a', 'STDOUT', '-a', 'STDERR', '-l', 'watch=me', '--name', 'obs', image, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      t.equal(r.status, 3, 'the container\'s exit code');
      t.equal(r.stdout, 'out\n', 'its stdout, followed from the log');
      t.match(r.stderr, /^err$/m, 'its stderr on stderr, as docker prints it');
      t.ok(await until(() => text.includes('\n'), 10000), 'a start event came');
      const e = JSON.parse(text.split('\n')[0]!);
      t.equal(e.Action, 'start');
      t.equal(e.status, 'start');
      t.equal(e.Actor.Attributes.watch, 'me');
      t.equal(e.Actor.Attributes.name, 'obs');
    } finally {
      ev.kill('SIGTERM');
    }
    t.equal(lxr(env, ['rm', 'obs']).status, 0);
    t.match(lxr(env, ['version', '--format', '{{.Server.Version}}']).stdout, /^\d+\.\d+\.\d+\n$/);
    t.match(lxr(env, ['-v']).stdout, /^lxr version \d+\.\d+\.\d+\n$/);
    t.equal(lxr(env, ['info', '--format', '{{.OSType}} {{.Runtimes.nvidia}}']).stdout, 'linux <no value>\n');
  });
}
