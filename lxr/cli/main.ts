// lxr: the front end. Each command parses its arguments and calls the lxr library.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { lxrContext, trace, type LxrContext } from '../core/context.js';
import type { CreateOptions, EarlyMonitor } from '../containers/create.js';
import { parseCap, parseCpus, parseEnv, parseMemory, parsePort, parseIdeBind, parseRestart, parseSecurityOpts, parseVolume } from '../containers/options.js';
import { LxrError, errorMessage } from '../../common/errors.js';
import { parseLabels } from '../containers/labels.js';
import { parseMount } from '../containers/mounts.js';
import { skipHelpCache } from '../../common/cli/yargs-help.js';
import { parseRunFlags } from '../containers/run-flags.js';
import { groupRunHelp, runFlagOptions } from './run-options.js';
import { learnCommand } from '../../common/cli/code-cache.js';
import { humanSize, table } from '../../common/cli/format.js';

interface Globals {
  root?: string;
  'run-root'?: string;
  store?: string;
}

const ctxOf = (a: Globals): LxrContext => lxrContext({ ...(a.root ? { root: a.root } : {}), ...(a['run-root'] ? { runRoot: a['run-root'] } : {}), ...(a.store ? { imageStore: a.store } : {}) });

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** The command after the image or container: the positional, or what followed the "--" splitCommand put in. */
const commandOf = (a: Record<string, unknown>): string[] => [...list(a.command), ...list(a._).slice(1)];

function createFlags<T>(y: Argv<T>) {
  return runFlagOptions(y)
    .positional('image', { type: 'string', demandOption: true, describe: 'image reference' })
    .positional('command', { type: 'string', array: true, describe: 'command and arguments (default: the image\'s)' })
    .option('name', { type: 'string', describe: 'container name (unique)' })
    .option('env', { alias: 'e', type: 'string', array: true, describe: 'KEY=VALUE (or KEY to copy it from this environment)' })
    .option('env-file', { type: 'string', array: true, describe: 'file of KEY=VALUE lines' })
    .option('publish', { alias: 'p', type: 'string', array: true, describe: 'HOSTPORT:CONTAINERPORT[/tcp|udp]' })
    .option('volume', { alias: 'v', type: 'string', array: true, describe: "HOSTPATH|NAME:CONTAINERPATH[:ro,rw,nocopy] (a new named volume starts as a copy of the image's directory)" })
    .option('workdir', { alias: 'w', type: 'string', describe: 'working directory in the container' })
    .option('user', { alias: 'u', type: 'string', describe: 'user[:group] or uid[:gid]' })
    .option('hostname', { type: 'string' })
    .option('network', { type: 'string', describe: 'bridge (default, or $LXR_NETWORK) | none | host | NAME' })
    .option('net', { type: 'string', hidden: true })
    .option('memory', { alias: 'm', type: 'string', describe: 'memory limit, e.g. 512m' })
    .option('cpus', { type: 'string', describe: 'CPU limit, e.g. 1.5' })
    .option('pids-limit', { type: 'number' })
    .option('read-only', { type: 'boolean', default: false })
    .option('cap-add', { type: 'string', array: true })
    .option('cap-drop', { type: 'string', array: true })
    .option('privileged', { type: 'boolean', default: false, describe: 'every capability, no seccomp filter, no masked or read-only paths' })
    .option('security-opt', { type: 'string', array: true, describe: 'seccomp=unconfined | seccomp=PROFILE.json | no-new-privileges[=true|false]' })
    .option('restart', { type: 'string', default: 'no', describe: 'no | on-failure | always' })
    .option('entrypoint', { type: 'string' })
    .option('tty', { alias: 't', type: 'boolean', default: false })
    .option('interactive', { alias: 'i', type: 'boolean', default: false })
    .option('rm', { type: 'boolean', default: false, describe: 'remove the container when it exits' })
    .option('ide', { type: 'boolean', default: false, describe: 'serve code-server (VS Code in the browser) for this container' })
    .option('ide-port', { type: 'number', describe: 'host port for --ide (default 8443, on 127.0.0.1)' })
    .option('ide-bind', { type: 'string', describe: 'host address for --ide (default 127.0.0.1; another one exposes code-server beyond this machine)' })
    .option('pull', { type: 'string', default: 'missing', choices: ['missing', 'always', 'never'] })
    // docker CLI compatibility (lxr/containers/labels.ts, mounts.ts)
    .option('label', { alias: 'l', type: 'string', array: true, describe: 'KEY=VALUE metadata (ps --filter label=, inspect)' })
    .option('label-file', { type: 'string', array: true, describe: 'file of KEY=VALUE label lines' })
    .option('mount', { type: 'string', array: true, describe: 'type=bind|volume|tmpfs,source=...,target=...[,readonly]' });
}

