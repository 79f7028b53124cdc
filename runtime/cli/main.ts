// lxr-runtime: an OCI runtime with runc's command line. Each command parses its
// arguments and calls the library; implementations are imported only when needed,
// because start-up time is most of what a runtime costs.
import { defaultRoot } from '../container/state.js';
import { configureLog, log } from '../../common/log.js';
import { errorMessage, LxrError } from '../../common/errors.js';
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { skipHelpCache } from '../../common/cli/yargs-help.js';
import { learnCommand } from '../../common/cli/code-cache.js';
import { fastCommand } from './fast.js';
import { formatList } from './list-format.js';

interface Global {
  root: string;
  log?: string;
  'log-format': string;
  debug: boolean;
  'systemd-cgroup': boolean;
}

/** The flags of create and run, as runc's. */
function createFlags<T>(y: Argv<T>) {
  return y
    .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'path to the bundle' })
    .option('console-socket', { type: 'string', describe: 'unix socket that receives the pty master' })
    .option('pid-file', { type: 'string' })
    .option('no-pivot', { type: 'boolean', default: false })
    .option('no-new-keyring', { type: 'boolean', default: false })
    .option('preserve-fds', { type: 'number', default: 0 });
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  let usageError: string | undefined;
  const run = (fn: (a: Global & Record<string, unknown>) => Promise<number | void>) => async (a: Global & Record<string, unknown>) => {
    if (usageError !== undefined) throw new LxrError(usageError);
    const r = await fn(a);
    if (typeof r === 'number') code = r;
  };
  // loaded only for the command lines fast.ts leaves to it
  const { default: yargs } = await import('yargs');
  const cli = yargs(argv)
    .scriptName('lxr-runtime')
    .usage('$0 [global options] <command> [options]\n\nAn OCI runtime (runtime-spec v1.3.0) with runc\'s command line.')
    .option('root', { type: 'string', default: defaultRoot(), describe: 'directory for container state (default /run/lxr-runtime, or $XDG_RUNTIME_DIR/lxr-runtime for a non-root user)', global: true })
    .option('log', { type: 'string', describe: 'log file (default: stderr)', global: true })
    .option('log-format', { type: 'string', choices: ['text', 'json'], default: 'text', global: true })
    .option('debug', { type: 'boolean', default: false, global: true })
    .option('systemd-cgroup', { type: 'boolean', default: false, describe: 'use systemd to manage cgroups', global: true })
    .option('criu', { type: 'string', hidden: true, global: true })
    .middleware((a) => learnCommand(a._[0]))
    .middleware((a) => configureLog({ file: a.log as string | undefined, format: a['log-format'] as string, debug: a.debug as boolean }))
    .command(
      'create <container-id>', 'create a container',
      (y) => createFlags(y),
      run(async (a) => {
        const { createContainer } = await import('../container/create.js');
        const { child } = await createContainer(createOpts(a));
        child.detach();
      }),
    )
    .command(
      'run <container-id>', 'create and start a container',
      (y) => createFlags(y)
        .option('detach', { alias: 'd', type: 'boolean', default: false })
        .option('keep', { type: 'boolean', default: false }),
      run(async (a) => {
        const { runContainer } = await import('../container/run.js');
        return runContainer({ ...createOpts(a), detach: a.detach as boolean, keep: a.keep as boolean });
      }),
    )
    .command('start <container-id>', 'start a created container', (y) => y, run(async (a) => {
      const { startContainer } = await import('../container/start.js');
      await startContainer(a.root, id(a));
    }))
    .command('state <container-id>', 'print the state of a container', (y) => y, run(async (a) => {
      const { containerState } = await import('../container/query.js');
      out(JSON.stringify(containerState(a.root, id(a)), null, 2));
    }))
    .command(
      'kill <container-id> [signal]', 'send a signal to the container init (default SIGTERM)',
      (y) => y.positional('signal', { type: 'string', default: 'SIGTERM' }).option('all', { alias: 'a', type: 'boolean', default: false }),
      run(async (a) => {
        const { killContainer } = await import('../container/kill.js');
        await killContainer(a.root, id(a), a.signal as string, a.all as boolean);
      }),
    )
    .command(
      'delete <container-id>', 'delete a container',
      (y) => y.option('force', { alias: 'f', type: 'boolean', default: false }),
      run(async (a) => {
        const { deleteContainer } = await import('../container/delete.js');
        await deleteContainer(a.root, id(a), a.force as boolean);
      }),
    )
    .command(
      ['list', 'ls'], 'list containers',
      (y) => y.option('format', { alias: 'f', choices: ['table', 'json'], default: 'table' }).option('quiet', { alias: 'q', type: 'boolean', default: false }),
      run(async (a) => {
        const { listContainers } = await import('../container/query.js');
        const list = listContainers(a.root, (cid, e) => process.stderr.write(`load container ${cid}: ${errorMessage(e)}\n`));
        if (!(a.quiet && list.length === 0)) out(formatList(list, a.quiet as boolean, a.format as string));
      }),
    )
    .command(
      'exec <container-id> [command..]', 'run a process in a running container',
      (y) => y
        .option('process', { alias: 'p', type: 'string', describe: 'a process.json (runtime-spec process) instead of command and flags' })
        .option('tty', { alias: 't', type: 'boolean', default: false })
        .option('console-socket', { type: 'string' })
        .option('detach', { alias: 'd', type: 'boolean', default: false })
        .option('pid-file', { type: 'string' })
        .option('cwd', { type: 'string' })
        .option('env', { alias: 'e', type: 'string' })
        .option('user', { alias: 'u', type: 'string', describe: 'uid[:gid]' })
        .option('additional-gids', { alias: 'g', type: 'number' })
        .option('cap', { alias: 'c', type: 'string' })
        .option('no-new-privs', { type: 'boolean', default: false })
        .option('preserve-fds', { type: 'number', default: 0 })
        .option('apparmor', { type: 'string', hidden: true })
        .option('process-label', { type: 'string', hidden: true })
        .option('ignore-paused', { type: 'boolean', hidden: true }),
      run(async (a) => {
        const ex = await import('../container/exec.js');
        const { readRecord } = await import('../container/state.js');
        let proc;
        if (a.process) {
          try {
            proc = JSON.parse(readFileSync(a.process as string, 'utf8'));
          } catch (e) {
            throw new LxrError(`--process: cannot read "${a.process}": ${(e as Error).message}`);
          }
        } else {
          const base = readRecord(a.root, id(a)).config.process!;
          proc = ex.processFromFlags(base, {
            args: [...((a.command as string[] | undefined) ?? []), ...((a['--'] as string[] | undefined) ?? [])].map(String),
            tty: a.tty as boolean,
            cwd: a.cwd as string | undefined,
            env: list<string>(a.env),
            user: a.user as string | undefined,
            additionalGids: list<number>(a['additional-gids']),
            caps: list<string>(a.cap),
            noNewPrivs: a['no-new-privs'] as boolean,
          });
        }
        return ex.execInContainer(a.root, id(a), {
          process: proc,
          consoleSocket: a['console-socket'] as string | undefined,
          detach: a.detach as boolean,
          pidFile: a['pid-file'] as string | undefined,
          preserveFds: a['preserve-fds'] as number,
        });
      }),
    )
    .command('pause <container-id>', 'freeze every process of a container', (y) => y, run(async (a) => {
      const { pauseContainer } = await import('../container/pause.js');
      await pauseContainer(a.root, id(a), true);
    }))
    .command('resume <container-id>', 'thaw a paused container', (y) => y, run(async (a) => {
      const { pauseContainer } = await import('../container/pause.js');
      await pauseContainer(a.root, id(a), false);
    }))
    .command(
      'ps <container-id> [ps-args..]', 'list the processes of a container',
      (y) => y.option('format', { alias: 'f', choices: ['table', 'json'], default: 'table' }),
      run(async (a) => {
        const { listProcesses, processTable } = await import('../container/ps.js');
        const pids = listProcesses(a.root, id(a));
        out(a.format === 'json' ? JSON.stringify(pids) : processTable(pids));
      }),
    )
    .command(
      'events <container-id>', 'print resource usage (and OOM events) as JSON',
      (y) => y.option('stats', { type: 'boolean', default: false, describe: 'print the stats once and exit' })
        .option('interval', { type: 'string', default: '5s', describe: 'time between stats' }),
      run(async (a) => {
        const ev = await import('../container/events.js');
        if (a.stats) return out(JSON.stringify(ev.statsEvent(a.root, id(a))));
        await ev.streamEvents(a.root, id(a), parseDuration(a.interval as string), out);
      }),
    )
    .command(
      'update <container-id>', 'change the resources of a running container',
      (y) => y
        .option('resources', { alias: 'r', type: 'string', describe: 'a JSON file of linux.resources ("-" for stdin)' })
        .option('blkio-weight', { type: 'number' })
        .option('cpu-period', { type: 'number' })
        .option('cpu-quota', { type: 'number' })
        .option('cpu-rt-period', { type: 'number' })
        .option('cpu-rt-runtime', { type: 'number' })
        .option('cpu-share', { type: 'number' })
        .option('cpuset-cpus', { type: 'string' })
        .option('cpuset-mems', { type: 'string' })
        .option('kernel-memory', { type: 'string' })
        .option('kernel-memory-tcp', { type: 'string' })
        .option('memory', { alias: 'm', type: 'string' })
        .option('memory-reservation', { type: 'string' })
        .option('memory-swap', { type: 'string' })
        .option('pids-limit', { type: 'number' }),
      run(async (a) => {
        const u = await import('../container/update.js');
        await u.updateContainer(a.root, id(a), u.resourcesFromFlags(a as never));
      }),
    )
    .command(
      'spec', 'write a default config.json',
      (y) => y.option('bundle', { alias: 'b', type: 'string', default: '.' }).option('rootless', { type: 'boolean', default: false }),
      run(async (a) => {
        const { writeDefaultSpec } = await import('./spec-command.js');
        writeDefaultSpec(a.bundle as string, a.rootless as unknown as boolean);
      }),
    )
    .command('features', 'print the features of this runtime as JSON', (y) => y, run(async () => {
      const { features } = await import('../container/features.js');
      out(JSON.stringify(features(), null, 2));
    }))
    .demandCommand(1, 'a command is required (see --help)')
    // runc's --no-* flags are flags of their own, never negations
    .parserConfiguration({ 'populate--': true, 'boolean-negation': false })
    // as runc: an unknown flag (or an extra argument) is an error, never ignored
    .strict()
    .recommendCommands()
    .version('0.1.0')
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      const unknown = unknownArguments(msg, argv);
      if (unknown) throw new LxrError(unknown);
      // Not thrown yet: for `start --bogus ID` yargs first reports the missing id (it read
      // --bogus=ID), then the unknown flag, which is the better message.
      usageError ??= msg;
    });
  await skipHelpCache(cli).parseAsync();
  if (usageError !== undefined) throw new LxrError(usageError);
  return code;
}

