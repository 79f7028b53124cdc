// bpf(2) through koffi and libc's variadic syscall(): load a cgroup device program and
// attach it to a cgroup directory, replacing the programs lxr attached before.
// (A C wrapper in native/ would avoid the variadic call; this keeps the cgroup library
// self-contained until then.)
import { closeSync, constants, openSync } from 'node:fs';
import { CgroupError } from '../errors.js';
import { loadKoffi } from '../../../native/koffi.js';

const SYS_BPF: Record<string, number> = { x64: 321, arm64: 280 };
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Bpf {
  call(cmd: number, attr: Buffer): number;
  errno(): number;
  koffi: any;
}
let cached: Bpf | undefined;

function bpf(): Bpf {
  if (cached) return cached;
  const nr = SYS_BPF[process.arch];
  if (nr === undefined) throw new CgroupError(`linux.resources.devices: bpf(2) syscall number unknown for ${process.arch}`);
  const koffi = loadKoffi();
  const libc = koffi.load('libc.so.6');
  const syscall = libc.func('long syscall(long number, ...)');
  cached = {
    call: (cmd, attr) => Number(syscall(nr, 'int', cmd, 'void *', attr, 'uint', attr.length)),
    errno: () => koffi.errno(),
    koffi,
  };
  return cached;
}

function fail(what: string, errno: number, extra = ''): never {
  const names: Record<number, string> = { 1: 'EPERM', 13: 'EACCES', 22: 'EINVAL', 7: 'E2BIG', 38: 'ENOSYS', 9: 'EBADF', 2: 'ENOENT' };
  throw new CgroupError(`linux.resources.devices: ${what}: bpf(2) failed with ${names[errno] ?? `errno ${errno}`}${extra}`);
}

/** Address of a Buffer's memory, for pointer fields inside a bpf_attr. */
function addressOf(b: Buffer): bigint {
  const k = bpf().koffi;
  return BigInt(k.address(b));
}

export function loadDeviceProgram(insns: Buffer): number {
  const b = bpf();
  const license = Buffer.from('Apache\0');
  const log = Buffer.alloc(64 * 1024);
  const attr = Buffer.alloc(128);
  attr.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
  attr.writeUInt32LE(insns.length / 8, 4);
  attr.writeBigUInt64LE(addressOf(insns), 8);
  attr.writeBigUInt64LE(addressOf(license), 16);
  attr.writeUInt32LE(1, 24); // log_level
  attr.writeUInt32LE(log.length, 28);
  attr.writeBigUInt64LE(addressOf(log), 32);
  const fd = b.call(BPF_PROG_LOAD, attr);
  if (fd < 0) {
    const text = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim().split('\n').slice(-2).join(' / ');
    fail('loading the device filter program', b.errno(), text ? ` (verifier: ${text})` : '');
  }
  // Keep the buffers alive until the syscall has returned.
  void [insns, license, log];
  return fd;
}

function attachedPrograms(cgroupFd: number): number[] {
  const b = bpf();
  const ids = new Uint32Array(64);
  const idsBuf = Buffer.from(ids.buffer);
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(cgroupFd, 0);
  attr.writeUInt32LE(BPF_CGROUP_DEVICE, 4);
  attr.writeBigUInt64LE(addressOf(idsBuf), 16);
  attr.writeUInt32LE(ids.length, 24);
  if (b.call(BPF_PROG_QUERY, attr) < 0) fail('listing the attached device programs', b.errno());
  const count = attr.readUInt32LE(24);
  return Array.from(ids.subarray(0, Math.min(count, ids.length)));
}

function progFdById(id: number): number {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(id, 0);
  const fd = bpf().call(BPF_PROG_GET_FD_BY_ID, attr);
  if (fd < 0) fail(`opening attached program ${id}`, bpf().errno());
  return fd;
}

function attachCmd(cmd: number, cgroupFd: number, progFd: number, flags: number): number {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(cgroupFd, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
  attr.writeUInt32LE(flags, 12);
  return bpf().call(cmd, attr);
}

/**
 * Attach the program to the cgroup directory, then detach the device programs that were
 * there before (new before old, so there is no moment without a filter).
 */
export function attachDeviceProgram(cgroupDir: string, insns: Buffer): void {
  let cgroupFd: number;
  try {
    cgroupFd = openSync(cgroupDir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new CgroupError(`linux.resources.devices: opening ${cgroupDir}: ${(err as Error).message}`);
  }
  let progFd = -1;
  try {
    const before = attachedPrograms(cgroupFd);
    progFd = loadDeviceProgram(insns);
    if (attachCmd(BPF_PROG_ATTACH, cgroupFd, progFd, BPF_F_ALLOW_MULTI) < 0) fail(`attaching the device filter to ${cgroupDir}`, bpf().errno());
    for (const id of before) {
      const old = progFdById(id);
      try {
        if (attachCmd(BPF_PROG_DETACH, cgroupFd, old, 0) < 0) fail(`detaching the old device filter ${id} from ${cgroupDir}`, bpf().errno());
      } finally {
        closeSync(old);
      }
    }
  } finally {
    if (progFd >= 0) closeSync(progFd);
    closeSync(cgroupFd);
  }
}

/** Ids of the device programs attached to a cgroup directory (for tests and `lxr-runtime features`). */
export function deviceProgramIds(cgroupDir: string): number[] {
  const fd = openSync(cgroupDir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return attachedPrograms(fd);
  } finally {
    closeSync(fd);
  }
}
