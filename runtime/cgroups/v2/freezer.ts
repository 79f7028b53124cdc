// cgroup v2 freezer: write cgroup.freeze, then wait for "frozen 1" in cgroup.events
// (admin-guide/cgroup-v2.rst "Core Interface Files").
import { CgroupError } from '../errors.js';
import { readKeyValues, writeCgroupFile } from '../fs.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function setFrozenV2(dir: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  writeCgroupFile(dir, 'cgroup.freeze', frozen ? '1' : '0', frozen ? 'pause' : 'resume');
  const want = frozen ? 1 : 0;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const state = readKeyValues(dir, 'cgroup.events').frozen;
    // Kernels before 5.2 have no cgroup.events "frozen": nothing to wait for.
    if (state === undefined || state === want) return;
    if (Date.now() > deadline) throw new CgroupError(`${frozen ? 'pause' : 'resume'}: ${dir}/cgroup.events still says frozen ${state} after ${timeoutMs} ms`);
    await sleep(Math.min(1 + i, 10));
  }
}