/**
 * yargs says `Unknown argument: config` for `--config`: name what was on the command line
 * (`unknown flag "--config"`), and tell flags from extra arguments.
 */
export function unknownArguments(msg: string | undefined, argv: string[]): string | undefined {
  const m = /^Unknown arguments?: (.*)$/.exec(msg ?? '');
  if (!m) return undefined;
  const names = m[1]!.split(', ');
  const shown = names.map((n) => {
    const flag = argv.find((a) => a === `--${n}` || a.startsWith(`--${n}=`) || a === `-${n}` || a.startsWith(`-${n}=`));
    if (flag) return `flag "${flag.split('=')[0]}"`;
    const short = argv.find((a) => /^-[^-]/.test(a) && a.slice(1).includes(n) && n.length === 1);
    if (short) return `flag "-${n}" (in "${short}")`;
    return n === firstWord(argv) ? `command "${n}"` : `argument "${n}"`;
  });
  return `unknown ${shown.join(', ')} (see --help)`;
}

/** The first word that is neither a flag nor a flag's value: the command. */
function firstWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) return a;
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return undefined;
}

/** A repeatable option: yargs gives one value, or an array when repeated. */
function list<T>(v: unknown): T[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]) as T[];
}

function id(a: Record<string, unknown>): string {
  return String(a['container-id'] ?? a.containerId);
}

