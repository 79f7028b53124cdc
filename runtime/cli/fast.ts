// The commands containerd's shim calls most (`create`, `run`, `state`, `start`, `kill`,
// `delete`, `list`), without yargs: for those that only read or signal, parsing their few
// flags with yargs (loading it, laying out its commands, validating) cost more than the
// command itself, and ~10 ms of CPU for any. This parser takes only command lines it understands completely: the global flags,
// the command's own flags, and the exact number of arguments. Anything else (--help, an
// unknown or repeated flag, a missing or extra argument, a bad --log-format, a boolean
// flag followed by a value yargs would read as its value, an id yargs would read as a
// number) goes to the yargs parser in main.ts, which accepts or rejects it as before.
import { configureLog } from '../../common/log.js';
import { learnCommand } from '../../common/cli/code-cache.js';
import { defaultRoot } from '../container/state.js';

interface Parsed {
  command: string;
  /** the command as typed (`ls` for list): the name its code cache is found by */
  word: string;
  root: string;
  log?: string;
  logFormat: string;
  debug: boolean;
  flags: Set<string>;
  format?: string;
  /** the values of the command's own flags that take one */
  values: Record<string, string>;
  args: string[];
}

/** each command: its flags (long name -> aliases), the flags taking a value, its argument counts */
const CREATE_BOOL = { 'no-pivot': ['--no-pivot'], 'no-new-keyring': ['--no-new-keyring'] };
const CREATE_VALUE = { bundle: ['--bundle', '-b'], 'console-socket': ['--console-socket'], 'pid-file': ['--pid-file'], 'preserve-fds': ['--preserve-fds'] };
const COMMANDS: Record<string, { bool: Record<string, string[]>; value: Record<string, string[]>; min: number; max: number }> = {
  create: { bool: CREATE_BOOL, value: CREATE_VALUE, min: 1, max: 1 },
  run: { bool: { ...CREATE_BOOL, detach: ['--detach', '-d'], keep: ['--keep'] }, value: CREATE_VALUE, min: 1, max: 1 },
  state: { bool: {}, value: {}, min: 1, max: 1 },
  start: { bool: {}, value: {}, min: 1, max: 1 },
  kill: { bool: { all: ['--all', '-a'] }, value: {}, min: 1, max: 2 },
  delete: { bool: { force: ['--force', '-f'] }, value: {}, min: 1, max: 1 },
  list: { bool: { quiet: ['--quiet', '-q'] }, value: { format: ['--format', '-f'] }, min: 0, max: 0 },
};

const GLOBAL_BOOL = new Set(['--debug', '--systemd-cgroup']);
const GLOBAL_VALUE = new Set(['--root', '--log', '--log-format']);

/** The command line, or undefined for anything the yargs parser should see. */
export function parseFast(argv: string[]): Parsed | undefined {
  let command: string | undefined;
  let word = '';
  const args: string[] = [];
  const seen = new Set<string>();
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') {
      if (command === undefined) {
        word = a;
        command = a === 'ls' ? 'list' : a;
        if (!COMMANDS[command]) return undefined;
      } else args.push(a);
      continue;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const spec = command === undefined ? undefined : COMMANDS[command];
    const bool = GLOBAL_BOOL.has(name) ? name : spec && Object.keys(spec.bool).find((k) => spec.bool[k]!.includes(name));
    const value = GLOBAL_VALUE.has(name) ? name : spec && Object.keys(spec.value).find((k) => spec.value[k]!.includes(name));
    // a flag given twice becomes an array in yargs: leave that to it
    const key = bool ?? value;
    if (key === undefined || seen.has(key)) return undefined;
    seen.add(key);
    if (bool !== undefined) {
      // `--force=true`, `--force false`: yargs reads a value there
      if (eq > 0 || argv[i + 1] === 'true' || argv[i + 1] === 'false') return undefined;
      flags.add(bool);
    } else {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '' || (eq < 0 && v.startsWith('-'))) return undefined;
      values[value!] = v;
    }
  }
  if (command === undefined) return undefined;
  const spec = COMMANDS[command]!;
  if (args.length < spec.min || args.length > spec.max) return undefined;
  // yargs reads a word that looks like a number as one (`1e3` becomes 1000): let it
  if (args.some((x) => /^[-+.\d]/.test(x) && !/^(?:0|[1-9]\d{0,14})$/.test(x))) return undefined;
  const logFormat = values['--log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') return undefined;
  const format = values.format;
  if (format !== undefined && format !== 'table' && format !== 'json') return undefined;
  // a number for yargs: only plain digits here
  if (values['preserve-fds'] !== undefined && !/^(?:0|[1-9]\d{0,8})$/.test(values['preserve-fds'])) return undefined;
  return {
    command,
    word,
    root: values['--root'] ?? defaultRoot(),
    log: values['--log'],
    logFormat,
    debug: flags.has('--debug'),
    flags,
    format,
    values,
    args,
  };
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

/** Run the command if parseFast takes its command line: its exit code; undefined otherwise. */
export function fastCommand(argv: string[]): Promise<number> | undefined {
  const p = parseFast(argv);
  if (!p) return undefined;
  return runFast(p);
}

/** the options of create and run, as main.ts makes them from yargs' answer */
function createOpts(p: Parsed) {
  return {
    root: p.root,
    id: p.args[0]!,
    bundle: p.values.bundle ?? '.',
    consoleSocket: p.values['console-socket'],
    pidFile: p.values['pid-file'],
    noPivot: p.flags.has('no-pivot'),
    noNewKeyring: p.flags.has('no-new-keyring'),
    preserveFds: Number(p.values['preserve-fds'] ?? 0),
    systemdCgroup: p.flags.has('--systemd-cgroup'),
  };
}

async function runFast(p: Parsed): Promise<number> {
  learnCommand(p.word);
  configureLog({ file: p.log, format: p.logFormat, debug: p.debug });
  const id = p.args[0]!;
  switch (p.command) {
    case 'create': {
      const { createContainer } = await import('../container/create.js');
      const { child } = await createContainer(createOpts(p));
      child.detach();
      break;
    }
    case 'run': {
      const { runContainer } = await import('../container/run.js');
      return runContainer({ ...createOpts(p), detach: p.flags.has('detach'), keep: p.flags.has('keep') });
    }
    case 'state': {
      const { containerState } = await import('../container/query.js');
      out(JSON.stringify(containerState(p.root, id), null, 2));
      break;
    }
    case 'start': {
      const { startContainer } = await import('../container/start.js');
      await startContainer(p.root, id);
      break;
    }
    case 'kill': {
      const { killContainer } = await import('../container/kill.js');
      await killContainer(p.root, id, p.args[1] ?? 'SIGTERM', p.flags.has('all'));
      break;
    }
    case 'delete': {
      const { deleteContainer } = await import('../container/delete.js');
      await deleteContainer(p.root, id, p.flags.has('force'));
      break;
    }
    case 'list': {
      const { listContainers } = await import('../container/query.js');
      const { formatList } = await import('./list-format.js');
      // a torn state file: said on stderr, as runc's "load container ID: ..."; the rest are listed
      const { errorMessage } = await import('../../common/errors.js');
      const list = listContainers(p.root, (cid, e) => process.stderr.write(`load container ${cid}: ${errorMessage(e)}\n`));
      const quiet = p.flags.has('quiet');
      if (!(quiet && list.length === 0)) out(formatList(list, quiet, p.format ?? 'table'));
      break;
    }
  }
  return 0;
}
