// bench/cri: one pod's life through containerd's CRI, RunPodSandbox to RemovePodSandbox
// with one container, timed per CRI call, for the `runc` and `lxr` runtime handlers of
// one private containerd (test/engines/helpers/cri.ts: the CRI test's daemon, images and
// network). Handlers alternate, cycle by cycle, so that a change in the machine's load
// falls on both. Prints the median of every call per handler and the lxr/runc ratio.
//   bench/cri/run.sh [--runs N] [--warmup N] [--json FILE]     (as root; defaults 10 and 1)
import { writeFileSync } from 'node:fs';
import { HANDLERS, containerConfig, criMissing, importImages, podConfig, startCri, type Cri, type Handler, type Msg } from '../../test/engines/helpers/cri.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const RUNS = arg('runs', 10);
const WARMUP = arg('warmup', 1);
const jsonAt = process.argv.indexOf('--json');
const JSON_FILE = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;

const CALLS = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'ExecSync', 'UpdateContainerResources', 'StopContainer', 'RemoveContainer', 'StopPodSandbox', 'RemovePodSandbox'];

/** One pod cycle; returns ms per call and the total. */
async function cycle(c: Cri, h: Handler): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const timed = async (m: string, req: Msg): Promise<Msg> => {
    const t0 = performance.now();
    const r = await c.rt(m, req);
    out[m] = performance.now() - t0;
    return r;
  };
  const t0 = performance.now();
  const pod = podConfig(c, h, 'bench');
  const podId = (await timed('RunPodSandbox', { config: pod, runtime_handler: h })).pod_sandbox_id;
  // an init that ends on SIGTERM at once (sh's wait returns for a trapped signal)
  const config = containerConfig(pod, 'app', { command: ['sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait'] });
  const id = (await timed('CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: pod })).container_id;
  await timed('StartContainer', { container_id: id });
  const ex = await timed('ExecSync', { container_id: id, cmd: ['true'], timeout: 0 });
  if (ex.exit_code !== 0) throw new Error(`ExecSync true: exit code ${ex.exit_code}`);
  await timed('UpdateContainerResources', { container_id: id, linux: { memory_limit_in_bytes: 64 << 20, cpu_shares: 512 } });
  await timed('StopContainer', { container_id: id, timeout: 10 });
  await timed('RemoveContainer', { container_id: id });
  await timed('StopPodSandbox', { pod_sandbox_id: podId });
  await timed('RemovePodSandbox', { pod_sandbox_id: podId });
  out.total = performance.now() - t0;
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const missing = criMissing();
  if (missing) {
    console.error(`bench/cri: ${missing}`);
    process.exit(1);
  }
  const c = await startCri();
  const results: Record<Handler, Record<string, number>[]> = { runc: [], lxr: [] };
  try {
    importImages(c);
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (const h of HANDLERS) {
        const r = await cycle(c, h);
        if (i >= WARMUP) results[h].push(r);
      }
      process.stderr.write(`\rcycle ${i + 1}/${WARMUP + RUNS}`);
    }
    process.stderr.write('\n');
  } finally {
    await c.stop();
  }
  const rows = [...CALLS, 'total'].map((m) => {
    const [r, l] = HANDLERS.map((h) => median(results[h].map((x) => x[m]!)));
    return { call: m === 'total' ? 'pod cycle' : m, runc: r!, lxr: l!, ratio: l! / r! };
  });
  const w = Math.max(...rows.map((r) => r.call.length));
  console.log(`CRI pod cycle, ${RUNS} runs per handler (after ${WARMUP} warm-up), median ms`);
  console.log(`${'call'.padEnd(w)}  ${'runc'.padStart(8)}  ${'lxr'.padStart(8)}  lxr/runc`);
  for (const r of rows) console.log(`${r.call.padEnd(w)}  ${r.runc.toFixed(1).padStart(8)}  ${r.lxr.toFixed(1).padStart(8)}  ${r.ratio.toFixed(2)}x`);
  if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify({ runs: RUNS, warmup: WARMUP, rows, raw: results }, null, 1));
}

main().catch((e) => {
  console.error(`bench/cri: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
