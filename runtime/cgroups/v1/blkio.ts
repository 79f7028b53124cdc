// blkio controller (cgroup-v1/blkio-controller.rst). CFQ's blkio.weight is gone from
// current kernels; like runc, lxr falls back to BFQ's blkio.bfq.weight when it is absent.
import type { Resources, ThrottleDevice } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readOptional, writeCgroupFile } from '../fs.js';
import type { BlkioEntry, BlkioStats, Stats } from '../stats.js';
import { firstSet, type V1Controller } from './controller.js';

const F = 'linux.resources.blockIO';

export function setBlkio(dir: string, r: Resources): void {
  const b = r.blockIO;
  if (!b) return;
  const cfq = hasFile(dir, 'blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (b.weight) writeCgroupFile(dir, weightFile, String(b.weight), `${F}.weight`);
  if (b.leafWeight) {
    if (!hasFile(dir, 'blkio.leaf_weight')) throw new CgroupError(`${F}.leafWeight: not supported by this kernel's I/O scheduler (${dir}/blkio.leaf_weight is missing)`);
    writeCgroupFile(dir, 'blkio.leaf_weight', String(b.leafWeight), `${F}.leafWeight`);
  }
  (b.weightDevice ?? []).forEach((d, i) => {
    if (d.weight !== undefined) writeCgroupFile(dir, weightDeviceFile, `${d.major}:${d.minor} ${d.weight}`, `${F}.weightDevice[${i}].weight`);
    if (d.leafWeight !== undefined) writeCgroupFile(dir, 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`, `${F}.weightDevice[${i}].leafWeight`);
  });
  const throttle = (list: ThrottleDevice[] | undefined, file: string, key: string): void =>
    (list ?? []).forEach((d, i) => writeCgroupFile(dir, file, `${d.major}:${d.minor} ${d.rate}`, `${F}.${key}[${i}]`));
  throttle(b.throttleReadBpsDevice, 'blkio.throttle.read_bps_device', 'throttleReadBpsDevice');
  throttle(b.throttleWriteBpsDevice, 'blkio.throttle.write_bps_device', 'throttleWriteBpsDevice');
  throttle(b.throttleReadIOPSDevice, 'blkio.throttle.read_iops_device', 'throttleReadIOPSDevice');
  throttle(b.throttleWriteIOPSDevice, 'blkio.throttle.write_iops_device', 'throttleWriteIOPSDevice');
}

/** "8:0 Read 4096" lines; the closing "Total N" line has no device and is skipped. */
export function parseBlkioEntries(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2) continue;
    const dev = /^(\d+):(\d+)$/.exec(f[0]!);
    if (!dev) continue;
    const e: BlkioEntry = {};
    if (Number(dev[1])) e.major = Number(dev[1]);
    if (Number(dev[2])) e.minor = Number(dev[2]);
    const value = Number(f[f.length - 1]);
    if (f.length === 3) e.op = f[1]!;
    if (value) e.value = value;
    out.push(e);
  }
  return out;
}

export function blkioStats(dir: string, s: Stats): void {
  // Same preference as runc: CFQ, then BFQ, then the throttling layer's counters.
  const sets: [string, string][] = [
    ['blkio.io_service_bytes_recursive', 'blkio.io_serviced_recursive'],
    ['blkio.bfq.io_service_bytes_recursive', 'blkio.bfq.io_serviced_recursive'],
    ['blkio.throttle.io_service_bytes_recursive', 'blkio.throttle.io_serviced_recursive'],
  ];
  for (const [bytes, ios] of sets) {
    if (!hasFile(dir, bytes)) continue;
    const st: BlkioStats = {};
    const b = parseBlkioEntries(readOptional(dir, bytes));
    const n = parseBlkioEntries(readOptional(dir, ios));
    if (b.length) st.ioServiceBytesRecursive = b;
    if (n.length) st.ioServicedRecursive = n;
    s.blkio = st;
    return;
  }
}

export const blkio: V1Controller = {
  name: 'blkio',
  needed: (r) => firstSet(F, r.blockIO, ['weight', 'leafWeight', 'weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'], ['weight', 'leafWeight']),
  set: setBlkio,
  stats: blkioStats,
};
