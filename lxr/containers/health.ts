// Health checks (docker's HEALTHCHECK, --health-*): run by lxr's own process, `lxr __health
// ID`, started detached next to the container each time it starts. It needs no systemd (podman's
// checks need its timers) and keeps running after the lxr command that made the container has
// exited. Each check is an exec in the container with a timeout; the state, in docker's shape
// (Status, FailingStreak, Log of the last 5 results), is <container dir>/health.json, written
// atomically. The runner ends when the container stops or starts again (a new runner takes over).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LxrError, errorMessage } from '../../common/errors.js';
import type { Spec } from '../../oci-spec/types.js';
import { contextEnv, type LxrContext } from '../core/context.js';
import type { HealthConfig, HealthFlags, HealthLog, HealthState, ImageHealthcheck } from '../core/types.js';
import { containerDir, readRecordById } from './store.js';
import { liveState } from './status.js';
import { writeFileAtomic } from '../../common/atomic.js';

const DEFAULTS = { intervalMs: 30000, timeoutMs: 30000, startPeriodMs: 0, retries: 3 };

const bad = (flag: string, value: string, why: string) => new LxrError(`invalid argument "${value}" for "${flag}" flag: ${why}`, { exitCode: 125 });

/** A Go duration as docker takes it: 30s, 1m30s, 500ms, 1h, 2.5s. In milliseconds. */
export function parseDuration(flag: string, s: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  if (s === '0') return 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  if (!s || pos !== s.length) throw bad(flag, s, `time: invalid duration "${s}" (use e.g. 30s, 1m30s, 500ms)`);
  return total;
}

/** The health flags of parsed arguments, or undefined when none is given. */
export function parseHealthFlags(a: Record<string, unknown>): HealthFlags | undefined {
  const o: HealthFlags = {};
  if (a['health-cmd'] !== undefined) o.cmd = String(a['health-cmd']);
  // 0 would check without a pause, or (in docker) mean "the default": refused, as podman does
  const positive = (flag: string) => {
    const v = String(a[flag]);
    const ms = parseDuration(`--${flag}`, v);
    if (ms < 1) throw bad(`--${flag}`, v, `${flag.slice(7)} must be at least 1ms`);
    return ms;
  };
  if (a['health-interval'] !== undefined) o.intervalMs = positive('health-interval');
  if (a['health-timeout'] !== undefined) o.timeoutMs = positive('health-timeout');
  if (a['health-start-period'] !== undefined) o.startPeriodMs = parseDuration('--health-start-period', String(a['health-start-period']));
  if (a['health-retries'] !== undefined) {
    const v = String(a['health-retries']);
    if (!/^\d+$/.test(v) || Number(v) < 1) throw bad('--health-retries', v, 'must be a positive integer');
    o.retries = Number(v);
  }
  if (a['no-healthcheck']) {
    if (Object.keys(o).length) throw new LxrError('--no-healthcheck conflicts with --health-* options', { exitCode: 125 });
    o.none = true;
  }
  return Object.keys(o).length ? o : undefined;
}

/** The image's HEALTHCHECK with the flags on top (docker's merge); undefined: no check. */
export function healthConfig(image: ImageHealthcheck | undefined, f: ReturnType<typeof parseHealthFlags>): HealthConfig | undefined {
  if (f?.none) return undefined;
  const test = f?.cmd !== undefined ? ['CMD-SHELL', f.cmd] : image?.Test;
  if (!test?.length || test[0] === 'NONE') return undefined;
  const ns = (v: number | undefined) => (v ? v / 1e6 : undefined);
  return {
    test,
    intervalMs: f?.intervalMs ?? ns(image?.Interval) ?? DEFAULTS.intervalMs,
    timeoutMs: f?.timeoutMs ?? ns(image?.Timeout) ?? DEFAULTS.timeoutMs,
    startPeriodMs: f?.startPeriodMs ?? ns(image?.StartPeriod) ?? DEFAULTS.startPeriodMs,
    retries: f?.retries ?? image?.Retries ?? DEFAULTS.retries,
  };
}

