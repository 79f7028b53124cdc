// `lxr up [DIR]`: the Dev Containers CLI (npm @devcontainers/cli) bringing up DIR's dev
// container with lxr as its docker (`devcontainer up --docker-path lxr`). The config is read
// first for what lxr cannot do, so that the user gets one clear line instead of a failed
// `lxr build` deep in the CLI's log: Dockerfile and Compose configs need an image builder.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { LxrError } from '../../common/errors.js';
import { contextEnv, type LxrContext } from '../core/context.js';
import { lxrBin, packageRoot } from '../../native/paths.js';

/** docker's message for `build`: what to do instead. */
export const NO_BUILD = 'lxr does not build images (a Dockerfile "build" in devcontainer.json, or docker compose): build the image with another tool, push it to a registry and name it in "image"';

/** DIR's devcontainer.json, as the Dev Containers CLI finds it. */
export function findConfig(dir: string): string {
  for (const p of [join(dir, '.devcontainer', 'devcontainer.json'), join(dir, '.devcontainer.json')]) if (existsSync(p)) return p;
  throw new LxrError(`${dir}: no .devcontainer/devcontainer.json or .devcontainer.json`);
}

/** JSON with comments and trailing commas (JSONC, as devcontainer.json is written). */
export function parseJsonc(text: string, where: string): unknown {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const skipped = text.slice(i, end < 0 ? text.length : end + 2);
      out += skipped.replace(/[^\n]/g, ' ');
      i = end < 0 ? text.length : end + 1;
    } else out += c;
  }
  out = out.replace(/,(\s*[}\]])/g, '$1');
  try {
    return JSON.parse(out);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? out.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new LxrError(`${where}${line ? ` line ${line}` : ''}: not valid JSON (${(e as Error).message})`);
  }
}

/** What lxr refuses in a devcontainer.json before anything runs. */
export function checkConfig(path: string): Record<string, unknown> {
  const cfg = parseJsonc(readFileSync(path, 'utf8'), path);
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new LxrError(`${path}: expected a JSON object`);
  const c = cfg as Record<string, unknown>;
  for (const k of ['build', 'dockerFile', 'dockerfile']) if (k in c) throw new LxrError(`${path}: "${k}": ${NO_BUILD}`);
  if ('dockerComposeFile' in c) throw new LxrError(`${path}: "dockerComposeFile": ${NO_BUILD}`);
  if (typeof c.image !== 'string' || !c.image) throw new LxrError(`${path}: "image" is required (the image the dev container runs)`);
  return c;
}

/** The Dev Containers CLI's entry script: from lxr's own node_modules, or `devcontainer` on PATH. */
export function devcontainerCli(): string {
  try {
    const req = createRequire(join(packageRoot(), 'package.json'));
    const pkg = req.resolve('@devcontainers/cli/package.json');
    return join(dirname(pkg), 'devcontainer.js');
  } catch {
    /* not installed with lxr */
  }
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(d, 'devcontainer');
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  throw new LxrError('lxr up needs the Dev Containers CLI: npm install -g @devcontainers/cli');
}

export interface UpOptions {
  removeExisting?: boolean;
  /** code-server in the dev container, at its workspace folder, as its user */
  ide?: boolean;
  idePort?: number;
}

/** Run `devcontainer up` with lxr as its docker; returns its exit status. */
export async function devcontainerUp(ctx: LxrContext, dir: string, o: UpOptions = {}): Promise<number> {
  const ws = resolve(dir);
  checkConfig(findConfig(ws));
  const cli = devcontainerCli();
  const args = [
    'up', '--workspace-folder', ws, '--docker-path', lxrBin(),
    // updating the remote user's UID needs an image build, which lxr does not do
    '--update-remote-user-uid-default', 'never',
    ...(o.removeExisting ? ['--remove-existing-container'] : []),
  ];
  const cmd = cli.endsWith('.js') ? process.execPath : cli;
  // the container's `lxr run` (main.ts) reads these: it is the one that gets --ide
  const ideEnv = o.ide ? { LXR_UP_IDE: '1', ...(o.idePort ? { LXR_UP_IDE_PORT: String(o.idePort) } : {}) } : {};
  const child = spawn(cmd, cli.endsWith('.js') ? [cli, ...args] : args, {
    stdio: ['inherit', 'pipe', 'inherit'],
    env: { ...process.env, ...contextEnv(ctx), ...ideEnv },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    process.stdout.write(d);
  });
  const code = await new Promise<number>((res, rej) => {
    child.on('error', (e) => rej(new LxrError(`running ${cli}: ${e.message}`)));
    child.on('close', (c, sig) => res(c ?? (sig ? 128 : 1)));
  });
  if (code === 0 && o.ide) {
    let result: { containerId?: string } = {};
    try {
      result = JSON.parse(out.trim().split('\n').pop() ?? '{}');
    } catch {
      /* no result line */
    }
    const { getRecord } = await import('../containers/store.js');
    const rec = result.containerId ? getRecord(ctx, result.containerId) : undefined;
    if (rec?.settings.ide) {
      const { ideLoginMessage, ideUrl } = await import('../ide/index.js');
      process.stderr.write(`${ideLoginMessage(ideUrl(rec.settings.idePort!, rec.settings.ideBind && rec.settings.ideBind !== '0.0.0.0' ? rec.settings.ideBind : '127.0.0.1'), rec.settings.idePassword!)}\n`);
    } else if (rec) {
      process.stderr.write(`lxr: the dev container ${rec.name} already existed without --ide: run lxr up --ide --remove-existing-container\n`);
    }
  }
  return code;
}
