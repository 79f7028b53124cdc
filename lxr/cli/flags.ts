// Unknown flags, as docker reports them: `lxr: unknown flag: --no-such-flag` (exit 125),
// by the name as typed. The flags a command knows are read from its yargs builder, so a
// flag this check does not know is one the command does not have. The check runs before
// yargs parses, because yargs would read an unknown `--dns 1.1.1.1 IMAGE` as --dns=IMAGE
// (or swallow the image) and then complain about a missing argument instead.
import yargs, { type Argv } from 'yargs';
import { LxrError } from '../../common/errors.js';

export interface KnownFlags {
  /** flag name (without dashes) -> whether it takes a value */
  long: Map<string, boolean>;
  short: Map<string, boolean>;
}

interface CommandInternals {
  getCommandHandlers(): Record<string, { builder?: unknown }>;
  aliasMap?: Record<string, string>;
}

/** The flags of `command` (global ones included), or undefined if the command is unknown. */
export function knownFlags(cli: Argv, command: string | undefined): KnownFlags | undefined {
  const top = (cli as unknown as { getOptions(): YOptions }).getOptions();
  const known: KnownFlags = { long: new Map(), short: new Map() };
  const add = (o: YOptions) => {
    const bools = new Set(o.boolean ?? []);
    for (const k of Object.keys(o.key ?? {})) {
      for (const n of [k, ...(o.alias?.[k] ?? [])]) (n.length === 1 ? known.short : known.long).set(n, !bools.has(k));
    }
  };
  add(top);
  for (const n of ['help']) known.long.set(n, false);
  known.short.set('h', false);
  if (command === undefined) return known;
  const internal = (cli as unknown as { getInternalMethods?: () => { getCommandInstance?: () => CommandInternals } }).getInternalMethods?.();
  const cmds = internal?.getCommandInstance?.();
  if (!cmds) return undefined;
  const handlers = cmds.getCommandHandlers();
  const name = handlers[command] ? command : cmds.aliasMap?.[command];
  const h = name ? handlers[name] : undefined;
  if (!h) return undefined;
  const addBuilder = (builder: unknown, depth: number): void => {
    if (typeof builder !== 'function' || depth > 3) return;
    const y = yargs([]);
    (builder as (y: Argv) => unknown)(y);
    add((y as unknown as { getOptions(): YOptions }).getOptions());
    // a command with subcommands (`system check --repair`): their flags count too
    const sub = (y as unknown as { getInternalMethods?: () => { getCommandInstance?: () => CommandInternals } }).getInternalMethods?.().getCommandInstance?.();
    for (const sh of Object.values(sub?.getCommandHandlers() ?? {})) addBuilder(sh.builder, depth + 1);
  };
  addBuilder(h.builder, 0);
  return known;
}

interface YOptions {
  key?: Record<string, unknown>;
  alias?: Record<string, string[]>;
  boolean?: string[];
}

/** docker's words for a flag a command does not have. */
export function unknownFlag(token: string, shorthand?: string): LxrError {
  if (shorthand) return new LxrError(`unknown shorthand flag: '${shorthand}' in ${token}`, { exitCode: 125 });
  return new LxrError(`unknown flag: ${token.split('=')[0]}`, { exitCode: 125 });
}

/**
 * Check every flag of argv (the arguments after the program name) against what its
 * command knows; throws unknownFlag. For run, create and exec, the flags end at the first
 * positional argument (the image or container): what follows is the command's own.
 */
export function checkFlags(cli: Argv, argv: string[]): void {
  const globals = knownFlags(cli, undefined)!;
  let i = 0;
  // global flags before the command
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    i = checkOne(globals, argv, i);
  }
  const command = argv[i];
  if (command === undefined || command === '--') return;
  // `build` takes docker's build flags only to say that lxr does not build images
  if (command === 'build') return;
  const flags = knownFlags(cli, command);
  if (!flags) return; // yargs says the command is unknown
  const stopAtPositional = ['run', 'create', 'exec'].includes(command);
  for (i++; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return;
    if (!a.startsWith('-') || a === '-') {
      if (stopAtPositional) return;
      continue;
    }
    i = checkOne(flags, argv, i);
  }
}

/** Check the flag at argv[i]; returns the index of its last token (its value's, if separate). */
function checkOne(flags: KnownFlags, argv: string[], i: number): number {
  const a = argv[i]!;
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const takes = flags.long.get(name);
    if (takes === undefined) throw unknownFlag(a);
    return takes && eq < 0 ? i + 1 : i;
  }
  // -it, -p8080:80, -e K=V, -dit
  for (let j = 1; j < a.length; j++) {
    const c = a[j]!;
    if (c === '=') return i;
    const takes = flags.short.get(c);
    if (takes === undefined) throw unknownFlag(a, c);
    if (takes) return j + 1 < a.length ? i : i + 1;
  }
  return i;
}

/**
 * run, create and exec: everything after the image (or container) is the command, its own
 * flags included (`lxr run IMG sh -c 'x'`), so a "--" goes in after the positional. The
 * flags that take a value are known from the command's yargs builder, like the check above.
 */
export function splitCommand(cli: Argv, argv: string[]): string[] {
  const cmd = argv.findIndex((a) => !a.startsWith('-'));
  if (cmd < 0 || !['run', 'create', 'exec'].includes(argv[cmd]!)) return argv;
  const flags = knownFlags(cli, argv[cmd]);
  const takesValue = (a: string): boolean => (a.startsWith('--') ? flags?.long.get(a.slice(2)) : a.length === 2 ? flags?.short.get(a[1]!) : false) ?? false;
  for (let i = cmd + 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv;
    if (a.startsWith('-')) {
      if (!a.includes('=') && takesValue(a)) {
        // a value that looks like a flag is still the value (as docker's flag parser takes it):
        // `--memory -5m` is refused as a bad --memory, not read as flags -5 and -m
        if (argv[i + 1]?.startsWith('-') && argv[i + 1] !== '--') argv = [...argv.slice(0, i), `${a}=${argv[i + 1]}`, ...argv.slice(i + 2)];
        else i++;
      }
      continue;
    }
    return i + 1 < argv.length ? [...argv.slice(0, i + 1), '--', ...argv.slice(i + 1)] : argv;
  }
  return argv;
}