function createOpts(a: Global & Record<string, unknown>) {
  return {
    root: a.root,
    id: id(a),
    bundle: a.bundle as string,
    consoleSocket: a['console-socket'] as string | undefined,
    pidFile: a['pid-file'] as string | undefined,
    noPivot: a['no-pivot'] as boolean,
    noNewKeyring: a['no-new-keyring'] as boolean,
    preserveFds: a['preserve-fds'] as number,
    systemdCgroup: a['systemd-cgroup'],
  };
}

/** Go-style durations as runc takes them: 5s, 500ms, 1m. */
function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new LxrError(`--interval: invalid duration "${v}"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[(m[2] ?? 's') as 'ms'];
}

// Options that take a value, so that the scan below can step over it.
const VALUE_OPTIONS = new Set([
  '--root', '--log', '--log-format', '--criu', '-p', '--process', '--console-socket', '--pid-file', '--cwd', '-e', '--env',
  '-u', '--user', '-g', '--additional-gids', '-c', '--cap', '--preserve-fds', '--apparmor', '--process-label',
  '-f', '--format',
]);

/**
 * runc stops reading flags after the container id of `exec` (and `ps`), so that
 * `exec ID sh -c 'x'` runs `sh -c x` instead of reading `-c` as --cap. Do the same by
 * putting `--` after the id.
 */
export function splitExecCommand(argv: string[]): string[] {
  let i = 0;
  let command: string | undefined;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv;
    if (a.startsWith('-')) {
      if (VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    if (!command) {
      command = a;
      // `ps ID -ef`: runc passes what follows the id to ps(1), it reads no flags there
      if (command !== 'exec' && command !== 'ps') return argv;
      continue;
    }
    // the container id
    if (argv[i + 1] === '--') return argv;
    return [...argv.slice(0, i + 1), '--', ...argv.slice(i + 1)];
  }
  return argv;
}

/**
 * yargs does not take a lone "-" as the value of a long option (`update --resources -`,
 * which is how containerd's shim passes resources on stdin): join such pairs with "=".
 */
export function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...out, ...argv.slice(i)];
    if (a.startsWith('--') && !a.includes('=') && argv[i + 1] === '-') {
      out.push(`${a}=-`);
      i++;
    } else out.push(a);
  }
  return out;
}

const args = joinDashValues(splitExecCommand(process.argv.slice(2)));
// state, start, kill, delete and list without yargs when fast.ts understands the command line
(fastCommand(args) ?? main(args)).then(
  (code) => process.exit(code),
  (e) => {
    const msg = errorMessage(e);
    log.error(msg);
    process.stderr.write(`lxr-runtime: ${msg}\n`);
    if (!(e instanceof LxrError) && process.env.LXR_DEBUG) console.error(e);
    process.exit(e instanceof LxrError ? e.exitCode : 1);
  },
);
