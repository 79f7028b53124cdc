// process.capabilities (config.md "Linux process"): names to numbers and the five sets.
import { readFileSync } from 'node:fs';
import type { Capabilities } from '../../oci-spec/types.js';
import { LxrError } from '../../common/errors.js';

// linux/capability.h order
export const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

let lastCapCache: number | undefined;
export function lastCap(): number {
  if (lastCapCache === undefined) {
    try {
      lastCapCache = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    } catch {
      lastCapCache = CAPABILITY_NAMES.length - 1;
    }
  }
  return lastCapCache;
}

export interface CapMasks {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
}

/**
 * Unknown names are an error (they are a typo, or a capability this kernel does not
 * have); names the kernel does not know are skipped, as runc does, so one config
 * works across kernels.
 */
export function capMasks(caps: Capabilities | undefined, where = 'process.capabilities'): CapMasks {
  const last = lastCap();
  const mask = (list: string[] | undefined, set: string): bigint => {
    let m = 0n;
    (list ?? []).forEach((name, i) => {
      const n = CAPABILITY_NAMES.indexOf(name.toUpperCase() as (typeof CAPABILITY_NAMES)[number]);
      if (n < 0) throw new LxrError(`${where}.${set}[${i}]: unknown capability "${name}"`);
      if (n <= last) m |= 1n << BigInt(n);
    });
    return m;
  };
  return {
    bounding: mask(caps?.bounding, 'bounding'),
    effective: mask(caps?.effective, 'effective'),
    permitted: mask(caps?.permitted, 'permitted'),
    inheritable: mask(caps?.inheritable, 'inheritable'),
    ambient: mask(caps?.ambient, 'ambient'),
  };
}

export const lo = (m: bigint): number => Number(m & 0xffffffffn);
export const hi = (m: bigint): number => Number((m >> 32n) & 0xffffffffn);

/** The capability names this kernel supports (for `features`). */
export function knownCapabilities(): string[] {
  return CAPABILITY_NAMES.slice(0, lastCap() + 1);
}
