// Reading and writing cgroupfs files. Every write names the spec field it serves, so
// that a kernel refusal reaches the user as "linux.resources.cpu.cpus: writing "9" to
// /sys/fs/cgroup/cpuset/lxr/x/cpuset.cpus: invalid argument (EINVAL)".
import { closeSync, existsSync, openSync, readFileSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CgroupError, describeErrno, errnoCode } from './errors.js';

export function writeCgroupFile(dir: string, file: string, value: string, field: string): void {
  const path = join(dir, file);
  let fd: number;
  try {
    // O_WRONLY without O_CREAT: a missing file is an unsupported knob, never something to create.
    fd = openSync(path, constants.O_WRONLY);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new CgroupError(`${field}: ${path} does not exist (the controller or this kernel does not support it)`, 'ENOENT');
    }
    throw new CgroupError(`${field}: opening ${path}: ${describeErrno(err)}`, errnoCode(err));
  }
  try {
    // One write(2) per value: cgroupfs parses each write as one command.
    writeSync(fd, value);
  } catch (err) {
    throw new CgroupError(`${field}: writing "${value.trim()}" to ${path}: ${describeErrno(err)}`, errnoCode(err));
  } finally {
    closeSync(fd);
  }
}

export function readCgroupFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8');
}

/** The file's content, trimmed, or undefined when it does not exist (feature absent). */
export function readOptional(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENODEV' || errnoCode(err) === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

export function hasFile(dir: string, file: string): boolean {
  return existsSync(join(dir, file));
}

/** A number from a cgroup file; "max" and absent files give 0 (runc's convention in stats). */
export function readUint(dir: string, file: string): number {
  const v = readOptional(dir, file);
  if (v === undefined || v === '' || v === 'max') return 0;
  const n = Number(v.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events ...) as a map. */
export function readKeyValues(dir: string, file: string): Record<string, number> {
  const out: Record<string, number> = {};
  const text = readOptional(dir, file);
  if (text === undefined) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Synchronous sleep for the few short waits (rmdir EBUSY retries, freezer polling in kill). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
