// freezer controller (cgroup-v1/freezer-subsystem.rst).
import { CgroupError } from '../errors.js';
import { readOptional, writeCgroupFile } from '../fs.js';
import type { V1Controller } from './controller.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Write FROZEN and wait until the state reads FROZEN (FREEZING while tasks are still
 * being stopped). Like runc, re-issue the request now and then: a task that was forking
 * can leave the cgroup stuck in FREEZING.
 */
export async function setFrozen(dir: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  const want = frozen ? 'FROZEN' : 'THAWED';
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    if (i % 50 === 0) writeCgroupFile(dir, 'freezer.state', want, frozen ? 'pause' : 'resume');
    const state = readOptional(dir, 'freezer.state');
    if (state === want) return;
    if (Date.now() > deadline) {
      throw new CgroupError(`${frozen ? 'pause' : 'resume'}: ${dir}/freezer.state is still ${state} after ${timeoutMs} ms`);
    }
    await sleep(Math.min(1 + i, 10));
  }
}

export const freezer: V1Controller = { name: 'freezer', needed: () => undefined };
