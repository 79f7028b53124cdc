// The Dev Containers CLI (npm @devcontainers/cli) driving lxr as its docker
// (`devcontainer up --docker-path lxr`), compared with podman driven the same way in the same
// run: workspace mount and folder, containerEnv, remoteEnv, remoteUser, bind and volume
// mounts, the lifecycle commands (each once), a second `up` reusing the container,
// --remove-existing-container, `lxr up`, and the bad inputs (malformed config, unknown image,
// a Dockerfile build).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX, LXR, REPO, lxr, lxrEnv, registryImage, type LxrEnv } from './helpers/env.js';

const CLI = join(REPO, 'node_modules', '@devcontainers', 'cli', 'devcontainer.js');
const havePodman = spawnSync('podman', ['--version']).status === 0;

// what the CLI's scripts run in the container, beyond the helpers' busybox applets
const MORE_APPLETS = ['sed', 'uname', '[', 'rm', 'chmod', 'cp', 'mv', 'ln', 'tr', 'cut', 'sort', 'awk', 'which', 'tee', 'dirname', 'basename', 'find', 'xargs', 'date', 'uniq', 'su'];

if (!BUSYBOX || !existsSync(CLI)) {
  t.plan(0, 'needs busybox and @devcontainers/cli (npm install)');
} else {
  const env: LxrEnv = lxrEnv(t);
  const base = mkdtempSync(join(tmpdir(), 'lxr-devc-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  let image: string;

  /** podman as root on these machines: runc, pinned ulimits, its own store (GUIDE.md) */
  let podmanPath = '';
  let podmanDir = '';
  const podman = (args: string[]) => spawnSync(podmanPath, args, { encoding: 'utf8', timeout: 120000 });

  t.before(async () => {
    image = await registryImage(t, 'test/devc:1', {
      env: ['PATH=/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      entryLayers: [[
        ...MORE_APPLETS.map((a) => ({ path: `bin/${a}`, type: 'symlink' as const, link: 'busybox' })),
        { path: 'home/dev/', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
        // a new named volume starts as a copy of this (owner included)
        { path: 'data/vol/', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
        { path: 'opt/', type: 'dir' }, { path: 'opt/tool/', type: 'dir' }, { path: 'opt/tool/bin/', type: 'dir' },
        { path: 'opt/tool/bin/mytool', type: 'file', data: '#!/bin/sh\necho mytool-ok\n', mode: 0o755 },
      ]],
    });
    if (!havePodman) return;
    podmanDir = join(base, 'podman');
    for (const d of ['root', 'runroot', 'tmp', 'volumes', 'networks']) mkdirSync(join(podmanDir, d), { recursive: true });
    const nofile = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
    const pidMax = readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim();
    writeFileSync(join(podmanDir, 'containers.conf'), [
      '[containers]', `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${pidMax}:${pidMax}"]`, 'log_driver = "k8s-file"',
      '[engine]', 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${podmanDir}/events.log"`,
      `tmp_dir = "${podmanDir}/tmp"`, `volume_path = "${podmanDir}/volumes"`, '[network]', `network_config_dir = "${podmanDir}/networks"`, '',
    ].join('\n'));
    writeFileSync(join(podmanDir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${podmanDir}/root"\nrunroot = "${podmanDir}/runroot"\n`);
    podmanPath = join(podmanDir, 'podman');
    // The CLI adds --userns=keep-id for podman and a non-root remoteUser: rootful podman refuses it.
    writeFileSync(podmanPath, [
      '#!/bin/bash',
      `export CONTAINERS_CONF=${podmanDir}/containers.conf CONTAINERS_STORAGE_CONF=${podmanDir}/storage.conf`,
      'args=()',
      'for a in "$@"; do [ "$a" = "--userns=keep-id" ] || args+=("$a"); done',
      'exec podman --cgroup-manager cgroupfs --events-backend file "${args[@]}"', '',
    ].join('\n'));
    chmodSync(podmanPath, 0o755);
    const p = podman(['pull', '--tls-verify=false', image]);
    if (p.status !== 0) throw new Error(`podman pull: ${p.stderr}`);
  });
  t.teardown(() => {
    if (!podmanPath) return;
    podman(['rm', '-a', '-f', '-t', '0']);
    podman(['volume', 'prune', '-f']);
    podman(['rmi', '-a', '-f']);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(podmanDir)).reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m]);
  });

  /** A workspace folder with this devcontainer.json (text, so that bad JSON can be written). */
  let wsCount = 0;
  const workspace = (config: string | Record<string, unknown>): string => {
    const ws = join(base, `ws${++wsCount}`);
    mkdirSync(join(ws, '.devcontainer'), { recursive: true });
    writeFileSync(join(ws, 'README'), 'the workspace\n');
    writeFileSync(join(ws, '.devcontainer', 'devcontainer.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
    return ws;
  };
  const bindSrc = join(base, 'bindsrc');
  mkdirSync(bindSrc, { recursive: true });
  writeFileSync(join(bindSrc, 'hello'), 'from the host\n');

  const fullConfig = (volume: string) => ({
    image,
    // JSONC: comments are allowed in devcontainer.json
    containerEnv: { CE: 'ce-value' },
    remoteEnv: { RE: 're-value' },
    remoteUser: 'dev',
    updateRemoteUserUID: false,
    mounts: [`source=${volume},target=/data/vol,type=volume`, `source=${bindSrc},target=/data/bind,type=bind`],
    onCreateCommand: 'echo oncreate >> /tmp/lifecycle',
    postCreateCommand: 'echo postcreate >> /tmp/lifecycle',
    postStartCommand: 'echo poststart >> /tmp/lifecycle',
  });

  interface Outcome { status: number | null; json: Record<string, string>; stderr: string; stdout: string }
  const devcontainer = (docker: string, args: string[]): Outcome => {
    const r = spawnSync(process.execPath, [CLI, args[0]!, '--docker-path', docker, ...args.slice(1)], { encoding: 'utf8', env: { ...env.env, HOME: base }, timeout: 180000 });
    let json: Record<string, string> = {};
    try {
      json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    } catch {
      /* no result line */
    }
    return { status: r.status, json, stderr: r.stderr, stdout: r.stdout };
  };
  const up = (docker: string, ws: string, extra: string[] = []) => devcontainer(docker, ['up', '--workspace-folder', ws, ...extra]);
  const exec = (docker: string, ws: string, cmd: string) => devcontainer(docker, ['exec', '--workspace-folder', ws, 'sh', '-c', cmd]);

  const PROBE = 'echo "user=$(id -un) pwd=$(pwd) CE=$CE RE=$RE tool=$(mytool)"; cat /data/bind/hello; echo v > /data/vol/w && cat /data/vol/w; cat README; cat /tmp/lifecycle';
  const EXPECTED = (ws: string) => `user=dev pwd=/workspaces/${ws} CE=ce-value RE=re-value tool=mytool-ok\nfrom the host\nv\nthe workspace\noncreate\npostcreate\npoststart\n`;

  const engines: [string, () => string][] = [['lxr', () => LXR], ...(havePodman ? [['podman', () => podmanPath] as [string, () => string]] : [])];
  for (const [name, docker] of engines) {
    t.test(`devcontainer up and exec with ${name}`, async (t) => {
      const ws = workspace(fullConfig(`devc-vol-${name}`));
      const u = up(docker(), ws);
      t.equal(u.status, 0, u.stderr.slice(-3000));
      t.equal(u.json.outcome, 'success', u.stdout);
      t.equal(u.json.remoteUser, 'dev');
      t.equal(u.json.remoteWorkspaceFolder, `/workspaces/${ws.split('/').pop()}`);
      const e = exec(docker(), ws, PROBE);
      t.equal(e.status, 0, e.stderr.slice(-3000));
      t.equal(e.stdout, EXPECTED(ws.split('/').pop()!), 'workspace, env, user, mounts, image PATH, each lifecycle command once');

      const again = up(docker(), ws);
      t.equal(again.status, 0, again.stderr.slice(-3000));
      t.equal(again.json.containerId, u.json.containerId, 'a second up reuses the container');
      t.equal(exec(docker(), ws, 'cat /tmp/lifecycle').stdout, 'oncreate\npostcreate\npoststart\n', 'no lifecycle command ran twice');

      const fresh = up(docker(), ws, ['--remove-existing-container']);
      t.equal(fresh.status, 0, fresh.stderr.slice(-3000));
      t.not(fresh.json.containerId, u.json.containerId, '--remove-existing-container makes a new container');
      t.equal(exec(docker(), ws, 'cat /tmp/lifecycle').stdout, 'oncreate\npostcreate\npoststart\n', 'the new container ran each lifecycle command once');
      t.equal(exec(docker(), ws, 'cat /data/vol/w').stdout, 'v\n', 'the named volume outlived the old container');
      if (name === 'lxr') {
        t.not(lxr(env, ['inspect', '--type', 'container', u.json.containerId!]).status, 0, 'the old container is gone');
        const ps = lxr(env, ['ps', '-a', '-q', '--no-trunc', '--filter', `label=devcontainer.local_folder=${ws}`]);
        t.equal(ps.stdout, `${fresh.json.containerId}\n`, 'the container carries the CLI\'s labels');
        t.equal(lxr(env, ['rm', '-f', fresh.json.containerId!]).status, 0);
      } else {
        podman(['rm', '-f', fresh.json.containerId!]);
      }
    });
  }

  t.test('bad input gives a clear error, with lxr as with podman', async (t) => {
    const cases: [string, string | Record<string, unknown>, RegExp][] = [
      ['malformed devcontainer.json', '{ "image": ', /devcontainer\.json/i],
      ['an unknown image', { image: `${image.split('/')[0]}/test/nope:1` }, /nope/],
    ];
    for (const [what, cfg, re] of cases) {
      const ws = workspace(cfg);
      for (const [name, docker] of engines) {
        const r = up(docker(), ws);
        t.not(r.status, 0, `${what}: ${name} fails`);
        t.equal(r.json.outcome, 'error', `${what}: ${name}`);
        t.match(`${r.json.message} ${r.json.description}`, re, `${what}: ${name} says what is wrong`);
      }
    }
    const build = workspace({ build: { dockerfile: 'Dockerfile' } });
    writeFileSync(join(build, '.devcontainer', 'Dockerfile'), `FROM ${image}\n`);
    const r = up(LXR, build);
    t.not(r.status, 0);
    t.match(r.json.message, /lxr\.js build /, 'a build section: the CLI asks lxr to build');
    t.match(r.stderr, /lxr: lxr does not build images/, 'and lxr says it does not build');
    t.same(lxr(env, ['ps', '-a', '-q']).stdout, '', 'nothing was left behind');
  });

  t.test('lxr up: the short way, and its own checks', async (t) => {
    const ws = workspace(fullConfig('devc-vol-short'));
    const r = lxr(env, ['up', ws], { timeout: 180000, env: { HOME: base } });
    t.equal(r.status, 0, r.stderr.slice(-3000));
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    t.equal(res.outcome, 'success');
    t.equal(exec(LXR, ws, PROBE).stdout, EXPECTED(ws.split('/').pop()!));
    t.equal(lxr(env, ['rm', '-f', res.containerId]).status, 0);

    const bad = lxr(env, ['up', workspace('{ "image": "x", }}')]);
    t.equal(bad.status, 125);
    t.match(bad.stderr, /devcontainer\.json line 1: not valid JSON/);
    const build = lxr(env, ['up', workspace('// a Dockerfile build\n{ "build": { "dockerfile": "Dockerfile" }, }')]);
    t.equal(build.status, 125);
    t.match(build.stderr, /"build": lxr does not build images/);
    const none = lxr(env, ['up', base]);
    t.match(none.stderr, /no \.devcontainer\/devcontainer\.json/);
  });
}