const healthFile = (ctx: LxrContext, id: string) => join(containerDir(ctx, id), 'health.json');

/** The container's health, or undefined (no check, or none recorded yet). */
export function readHealth(ctx: LxrContext, id: string): HealthState | undefined {
  try {
    return JSON.parse(readFileSync(healthFile(ctx, id), 'utf8')) as HealthState;
  } catch {
    return undefined;
  }
}

/** Start the runner for a container that just started (startedAt tells its run apart). */
export function startHealthRunner(ctx: LxrContext, id: string, startedAt: string, lxrBin: string): void {
  writeFileAtomic(healthFile(ctx, id), JSON.stringify({ Status: 'starting', FailingStreak: 0, Log: [] } satisfies HealthState), { mode: 0o600, durable: false });
  const c = spawn(process.execPath, [lxrBin, '__health', id, startedAt], { detached: true, stdio: 'ignore', env: { ...process.env, ...contextEnv(ctx) } });
  c.on('error', () => {});
  c.unref();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One check: the exec, killed after the timeout. */
async function runCheck(ctx: LxrContext, id: string, cfg: HealthConfig): Promise<HealthLog> {
  const start = new Date();
  const spec = JSON.parse(readFileSync(join(containerDir(ctx, id), 'bundle', 'config.json'), 'utf8')) as Spec;
  const args = cfg.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', cfg.test.slice(1).join(' ')] : cfg.test.slice(1);
  const dir = mkdtempSync(join(tmpdir(), 'lxr-health-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const nullFd = openSync('/dev/null', 'r');
  const pidFile = join(dir, 'pid');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      /* not started, or gone */
    }
  }, cfg.timeoutMs);
  let code: number;
  try {
    // the container's own process settings (user, env, cwd, capabilities), as docker's exec
    const { execInContainer } = await import('../../runtime/index.js');
    code = await execInContainer(ctx.runtimeRoot, id, { process: { ...spec.process!, args, terminal: false }, stdio: [nullFd, outFd, outFd], pidFile });
  } catch (e) {
    code = -1;
    writeFileAtomic(join(dir, 'out'), errorMessage(e), { mode: 0o600, durable: false });
  } finally {
    clearTimeout(timer);
    closeSync(outFd);
    closeSync(nullFd);
  }
  let output = '';
  try {
    output = readFileSync(join(dir, 'out'), 'utf8').slice(0, 4096);
  } catch {
    /* none */
  }
  rmSync(dir, { recursive: true, force: true });
  if (timedOut) {
    code = -1;
    output = `Health check exceeded timeout (${cfg.timeoutMs / 1000}s)`;
  }
  return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: code, Output: output };
}

/** `lxr __health ID STARTEDAT`: check until the container stops or starts again. */
export async function healthMain(ctx: LxrContext, id: string, startedAt: string): Promise<number> {
  const began = Date.now();
  const current = () => {
    const r = readRecordById(ctx, id);
    return !!r && r.startedAt === startedAt && liveState(ctx, r).status === 'running' ? r : undefined;
  };
  for (;;) {
    const r0 = current();
    const cfg = r0?.settings.flags?.healthcheck;
    if (!r0 || !cfg) return 0;
    await sleep(cfg.intervalMs);
    if (!current()) return 0;
    const log = await runCheck(ctx, id, cfg);
    if (!current()) return 0;
    const prev = readHealth(ctx, id) ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const ok = log.ExitCode === 0;
    const inStartPeriod = Date.now() - began < cfg.startPeriodMs;
    const next: HealthState = { Status: prev.Status, FailingStreak: prev.FailingStreak, Log: [...prev.Log, log].slice(-5) };
    if (ok) {
      next.Status = 'healthy';
      next.FailingStreak = 0;
    } else if (!(inStartPeriod && prev.Status === 'starting')) {
      // failures during the start period do not count (docker), until a first success
      next.FailingStreak++;
      if (next.FailingStreak >= cfg.retries) next.Status = 'unhealthy';
    }
    writeFileAtomic(healthFile(ctx, id), JSON.stringify(next), { mode: 0o600, durable: false });
  }
}
