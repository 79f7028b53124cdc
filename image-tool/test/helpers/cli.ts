// Run the bundled lxr-image CLI (dist/lxr-image.js) as a user would. Builds the bundle
// first when it is missing or older than the sources.
// Stable API: lxrImageBin(), runCli(args, opts) -> { code, stdout, stderr }, spawnCli(args, opts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'lxr-image.js');

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'test' || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

let checked = false;
export function lxrImageBin(): string {
  if (!checked) {
    checked = true;
    if (!existsSync(bin) || statSync(bin).mtimeMs < newestSource(join(root, 'image-tool'))) {
      const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'bundle'], { cwd: root, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`building dist/lxr-image.js failed: ${r.stderr}`);
    }
  }
  return bin;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
}

export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [lxrImageBin(), ...args], { env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Run lxr-image to completion without blocking the event loop (tests' proxies keep serving). */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawnCli(args, opts);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin!.end(opts.input ?? '');
  });
}
