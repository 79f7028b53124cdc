// Test helpers: real busybox bundles in temp dirs, and the built lxr-runtime CLI.
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSpec } from '../../../oci-spec/default.js';
import type { Spec } from '../../../oci-spec/types.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const RUNTIME = join(REPO, 'bin', 'lxr-runtime.js');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

export const haveBusybox = !!BUSYBOX;

const APPLETS = ['sh', 'ls', 'cat', 'echo', 'hostname', 'id', 'true', 'false', 'sleep', 'ps', 'mount', 'stat', 'touch', 'mkdir', 'grep', 'readlink', 'test', 'env', 'pwd', 'umask', 'wc', 'head', 'kill', 'nproc'];

/** A bundle with a busybox rootfs and the default spec, adjusted by `edit`. */
export function makeBundle(edit?: (s: Spec) => void, opts: { terminal?: boolean } = {}): { dir: string; rootfs: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-bundle-'));
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX!, join(rootfs, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const spec = defaultSpec({ args: ['true'] });
  spec.process!.terminal = opts.terminal ?? false;
  spec.root!.readonly = false;
  edit?.(spec);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return { dir, rootfs, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function makeRoot(): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'lxr-root-'));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * Run the built CLI. Its stdout and stderr go to files, not pipes: a created or detached
 * container inherits them and would keep a pipe open long after the CLI has exited.
 */
export function runtime(root: string, args: string[], opts: { input?: string; timeout?: number; extraFds?: number[] } = {}): { status: number | null; stdout: string; stderr: string; signal: NodeJS.Signals | null } {
  const dir = mkdtempSync(join(tmpdir(), 'lxr-cli-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  try {
    const r = spawnSync(process.execPath, [RUNTIME, '--root', root, ...args], {
      input: opts.input ?? '',
      stdio: ['pipe', outFd, errFd, ...(opts.extraFds ?? [])],
      timeout: opts.timeout ?? 30000,
      env: cleanEnv(),
    });
    return { status: r.status, signal: r.signal, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The environment for the CLIs under test: without tap's NODE_OPTIONS loaders. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('_TAPJS')) delete env[k];
  return env;
}

let counter = 0;
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

/** Poll `state` until the container reaches `status` (or ~4 s pass); returns the last status. */
export async function waitForStatus(root: string, id: string, status: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 200; i++) {
    const st = runtime(root, ['state', id]);
    last = st.status === 0 ? JSON.parse(st.stdout).status : '';
    if (last === status) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return last;
}

/** The `key=value` lines a container printed, as an object (later keys win). */
export function keyValues(out: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) o[l.slice(0, i)] = l.slice(i + 1);
  }
  return o;
}
