// io controller, cgroup v2. As runc 1.1: a BFQ weight (io.bfq.weight, same 1..1000 scale
// as blkio) is written as is when BFQ is there; otherwise io.weight gets the converted value.
import type { Resources, ThrottleDevice } from '../../../oci-spec/types.js';
import { CgroupError } from '../errors.js';
import { hasFile, readOptional, writeCgroupFile } from '../fs.js';
import type { BlkioEntry, Stats } from '../stats.js';

const F = 'linux.resources.blockIO';

/** runc ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000]. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

export function setIoV2(dir: string, r: Resources): void {
  const b = r.blockIO;
  if (!b) return;
  const bfq = hasFile(dir, 'io.bfq.weight');
  if (b.weight) {
    if (bfq) writeCgroupFile(dir, 'io.bfq.weight', String(b.weight), `${F}.weight`);
    else writeCgroupFile(dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), `${F}.weight`);
  }
  if (b.leafWeight) throw new CgroupError(`${F}.leafWeight: not supported on cgroup v2`);
  (b.weightDevice ?? []).forEach((d, i) => {
    if (d.leafWeight !== undefined) throw new CgroupError(`${F}.weightDevice[${i}].leafWeight: not supported on cgroup v2`);
    if (d.weight === undefined) return;
    if (!bfq) throw new CgroupError(`${F}.weightDevice[${i}]: per-device weights need the BFQ I/O scheduler (${dir}/io.bfq.weight is missing)`);
    writeCgroupFile(dir, 'io.bfq.weight', `${d.major}:${d.minor} ${d.weight}`, `${F}.weightDevice[${i}]`);
  });
  const max = (list: ThrottleDevice[] | undefined, key: string, name: string): void =>
    (list ?? []).forEach((d, i) => writeCgroupFile(dir, 'io.max', `${d.major}:${d.minor} ${name}=${d.rate}`, `${F}.${key}[${i}]`));
  max(b.throttleReadBpsDevice, 'throttleReadBpsDevice', 'rbps');
  max(b.throttleWriteBpsDevice, 'throttleWriteBpsDevice', 'wbps');
  max(b.throttleReadIOPSDevice, 'throttleReadIOPSDevice', 'riops');
  max(b.throttleWriteIOPSDevice, 'throttleWriteIOPSDevice', 'wiops');
}

/** io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." -> runc's Read/Write entries. */
export function ioStatsV2(dir: string, s: Stats): void {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (readOptional(dir, 'io.stat') ?? '').split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const base: BlkioEntry = {};
    if (Number(m[1])) base.major = Number(m[1]);
    if (Number(m[2])) base.minor = Number(m[2]);
    for (const kv of kvs) {
      const [k, v] = kv.split('=');
      const value = Number(v);
      const e: BlkioEntry = { ...base, op: k === 'rbytes' || k === 'rios' ? 'Read' : 'Write' };
      if (value) e.value = value;
      if (k === 'rbytes' || k === 'wbytes') bytes.push(e);
      else if (k === 'rios' || k === 'wios') ios.push(e);
    }
  }
  if (bytes.length) s.blkio.ioServiceBytesRecursive = bytes;
  if (ios.length) s.blkio.ioServicedRecursive = ios;
}
