// Checks of linux.resources that need no kernel: done before anything is created, so a
// bad config fails with a message naming the field and leaves nothing behind.
import type { Resources } from '../../oci-spec/types.js';
import { CgroupError } from './errors.js';
import type { CgroupLayout } from './layout.js';

const F = 'linux.resources';

function int(field: string, v: unknown, min: number, what: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new CgroupError(`${F}.${field}: ${what}, got ${JSON.stringify(v)}`);
  }
}

/** -1 = unlimited, 0 = unset, else a byte count. */
function limit(field: string, v: unknown): void {
  int(field, v, -1, 'must be -1 (unlimited) or a number of bytes');
}

const CPU_LIST = /^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/;

export function validateResources(r: Resources | undefined, layout: CgroupLayout): void {
  if (!r) return;
  const m = r.memory;
  if (m) {
    limit('memory.limit', m.limit);
    limit('memory.reservation', m.reservation);
    limit('memory.swap', m.swap);
    limit('memory.kernel', m.kernel);
    limit('memory.kernelTCP', m.kernelTCP);
    int('memory.swappiness', m.swappiness, 0, 'must be between 0 and 100');
    if (m.swappiness !== undefined && m.swappiness > 100) {
      throw new CgroupError(`${F}.memory.swappiness: must be between 0 and 100, got ${m.swappiness}`);
    }
    if (m.limit !== undefined && m.limit > 0 && m.swap !== undefined && m.swap > 0 && m.swap < m.limit) {
      throw new CgroupError(`${F}.memory.swap: ${m.swap} is below memory.limit ${m.limit} (swap is the memory+swap limit)`);
    }
  }
  const c = r.cpu;
  if (c) {
    int('cpu.shares', c.shares, 0, 'must be a non-negative integer');
    int('cpu.quota', c.quota, -1, 'must be -1 (unlimited) or a number of microseconds');
    int('cpu.period', c.period, 0, 'must be a number of microseconds');
    int('cpu.burst', c.burst, 0, 'must be a number of microseconds');
    int('cpu.realtimeRuntime', c.realtimeRuntime, -1, 'must be a number of microseconds');
    int('cpu.realtimePeriod', c.realtimePeriod, 0, 'must be a number of microseconds');
    int('cpu.idle', c.idle, 0, 'must be 0 or 1');
    if (c.idle !== undefined && c.idle > 1) throw new CgroupError(`${F}.cpu.idle: must be 0 or 1, got ${c.idle}`);
    if (c.cpus && !CPU_LIST.test(c.cpus)) throw new CgroupError(`${F}.cpu.cpus: ${JSON.stringify(c.cpus)} is not a CPU list like "0-2,4"`);
    if (c.mems && !CPU_LIST.test(c.mems)) throw new CgroupError(`${F}.cpu.mems: ${JSON.stringify(c.mems)} is not a node list like "0-1"`);
  }
  if (r.pids) int('pids.limit', r.pids.limit, Number.MIN_SAFE_INTEGER, 'must be an integer (-1 for no limit)');
  const b = r.blockIO;
  if (b) {
    int('blockIO.weight', b.weight, 0, 'must be a non-negative integer');
    int('blockIO.leafWeight', b.leafWeight, 0, 'must be a non-negative integer');
    for (const [key, list] of [
      ['weightDevice', b.weightDevice], ['throttleReadBpsDevice', b.throttleReadBpsDevice],
      ['throttleWriteBpsDevice', b.throttleWriteBpsDevice], ['throttleReadIOPSDevice', b.throttleReadIOPSDevice],
      ['throttleWriteIOPSDevice', b.throttleWriteIOPSDevice],
    ] as const) {
      (list ?? []).forEach((d, i) => {
        int(`blockIO.${key}[${i}].major`, d.major, 0, 'must be a device major number');
        int(`blockIO.${key}[${i}].minor`, d.minor, 0, 'must be a device minor number');
        if ('rate' in d) int(`blockIO.${key}[${i}].rate`, d.rate, 0, 'must be a non-negative integer');
      });
    }
  }
  (r.hugepageLimits ?? []).forEach((h, i) => {
    if (!/^\d+[KMG]B$/.test(h.pageSize)) throw new CgroupError(`${F}.hugepageLimits[${i}].pageSize: ${JSON.stringify(h.pageSize)} is not a page size like "2MB"`);
    int(`hugepageLimits[${i}].limit`, h.limit, -1, 'must be a number of bytes');
  });
  (r.devices ?? []).forEach((d, i) => {
    if (d.type !== undefined && !['a', 'b', 'c'].includes(d.type)) throw new CgroupError(`${F}.devices[${i}].type: ${JSON.stringify(d.type)} is not one of "a", "b", "c"`);
    if (d.access !== undefined && !/^[rwm]+$/.test(d.access)) throw new CgroupError(`${F}.devices[${i}].access: ${JSON.stringify(d.access)} is not a combination of "r", "w", "m"`);
    int(`devices[${i}].major`, d.major, -1, 'must be a device major number (or -1 for any)');
    int(`devices[${i}].minor`, d.minor, -1, 'must be a device minor number (or -1 for any)');
  });
  if (r.network) {
    int('network.classID', r.network.classID, 0, 'must be a 32-bit class id');
    (r.network.priorities ?? []).forEach((p, i) => {
      if (!p.name || /\s|\//.test(p.name)) throw new CgroupError(`${F}.network.priorities[${i}].name: ${JSON.stringify(p.name)} is not an interface name`);
      int(`network.priorities[${i}].priority`, p.priority, 0, 'must be a non-negative integer');
    });
  }
  if (r.unified && Object.keys(r.unified).length > 0) {
    if (layout !== 'v2') {
      // runc: "invalid configuration: cannot use unified on cgroup v1"
      throw new CgroupError(`${F}.unified: needs cgroup v2, but this host's cgroups are ${layout}`);
    }
    for (const key of Object.keys(r.unified)) {
      if (key.includes('/') || key.includes('..') || key.startsWith('.') || !key.includes('.')) {
        throw new CgroupError(`${F}.unified: ${JSON.stringify(key)} is not a cgroup v2 interface file name`);
      }
      if (key.startsWith('cgroup.') && !['cgroup.freeze', 'cgroup.max.depth', 'cgroup.max.descendants', 'cgroup.type'].includes(key)) {
        throw new CgroupError(`${F}.unified: ${JSON.stringify(key)} is managed by the runtime and cannot be set`);
      }
    }
  }
}