function createOptions(a: Record<string, unknown>): CreateOptions {
  const o: CreateOptions = {
    image: String(a.image),
    command: commandOf(a),
    env: parseEnv(list(a.env), list(a['env-file'])),
    ports: list(a.publish).map(parsePort),
    volumes: [...list(a.volume).map(parseVolume), ...list(a.mount).map(parseMount)],
    labels: parseLabels(list(a.label), list(a['label-file'])),
    ...(a.net ?? a.network ? { network: String(a.net ?? a.network) } : {}),
    readOnly: !!a['read-only'],
    capAdd: list(a['cap-add']).map(parseCap),
    capDrop: list(a['cap-drop']).map(parseCap),
    ...parseSecurityOpts(list(a['security-opt'])),
    restart: parseRestart(String(a.restart ?? 'no')),
    tty: !!a.tty,
    interactive: !!a.interactive,
    autoRemove: !!a.rm,
    pull: a.pull as CreateOptions['pull'],
    ...parseRunFlags(a),
  };
  if (a.name !== undefined) o.name = String(a.name);
  if (a.workdir) o.workdir = String(a.workdir);
  if (a.user) o.user = String(a.user);
  if (a.hostname) o.hostname = String(a.hostname);
  if (a.memory) o.memory = parseMemory(String(a.memory));
  if (a.cpus) o.cpus = parseCpus(String(a.cpus));
  if (a['pids-limit'] !== undefined) o.pidsLimit = Number(a['pids-limit']);
  if (a.entrypoint !== undefined) o.entrypoint = String(a.entrypoint) ? [String(a.entrypoint)] : [];
  if (a.ide) o.ide = true;
  // `lxr up --ide`: the dev container the Dev Containers CLI runs gets code-server too
  if (process.env.LXR_UP_IDE === '1' && o.labels?.['devcontainer.local_folder']) {
    o.ide = true;
    if (process.env.LXR_UP_IDE_PORT) o.idePort = Number(process.env.LXR_UP_IDE_PORT);
  }
  if (a.privileged) o.privileged = true;
  if (a['ide-bind'] !== undefined) {
    const b = parseIdeBind(String(a['ide-bind']));
    if (b.warning) process.stderr.write(`lxr: warning: ${b.warning}\n`);
    o.ideBind = b.address;
  }
  if (a['ide-port'] !== undefined) o.idePort = Number(a['ide-port']);
  return o;
}

async function printIde(r: { settings: { ide?: boolean; idePort?: number; idePassword?: string; ideBind?: string } }): Promise<void> {
  if (!r.settings.ide) return;
  const { ideLoginMessage, ideUrl } = await import('../ide/index.js');
  const host = !r.settings.ideBind || r.settings.ideBind === '0.0.0.0' ? '127.0.0.1' : r.settings.ideBind;
  process.stderr.write(`${ideLoginMessage(ideUrl(r.settings.idePort!, host), r.settings.idePassword!)}\n`);
}

