#!/usr/bin/env node
// Runs a command in the lxr test VM (a cgroup v2 guest under QEMU/TCG) and
// relays its output and exit status:
//   node test/vm/run.mjs [--timeout MS] [--memory MIB] [--console] -- <command...>
// One argument after "--" is a shell command; several are an argv.

// vm.ts is TypeScript: load it with the same ts-node loader tap uses for tests.
process.env.TS_NODE_TRANSPILE_ONLY ??= '1';
await import('@tapjs/typescript/import');
const { runInVm, vmAvailable } = await import('./vm.ts');

function usage(msg) {
  if (msg) process.stderr.write(`lxr-vm: ${msg}\n`);
  process.stderr.write('usage: node test/vm/run.mjs [--timeout MS] [--memory MIB] [--cpus N] [--console] -- <command...>\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
const opts = { timeoutMs: 300_000 };
let showConsole = false;
while (argv.length && argv[0] !== '--') {
  const a = argv.shift();
  const num = (name) => {
    const v = Number(argv.shift());
    if (!Number.isInteger(v) || v <= 0) usage(`${a} needs a positive integer`);
    return v;
  };
  if (a === '--timeout') opts.timeoutMs = num();
  else if (a === '--memory') opts.memoryMiB = num();
  else if (a === '--cpus') opts.cpus = num();
  else if (a === '--console') showConsole = true;
  else if (a === '-h' || a === '--help') usage();
  else usage(`unknown option ${a}`);
}
argv.shift();
if (argv.length === 0) usage('no command given');

const avail = vmAvailable();
if (!avail.ok) {
  process.stderr.write(`lxr-vm: VM not available: ${avail.reason}\n`);
  process.exit(125);
}
try {
  const r = await runInVm({ ...opts, command: argv.length === 1 ? argv[0] : argv });
  if (showConsole) process.stderr.write(r.console);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.stderr.write(`lxr-vm: exit ${r.exitCode} after ${(r.elapsedMs / 1000).toFixed(1)} s\n`);
  process.exit(r.exitCode);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(125);
}
