// `update` (runc's): change a running container's resources, from flags or -r FILE.
import { readFileSync } from 'node:fs';
import { updateCgroup } from '../cgroups/manager/index.js';
import type { Resources } from '../../oci-spec/types.js';
import { recordCgroup, withDefaultDevices } from './cgroup-link.js';
import { liveStatus, readRecord, withLock, writeRecord } from './state.js';
import { LxrError } from '../../common/errors.js';
import { log } from '../../common/log.js';

export interface UpdateFlags {
  resources?: string;
  'blkio-weight'?: number;
  'cpu-period'?: number;
  'cpu-quota'?: number;
  'cpu-rt-period'?: number;
  'cpu-rt-runtime'?: number;
  'cpu-share'?: number;
  'cpuset-cpus'?: string;
  'cpuset-mems'?: string;
  'kernel-memory'?: string;
  'kernel-memory-tcp'?: string;
  memory?: string;
  'memory-reservation'?: string;
  'memory-swap'?: string;
  'pids-limit'?: number;
}

/** "512m", "1g", "-1" (unlimited) as runc's units.RAMInBytes reads them. */
export function parseBytes(v: string, flag: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new LxrError(`--${flag}: invalid size "${v}"`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase() as ''];
  return Math.round(Number(m[1]) * mult);
}

export function resourcesFromFlags(f: UpdateFlags): Resources {
  if (f.resources) {
    let text: string;
    try {
      text = f.resources === '-' ? readFileSync(0, 'utf8') : readFileSync(f.resources, 'utf8');
    } catch (e) {
      throw new LxrError(`--resources: cannot read "${f.resources}": ${(e as NodeJS.ErrnoException).code}`);
    }
    try {
      return JSON.parse(text) as Resources;
    } catch (e) {
      throw new LxrError(`--resources: "${f.resources}" is not valid JSON: ${(e as Error).message}`);
    }
  }
  const r: Resources = {};
  const cpu: NonNullable<Resources['cpu']> = {};
  const memory: NonNullable<Resources['memory']> = {};
  if (f['cpu-period'] !== undefined) cpu.period = f['cpu-period'];
  if (f['cpu-quota'] !== undefined) cpu.quota = f['cpu-quota'];
  if (f['cpu-rt-period'] !== undefined) cpu.realtimePeriod = f['cpu-rt-period'];
  if (f['cpu-rt-runtime'] !== undefined) cpu.realtimeRuntime = f['cpu-rt-runtime'];
  if (f['cpu-share'] !== undefined) cpu.shares = f['cpu-share'];
  if (f['cpuset-cpus'] !== undefined) cpu.cpus = f['cpuset-cpus'];
  if (f['cpuset-mems'] !== undefined) cpu.mems = f['cpuset-mems'];
  if (f.memory !== undefined) memory.limit = parseBytes(f.memory, 'memory');
  if (f['memory-reservation'] !== undefined) memory.reservation = parseBytes(f['memory-reservation'], 'memory-reservation');
  if (f['memory-swap'] !== undefined) memory.swap = parseBytes(f['memory-swap'], 'memory-swap');
  if (f['kernel-memory'] !== undefined) memory.kernel = parseBytes(f['kernel-memory'], 'kernel-memory');
  if (f['kernel-memory-tcp'] !== undefined) memory.kernelTCP = parseBytes(f['kernel-memory-tcp'], 'kernel-memory-tcp');
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (Object.keys(memory).length) r.memory = memory;
  if (f['blkio-weight'] !== undefined) r.blockIO = { weight: f['blkio-weight'] };
  // runc's update reads --pids-limit 0 as "not given" (-r resources.json keeps the spec's
  // meaning of 0, a limit of zero)
  if (f['pids-limit'] !== undefined && f['pids-limit'] !== 0) r.pids = { limit: f['pids-limit'] };
  return r;
}

/** Merge b into a, field by field (what update leaves out stays as it was). */
function merge<T extends object>(a: T | undefined, b: T): T {
  const out: Record<string, unknown> = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? merge(out[k] as object | undefined, v as object) : v;
  }
  return out as T;
}

export async function updateContainer(root: string, id: string, resources: Resources): Promise<void> {
  await withLock(root, id, async () => {
    const rec = readRecord(root, id);
    const status = liveStatus(root, rec);
    if (status === 'stopped') throw new LxrError(`cannot update container "${id}": it is stopped`);
    const paths = recordCgroup(rec);
    if (!paths) throw new LxrError(`container "${id}" has no cgroup to update`);
    // Device rules mean what they meant at create: the container's own devices and the
    // defaults (/dev/null, ptys, ...) come after them. containerd sends the full resources
    // on every UpdateContainerResources, with the config's rules (usually just "deny all"):
    // applied alone they would take every device away from the running container.
    const apply = resources.devices ? withDefaultDevices(resources, rec.config.linux?.devices) : resources;
    updateCgroup(paths, apply, { warn: (m) => log.warn(m) });
    rec.config.linux ??= {};
    rec.config.linux.resources = merge(rec.config.linux.resources, resources);
    writeRecord(root, rec);
  });
}
