// The "data" object of `runc events --stats` (runc 1.1's types/events.go), so tools that
// parse runc's output parse lxr's. Go's omitempty is honoured by omitEmpty() below:
// optional members here are the ones runc omits when zero/empty.

export interface CpuUsage {
  total?: number; percpu?: number[]; percpu_kernel?: number[]; percpu_user?: number[];
  kernel: number; user: number;
}
export interface Throttling { periods?: number; throttledPeriods?: number; throttledTime?: number }
export interface CpuStats { usage: CpuUsage; throttling: Throttling }
export interface CpuSetStats {
  cpus?: number[]; cpu_exclusive: number; mems?: number[]; mem_hardwall: number; mem_exclusive: number;
  memory_migrate: number; memory_spread_page: number; memory_spread_slab: number; memory_pressure: number;
  sched_load_balance: number; sched_relax_domain_level: number;
}
export interface MemoryEntry { limit: number; usage?: number; max?: number; failcnt: number }
export interface MemoryStats {
  cache?: number; usage: MemoryEntry; swap: MemoryEntry; kernel: MemoryEntry; kernelTCP: MemoryEntry;
  raw?: Record<string, number>;
}
export interface PidsStats { current?: number; limit?: number }
export interface BlkioEntry { major?: number; minor?: number; op?: string; value?: number }
export interface BlkioStats {
  ioServiceBytesRecursive?: BlkioEntry[]; ioServicedRecursive?: BlkioEntry[]; ioQueueRecursive?: BlkioEntry[];
  ioServiceTimeRecursive?: BlkioEntry[]; ioWaitTimeRecursive?: BlkioEntry[]; ioMergedRecursive?: BlkioEntry[];
  ioTimeRecursive?: BlkioEntry[]; sectorsRecursive?: BlkioEntry[];
}
export interface HugetlbStats { usage?: number; max?: number; failcnt: number }

export interface Stats {
  cpu: CpuStats;
  cpuset: CpuSetStats;
  memory: MemoryStats;
  pids: PidsStats;
  blkio: BlkioStats;
  hugetlb: Record<string, HugetlbStats>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

export function emptyStats(): Stats {
  const entry = (): MemoryEntry => ({ limit: 0, failcnt: 0 });
  return {
    cpu: { usage: { kernel: 0, user: 0 }, throttling: {} },
    cpuset: {
      cpu_exclusive: 0, mem_hardwall: 0, mem_exclusive: 0, memory_migrate: 0, memory_spread_page: 0,
      memory_spread_slab: 0, memory_pressure: 0, sched_load_balance: 0, sched_relax_domain_level: 0,
    },
    memory: { usage: entry(), swap: entry(), kernel: entry(), kernelTCP: entry() },
    pids: {},
    blkio: {},
    hugetlb: {},
    intel_rdt: {},
    network_interfaces: null,
  };
}

/** Drop the optional members that are 0 or empty, as Go's omitempty does. */
export function setIfNonZero<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value === undefined || value === 0 || (Array.isArray(value) && value.length === 0)) return;
  if (typeof value === 'object' && !Array.isArray(value) && value !== null && Object.keys(value).length === 0) return;
  obj[key] = value;
}

/** "0-2,5" -> [0,1,2,5] (cpuset list format). */
export function parseCpuList(s: string | undefined): number[] {
  const out: number[] = [];
  if (!s) return out;
  for (const part of s.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}