export function buildCli(): Argv {
  return yargs()
    .scriptName('lxr')
    .usage('$0 <command> [options]')
    .option('root', { type: 'string', global: true, describe: 'state directory (default $LXR_ROOT, /var/lib/lxr, or ~/.local/share/lxr as a user)' })
    .option('run-root', { type: 'string', global: true, describe: 'runtime state (default $LXR_RUN_ROOT, /run/lxr, or $XDG_RUNTIME_DIR/lxr as a user)' })
    .option('store', { type: 'string', global: true, describe: 'image store (default $LXR_IMAGE_STORE or <root>/images)' })
    .parserConfiguration({ 'greedy-arrays': false, 'populate--': false, 'boolean-negation': false })
    .command('create <image> [command..]', 'pull the image if missing, create the container and start it in the background', (y) => groupRunHelp(createFlags(y)), async (a) => {
      const { createAndStart } = await import('../containers/create.js');
      const r = await createAndStart(ctxOf(a), { ...createOptions(a), ...earlyFor(a) });
      out(r.id);
      await printIde(r);
    })
    .command('run <image> [command..]', 'create and start a container; in the foreground unless -d', (y) => groupRunHelp(createFlags(y).option('detach', { alias: 'd', type: 'boolean', default: false })
      .option('sig-proxy', { type: 'boolean', default: true, describe: 'forward signals to the container (false: this command only shows its output)' })
      .option('attach', { alias: 'a', type: 'string', array: true, describe: 'STDIN, STDOUT, STDERR: the streams to attach (default all)' })), async (a) => {
      const { runContainer } = await import('../containers/run.js');
      const attach = list(a.attach).map((s) => s.toLowerCase());
      for (const s of attach) if (!['stdin', 'stdout', 'stderr'].includes(s)) throw new LxrError(`--attach ${s}: use STDIN, STDOUT or STDERR`);
      // attached to the output only: the container runs under its monitor, this command follows it
      const observe = !a.detach && !a.tty && !a.interactive && (a['sig-proxy'] === false || (attach.length > 0 && !attach.includes('stdin')));
      const r = await runContainer(ctxOf(a), { ...createOptions(a), detach: !!a.detach, ...(observe ? { observe: true } : {}), ...(a.detach ? earlyFor(a) : {}) });
      if (a.detach) {
        out(r.id);
        const { getRecord } = await import('../containers/store.js');
        await printIde(getRecord(ctxOf(a), r.id));
      }
      else process.exitCode = r.exitCode ?? 0;
    })
    .command('start <containers..>', 'start stopped containers in the background', (y) => y.positional('containers', { type: 'string', array: true }), async (a) => {
      const { startContainer } = await import('../containers/manage.js');
      for (const c of list(a.containers)) {
        await startContainer(ctxOf(a), c);
        out(c);
      }
    })
    .command('stop <containers..>', 'send the image\'s StopSignal, then SIGKILL after -t seconds', (y) => y.positional('containers', { type: 'string', array: true }).option('time', { alias: 't', type: 'number', describe: 'seconds before SIGKILL (default: the container\'s --stop-timeout, or 10)' }), async (a) => {
      const { stopContainer } = await import('../containers/manage.js');
      for (const c of list(a.containers)) {
        await stopContainer(ctxOf(a), c, a.time as number | undefined);
        out(c);
      }
    })
    .command('restart <containers..>', 'stop then start', (y) => y.positional('containers', { type: 'string', array: true }).option('time', { alias: 't', type: 'number' }), async (a) => {
      const { restartContainer } = await import('../containers/manage.js');
      for (const c of list(a.containers)) {
        await restartContainer(ctxOf(a), c, a.time as number | undefined);
        out(c);
      }
    })
    .command('rm <containers..>', 'remove containers (their upper layer and logs; image snapshots stay)', (y) => y.positional('containers', { type: 'string', array: true }).option('force', { alias: 'f', type: 'boolean', default: false }), async (a) => {
      const { removeContainer } = await import('../containers/manage.js');
      let failed = false;
      for (const c of list(a.containers)) {
        try {
          await removeContainer(ctxOf(a), c, !!a.force);
          out(c);
        } catch (e) {
          failed = true;
          process.stderr.write(`lxr: ${errorMessage(e)}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    })
    .command(['ps', 'list', 'ls'], 'list containers', (y) => y.option('all', { alias: 'a', type: 'boolean', default: false }).option('format', { type: 'string', describe: 'json or a Go template ({{.ID}} {{.Names}} {{.Labels}} ...)' }).option('quiet', { alias: 'q', type: 'boolean', default: false })
      .option('filter', { alias: 'f', type: 'string', array: true, describe: 'label=KEY[=VALUE], name=, id=, status=' }).option('no-trunc', { type: 'boolean', default: false, describe: 'full container ids' }), async (a) => {
      const { listContainers } = await import('../containers/query.js');
      const { parseFilters, matchFilters } = await import('../containers/labels.js');
      const filters = parseFilters(list(a.filter));
      // a status filter looks at every container, as docker's does
      const rows = listContainers(ctxOf(a), !!a.all || filters.has('status')).filter((r) => matchFilters(filters, { id: r.Id, name: r.Name, status: r.State, labels: r.Labels }));
      const id = (full: string) => (a['no-trunc'] ? full : full.slice(0, 12));
      if (a.quiet) return rows.forEach((r) => out(id(r.Id)));
      if (a.format === 'json') return out(JSON.stringify(rows, null, 2));
      if (a.format) {
        const { formatEach } = await import('./format.js');
        const docker = rows.map((r) => ({ ...r, ID: id(r.Id), Names: r.Name, CreatedAt: r.Created, Labels: Object.entries(r.Labels).map(([k, v]) => `${k}=${v}`).join(','), LabelMap: r.Labels }));
        return void process.stdout.write(formatEach(String(a.format), docker));
      }
      const created = (iso: string) => new Date(iso).toISOString().replace('T', ' ').slice(0, 19);
      out(table([['NAME', 'ID', 'IMAGE', 'COMMAND', 'PID', 'IP', 'STATUS', 'CREATED', 'PORTS'], ...rows.map((r) => [r.Name, id(r.Id), r.Image, r.Command, r.Pid ? String(r.Pid) : '-', r.IP || '-', r.Status, created(r.Created), r.Ports])]));
    })
    .command('logs <container>', 'what the container wrote to stdout and stderr (each to ours)', (y) => y.positional('container', { type: 'string' }).option('follow', { alias: 'f', type: 'boolean', default: false }).option('tail', { type: 'number' }).option('timestamps', { alias: 't', type: 'boolean', default: false, describe: 'prefix each line with the time it was written' }).option('since', { type: 'string', describe: 'only lines since a time (2024-01-02T03:04:05Z), Unix seconds, or a duration ago (10m)' }), async (a) => {
      const { containerLogs } = await import('../containers/query.js');
      await containerLogs(ctxOf(a), String(a.container), { follow: !!a.follow, timestamps: !!a.timestamps, ...(a.tail !== undefined ? { tail: a.tail as number } : {}), ...(a.since !== undefined ? { since: String(a.since) } : {}) });
    })
    .command('inspect <containers..>', 'containers (or images) as JSON, in docker\'s shape', (y) => y.positional('containers', { type: 'string', array: true })
      .option('type', { type: 'string', choices: ['container', 'image', 'volume'], describe: 'what the names are (default: a container, else an image)' })
      .option('format', { alias: 'f', type: 'string', describe: 'a Go template, e.g. {{.State.Status}} or {{json .Config.Labels}}' }), async (a) => {
      const { inspectObjects } = await import('../docker/inspect.js');
      const { items, errors } = await inspectObjects(ctxOf(a), list(a.containers), a.type as 'container' | 'image' | 'volume' | undefined);
      if (a.format) {
        const { formatEach } = await import('./format.js');
        process.stdout.write(formatEach(String(a.format), items));
      } else out(JSON.stringify(items, null, 2));
      for (const e of errors) process.stderr.write(`lxr: ${e}\n`);
      if (errors.length) process.exitCode = 125;
    })
    .command('version', 'lxr\'s version, in docker\'s shape (Client, Server)', (y) => y.option('format', { alias: 'f', type: 'string' }), async (a) => {
      const { versionInfo } = await import('../docker/system.js');
      const v = versionInfo();
      if (a.format) {
        const { formatEach } = await import('./format.js');
        return void process.stdout.write(formatEach(String(a.format), [v]));
      }
      const s = v.Server as { Version: string; ApiVersion: string; Os: string; Arch: string; GoVersion: string };
      out(`Version:     ${s.Version}\nAPI version: ${s.ApiVersion}\nNode:        ${s.GoVersion}\nOS/Arch:     ${s.Os}/${s.Arch}`);
    })
    .command('info', 'containers, images and the host in docker\'s shape, and where the state lives, rootless or not, the rootfs driver and the default network', (y) => y.option('format', { alias: 'f', type: 'string' }), async (a) => {
      const { systemInfo } = await import('../docker/system.js');
      const { info } = await import('../rootless/index.js');
      const i = { ...systemInfo(ctxOf(a)), ...(await info(ctxOf(a))) };
      if (a.format) {
        const { formatEach } = await import('./format.js');
        return void process.stdout.write(formatEach(String(a.format), [i]));
      }
      out(JSON.stringify(i, null, 2));
    })
    .command('events', 'stream container events (create, start, die, destroy) until interrupted', (y) => y.option('format', { type: 'string', describe: 'json or a Go template' })
      .option('filter', { alias: 'f', type: 'string', array: true, describe: 'event=, container=, label=, type=container' }), async (a) => {
      const { watchEvents, parseEventFilters } = await import('../containers/events.js');
      const { compileFormat } = await import('./format.js');
      const f = parseEventFilters(list(a.filter));
      const fmt = a.format ? compileFormat(String(a.format)) : (e: { time: number; Action: string; id: string; Actor: { Attributes: Record<string, string> } }) =>
        `${new Date(e.time * 1000).toISOString()} container ${e.Action} ${e.id} (${Object.entries(e.Actor.Attributes).map(([k, v]) => `${k}=${v}`).join(', ')})`;
      // from this process's own start: a container started while node was loading is reported too
      const since = Math.floor(performance.timeOrigin);
      const stop = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
      process.stdout.on('error', () => stop.abort());
      await watchEvents(ctxOf(a), f, (e) => process.stdout.write(`${fmt(e as never)}\n`), { since, signal: stop.signal });
    })
    .command('volume', 'named volumes: create, ls, inspect, rm', (y) => y
      .command('create [name]', 'create a volume', (z) => z.positional('name', { type: 'string' }).option('label', { alias: 'l', type: 'string', array: true }), async (a) => {
        const { createVolume } = await import('../containers/volume-store.js');
        out((await createVolume(ctxOf(a), a.name as string | undefined, parseLabels(list(a.label)))).Name);
      })
      .command(['ls', 'list'], 'list volumes', (z) => z.option('quiet', { alias: 'q', type: 'boolean', default: false }).option('format', { type: 'string' }), async (a) => {
        const { listVolumes } = await import('../containers/volume-store.js');
        const vols = listVolumes(ctxOf(a));
        if (a.quiet) return vols.forEach((v) => out(v.Name));
        if (a.format) {
          const { formatEach } = await import('./format.js');
          return void process.stdout.write(formatEach(String(a.format), vols));
        }
        out(table([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => [v.Driver, v.Name])]));
      })
      .command('inspect <names..>', 'volumes as JSON', (z) => z.positional('names', { type: 'string', array: true }).option('format', { alias: 'f', type: 'string' }), async (a) => {
        const { inspectVolume } = await import('../containers/volume-store.js');
        const vols = list(a.names).map((n) => inspectVolume(ctxOf(a), n));
        if (a.format) {
          const { formatEach } = await import('./format.js');
          return void process.stdout.write(formatEach(String(a.format), vols));
        }
        out(JSON.stringify(vols, null, 2));
      })
      .command('rm <names..>', 'remove volumes no container uses', (z) => z.positional('names', { type: 'string', array: true }).option('force', { alias: 'f', type: 'boolean', default: false }), async (a) => {
        const { removeVolume } = await import('../containers/volume-store.js');
        for (const n of list(a.names)) {
          await removeVolume(ctxOf(a), n);
          out(n);
        }
      })
      .demandCommand(1, 'give a volume command: create, ls, inspect or rm'), () => {})
    .command('build', false, (y) => y.strict(false), async () => {
      const { NO_BUILD } = await import('../devcontainer/up.js');
      throw new LxrError(NO_BUILD);
    })
    .command('up [dir]', 'bring up the dev container of DIR (its .devcontainer/devcontainer.json) with the Dev Containers CLI', (y) => y.positional('dir', { type: 'string', default: '.' })
      .option('remove-existing-container', { type: 'boolean', default: false })
      .option('ide', { type: 'boolean', default: false, describe: 'also serve code-server at the workspace folder, as remoteUser' })
      .option('ide-port', { type: 'number', describe: 'host port for --ide (default 8443)' }), async (a) => {
      const { devcontainerUp } = await import('../devcontainer/up.js');
      process.exitCode = await devcontainerUp(ctxOf(a), String(a.dir), { removeExisting: !!a['remove-existing-container'], ide: !!a.ide, ...(a['ide-port'] !== undefined ? { idePort: Number(a['ide-port']) } : {}) });
    })
    .command('exec <container> [command..]', 'run a command in a running container', (y) => y.positional('container', { type: 'string' }).positional('command', { type: 'string', array: true }).option('tty', { alias: 't', type: 'boolean' }).option('interactive', { alias: 'i', type: 'boolean' }).option('env', { alias: 'e', type: 'string', array: true }).option('user', { alias: 'u', type: 'string' }).option('workdir', { alias: 'w', type: 'string' })
      .option('env-file', { type: 'string', array: true, describe: 'file of KEY=VALUE lines' }).option('detach', { alias: 'd', type: 'boolean', describe: 'run the command in the background' }), async (a) => {
      const { execCommand } = await import('../containers/exec.js');
      process.exitCode = await execCommand(ctxOf(a), String(a.container), {
        // KEY=VALUE goes in as given, whatever KEY holds, as docker passes it (the Dev Containers CLI
        // sends what a login shell printed); only a bare KEY is looked up here
        command: commandOf(a), tty: !!a.tty, interactive: !!a.interactive,
        env: [...parseEnv([], list(a['env-file'])), ...list(a.env).flatMap((e) => (e.indexOf('=') > 0 ? [e] : parseEnv([e])))], ...(a.detach ? { detach: true } : {}),
        ...(a.user ? { user: String(a.user) } : {}), ...(a.workdir ? { workdir: String(a.workdir) } : {}),
      });
    })
    .command('port <container> [port]', 'the container\'s published ports: CONTAINERPORT/PROTO -> HOSTIP:HOSTPORT', (y) => y.positional('container', { type: 'string' }).positional('port', { type: 'string' }), async (a) => {
      const [{ getRecord }, { portLines }] = await Promise.all([import('../containers/store.js'), import('../containers/run-flags.js')]);
      const lines = portLines(getRecord(ctxOf(a), String(a.container)).settings.ports, a.port === undefined ? undefined : String(a.port));
      if (a.port !== undefined && !lines.length) throw new LxrError(`no public port '${String(a.port)}' published for ${String(a.container)}`);
      lines.forEach((l) => out(l));
    })
    .command('pull <image>', 'pull an image into the store', (y) => y.positional('image', { type: 'string' }).option('quiet', { alias: 'q', type: 'boolean', default: false }), async (a) => {
      const { pull } = await import('../images/index.js');
      const r = await pull(ctxOf(a), String(a.image));
      out(a.quiet ? r.manifestDigest : `${r.reference} ${r.manifestDigest}`);
    })
    .command('images', 'list images', (y) => y.option('format', { type: 'string' }), async (a) => {
      const { images } = await import('../images/index.js');
      const rows = await images(ctxOf(a));
      if (a.format === 'json') return out(JSON.stringify(rows, null, 2));
      out(table([['REFERENCE', 'DIGEST', 'SIZE', 'PLATFORMS'], ...rows.map((r) => [r.reference, r.digest.slice(7, 19), humanSize(r.size), r.platforms.join(',')])]));
    })
    .command('rmi <images..>', 'remove images, then their unused blobs and snapshots', (y) => y.positional('images', { type: 'string', array: true }).option('force', { alias: 'f', type: 'boolean', default: false }), async (a) => {
      const { rmi } = await import('../images/index.js');
      for (const i of list(a.images)) out(`Untagged: ${(await rmi(ctxOf(a), i, !!a.force)).reference}`);
    })
    .command('save <images..>', 'write images to an oci-archive, an OCI layout directory (oci-dir) or a docker-archive', (y) => y.positional('images', { type: 'string', array: true }).option('output', { alias: 'o', type: 'string', demandOption: true }).option('format', { type: 'string', default: 'oci-archive', choices: ['oci-archive', 'oci-dir', 'docker-archive'] }), async (a) => {
      const { saveImages } = await import('../../image-tool/index.js');
      const r = await saveImages({ store: ctxOf(a).imageStore, references: list(a.images), output: String(a.output), format: a.format as 'oci-archive' });
      for (const i of r.images) out(`Saved ${i.reference} ${i.digest}`);
    })
    .command('load', 'load images from an oci-archive, an OCI layout directory or a docker-archive', (y) => y.option('input', { alias: 'i', type: 'string', demandOption: true }).option('tag', { type: 'string' }), async (a) => {
      const { loadImages } = await import('../../image-tool/index.js');
      const r = await loadImages({ store: ctxOf(a).imageStore, input: String(a.input), ...(a.tag ? { tag: String(a.tag) } : {}) });
      for (const i of r.images) out(`Loaded ${i.reference} ${i.digest}`);
    })
    .command('import <tarball> <reference>', 'make a one-layer image of a rootfs tarball', (y) => y.positional('tarball', { type: 'string' }).positional('reference', { type: 'string' }), async (a) => {
      const { importRootfs } = await import('../../image-tool/index.js');
      const r = await importRootfs({ store: ctxOf(a).imageStore, input: String(a.tarball), reference: String(a.reference) });
      out(`Imported ${r.reference} ${r.digest}`);
    })
    .command('gc', 'remove blobs and layer snapshots that no image or container uses, and the network state of containers that are gone', () => {}, async (a) => {
      const { systemGc } = await import('../images/index.js');
      const r = await systemGc(ctxOf(a));
      const n = r.networks;
      out(`removed ${r.images.removed.length} blobs (${humanSize(r.images.freedBytes)}), ${r.snapshots.length} snapshots and the network state of ${n.removed.length} containers`);
      for (const e of n.errors) process.stderr.write(`lxr: gc: ${e}\n`);
      if (n.errors.length) process.exitCode = 1;
    })
    .command('system', 'check and repair lxr\'s state (system check [--repair])', (y) => y
      .command('check', 'find what no container owns and records without containers, one line each; --repair removes what no container owns', (y2) => y2.option('repair', { type: 'boolean', default: false }), async (a) => {
        const { systemCheck } = await import('../containers/check.js');
        const found = await systemCheck(ctxOf(a), { repair: !!a.repair });
        for (const f of found) out(`${f.kind}: ${f.text}${f.repaired ? ' (removed)' : f.error ? ` (repair failed: ${f.error})` : ''}`);
        if (!found.length) out('no problems found');
        if (found.some((f) => !f.repaired)) process.exitCode = 1;
      })
      .demandCommand(1, 'give a system command (check)'), () => {})
    .command('unshare [command..]', 'run a command (default $SHELL) as root of your user namespace, where your /etc/subuid ids are mapped (as podman unshare)', () => {}, () => {})
    .middleware(async (a) => {
      // containers with --restart that a host restart stopped run again when lxr next runs
      trace('cli: parsed');
      learnCommand(a._[0]);
      if (['rm', 'stop', 'system'].includes(String(a._[0])) || process.env.LXR_NO_RESTART_POLICIES) return;
      const { applyRestartPolicies } = await import('../containers/restart-policies.js');
      await applyRestartPolicies(ctxOf(a), (m) => process.stderr.write(`lxr: ${m}\n`));
      trace('cli: restart policies checked');
    })
    .demandCommand(1, 'give a command (lxr --help lists them)')
    .strict()
    .fail((msg, err) => {
      // thrown, not process.exit: main's finally must still release an early monitor
      throw err ?? new LxrError(msg);
    })
    .help()
    .version(false);
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  // what lxr-monitor (native/monitor.c) runs for a background container: no argument parser
  if (argv[0] === '__launch' && (argv.length === 2 || (argv.length === 3 && argv[2] === 'restart'))) {
    learnCommand('__launch');
    const { launchMain } = await import('../containers/launch.js');
    process.exitCode = await launchMain(lxrContext(), argv[1]!, argv.length === 3);
    return;
  }
  if (argv[0] === '__cleanup' && argv.length === 3 && /^\d+$/.test(argv[2]!)) {
    learnCommand('__cleanup');
    const { cleanupMain } = await import('../containers/launch.js');
    process.exitCode = await cleanupMain(lxrContext(), argv[1]!, Number(argv[2]));
    return;
  }
  if (argv[0] === '__health' && argv.length === 3) {
    // the health checks of a container (containers/health.ts), started detached at each start
    const { healthMain } = await import('../containers/health.js');
    process.exitCode = await healthMain(lxrContext(), argv[1]!, argv[2]!);
    return;
  }
  // rootless: the layer unpacker, run by lxr itself inside the user's namespace
  if (argv[0] === '__unpack' && argv.length === 4) {
    const { unpackMain } = await import('../rootless/index.js');
    process.exitCode = await unpackMain(argv[1]!, argv[2]!, argv[3]!, process.env.LXR_IDMAP_HINT);
    return;
  }
  // `lxr unshare CMD...`: everything after it is the command (podman unshare)
  if (argv[0] === 'unshare' && !['--help', '-h'].includes(argv[1] ?? '')) {
    try {
      const { unshare } = await import('../rootless/index.js');
      process.exitCode = await unshare(lxrContext(), argv.slice(argv[1] === '--' ? 2 : 1));
    } catch (e) {
      process.stderr.write(`lxr: ${errorMessage(e)}\n`);
      process.exitCode = 125;
    }
    return;
  }
  if (argv.length === 1 && (argv[0] === '-v' || argv[0] === '--version')) {
    // what tools run to tell docker from podman (neither word is in it)
    const { lxrVersion } = await import('../docker/system.js');
    return out(`lxr version ${lxrVersion()}`);
  }
  let cli: Argv;
  let args: string[];
  try {
    // an unknown flag is refused before anything starts (flags.ts)
    cli = buildCli();
    const { checkFlags, splitCommand } = await import('./flags.js');
    args = splitCommand(cli, argv);
    checkFlags(cli, args);
  } catch (e) {
    process.stderr.write(`lxr: ${errorMessage(e)}\n`);
    process.exitCode = 125;
    return;
  }
  if (startsBackgroundContainer(args)) {
    const { startMonitorEarly } = await import('../containers/create.js');
    early = startMonitorEarly(lxrContext());
  }
  try {
    await skipHelpCache(cli).parseAsync(args);
  } catch (e) {
    process.stderr.write(`lxr: ${errorMessage(e)}\n`);
    process.exitCode = e instanceof LxrError ? (e.exitCode === 1 ? 125 : e.exitCode) : 125;
    if (process.env.LXR_DEBUG) console.error(e);
  } finally {
    await early?.dispose();
  }
}

/**
 * `lxr create` and `lxr run -d` start the container's monitor before the arguments are
 * parsed, so that its start-up overlaps all of this command's work (see startMonitorEarly).
 * Only with the default state paths: --root, --run-root and --store are known after parsing.
 */
let early: EarlyMonitor | undefined;

export function startsBackgroundContainer(args: string[]): boolean {
  const cmd = args.findIndex((a) => !a.startsWith('-'));
  if (cmd !== 0 || !['create', 'run'].includes(args[0]!)) return false;
  const end = args.indexOf('--');
  const opts = args.slice(1, end < 0 ? undefined : end);
  if (opts.some((a) => /^--(root|run-root|store|help)(=|$)/.test(a) || a === '-h')) return false;
  return args[0] === 'create' || opts.some((a) => a === '--detach' || a === '--detach=true' || /^-[a-zA-Z]*d[a-zA-Z]*$/.test(a));
}

/** The early monitor, for a create whose state paths are the default ones. */
const earlyFor = (a: Globals): { early?: EarlyMonitor } => (early && !a.root && !a['run-root'] && !a.store ? { early } : {});

main().catch((e: unknown) => {
  process.stderr.write(`lxr: ${errorMessage(e)}\n`);
  process.exitCode = 125;
});
