// The one place that loads native/build/liblxr.so (built by `npm install`) through koffi.
// Everything that needs a syscall Node does not offer goes through here.
import { existsSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import abi from './abi.json' with { type: 'json' };
import { dirname, join } from 'node:path';
import { loadKoffi } from './koffi.js';
import { nativeBuildPath } from './paths.js';

function findLibrary(): string {
  return nativeBuildPath('liblxr.so');
}

export interface Native {
  /**
   * Start a process carrying out the plan (native/lib.c lxr_spawn: a clone of this process
   * that at once executes lxr-init from a sealed memfd). `keep`: the fds the plan uses, sorted.
   * Returns its pid or -errno. The child closes `parentChanFd` first.
   */
  spawn(plan: Buffer, stepsLen: number, cloneFlags: bigint, chanFd: number, parentChanFd: number, keep: number[]): number;
  socketpair(): [number, number];
  /** Blocking wait4 on a worker thread. Resolves to [pid or -errno, raw status]. */
  wait(pid: number): Promise<[number, number]>;
  flock(fd: number, op: number): number;
  /** Same as flock but on a worker thread, for blocking locks. */
  flockAsync(fd: number, op: number): Promise<number>;
  dupCloexec(fd: number): number;
  close(fd: number): number;
  unixConnect(path: string): number;
  recvFd(sock: number): number;
  recvFdAsync(sock: number): Promise<number>;
  sendFd(sock: number, fd: number, name: string): number;
  getWinsize(fd: number): [number, number] | null;
  setWinsize(fd: number, rows: number, cols: number): number;
  mkfifo(path: string, mode: number): number;
  mount(src: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount(path: string, flags: number): number;
  unixListen(path: string): number;
  /** recvmsg of one SCM_RIGHTS fd and its payload, on a worker thread */
  recvFdWithDataAsync(sock: number, max?: number): Promise<{ fd: number; data: Buffer }>;
  /** accept4 on a worker thread */
  acceptAsync(fd: number): Promise<number>;
  /**
   * Make a network namespace with lo up, bind-mounted onto `path` (created here; it must not
   * exist). Returns [0 or -errno, the NS_STEP that failed]. Leaves nothing behind on failure.
   */
  netnsCreate(path: string): [number, number];
  /** A NETLINK_ROUTE socket inside the netns at `netnsPath` (null: ours): [fd or -errno, NS_STEP]. */
  netlinkOpen(netnsPath: string | null): [number, number];
  /** Send one netlink request: bytes sent or -errno. */
  netlinkSend(fd: number, buf: Buffer, len: number): number;
  /** Receive one netlink datagram into buf: its length or -errno (-EMSGSIZE when it did not fit). */
  netlinkRecv(fd: number, buf: Buffer): number;
  /** netlinkSend then netlinkRecv, on a worker thread (the socket must not be used meanwhile). */
  netlinkTransactAsync(fd: number, req: Buffer, buf: Buffer): Promise<number>;
  /** netlinkRecv on a worker thread. */
  netlinkRecvAsync(fd: number, buf: Buffer): Promise<number>;
}

/** What lxr_netns_create / lxr_netlink_open report as the failed step (native/abi.json ns_steps). */
export const NS_STEP: Record<number, string> = Object.fromEntries(Object.values(abi.ns_steps).map(([n, what]) => [n as number, what as string]));

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

let cached: Native | undefined;

export function native(): Native {
  if (cached) return cached;
  const LIB = findLibrary();
  if (!existsSync(LIB)) {
    throw new Error(`native library ${LIB} is missing: run "npm install" (it needs a C compiler: apt-get install -y gcc libc6-dev)`);
  }
  const koffi = loadKoffi();
  const lib = koffi.load(LIB);
  const helper = join(dirname(LIB), 'lxr-init');
  if (!existsSync(helper)) throw new Error(`${helper} is missing: run "npm install" (or "npm run build")`);
  const spawn = lib.func('int lxr_spawn(const uint8_t *plan, int64_t len, int64_t steps_len, int64_t flags, int chan, int parent_chan, const int *keep, int nkeep, const char *helper)');
  const socketpair = lib.func('int lxr_socketpair(_Out_ int *fds)');
  const wait = lib.func('int lxr_wait(int pid, _Out_ int *status)');
  const flock = lib.func('int lxr_flock(int fd, int op)');
  const dupCloexec = lib.func('int lxr_dup_cloexec(int fd)');
  const close = lib.func('int lxr_close(int fd)');
  const unixConnect = lib.func('int lxr_unix_connect(const char *path)');
  const recvFd = lib.func('int lxr_recv_fd(int sock)');
  const sendFd = lib.func('int lxr_send_fd(int sock, int fd, const char *name)');
  const getWinsize = lib.func('int lxr_tcgetwinsize(int fd, _Out_ int *rc)');
  const setWinsize = lib.func('int lxr_tcsetwinsize(int fd, int rows, int cols)');
  const mkfifo = lib.func('int lxr_mkfifo(const char *path, int mode)');
  const mount = lib.func('int lxr_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)');
  const umount = lib.func('int lxr_umount(const char *path, int flags)');
  const unixListen = lib.func('int lxr_unix_listen(const char *path)');
  const accept = lib.func('int lxr_accept(int fd)');
  const recvFdData = lib.func('int lxr_recv_fd_data(int sock, _Out_ uint8_t *buf, int len, _Out_ int *got)');
  // bound on first use, so that a library built before they existed still serves the rest
  // (and says clearly that it must be rebuilt when one is needed)
  type Fn = ((...a: unknown[]) => number) & { async: (...a: unknown[]) => void };
  const later = (decl: string): (() => Fn) => {
    let f: Fn | undefined;
    return () => {
      if (f) return f;
      try {
        f = lib.func(decl) as Fn;
      } catch (e) {
        throw new Error(`native library ${LIB} is older than its bindings (${(e as Error).message}): run "npm run build"`);
      }
      return f;
    };
  };
  const netnsCreate = later('int lxr_netns_create(const char *path, _Out_ int *step)');
  const netlinkOpen = later('int lxr_netlink_open(const char *nspath, _Out_ int *step)');
  const netlinkSend = later('int lxr_netlink_send(int fd, const uint8_t *buf, int len)');
  const netlinkRecv = later('int lxr_netlink_recv(int fd, _Out_ uint8_t *buf, int len)');
  const netlinkTransact = later('int lxr_netlink_transact(int fd, const uint8_t *req, int len, _Out_ uint8_t *buf, int buflen)');

  cached = {
    spawn: (plan, stepsLen, flags, chan, parentChan, keep) =>
      spawn(plan, plan.length, stepsLen, flags, chan, parentChan, Int32Array.from(keep), keep.length, helper),
    socketpair() {
      const fds = [0, 0];
      const r = socketpair(fds);
      if (r < 0) throw errnoError(-r, 'socketpair');
      return [fds[0]!, fds[1]!];
    },
    wait: (pid) =>
      new Promise((resolve, reject) => {
        const status = [0];
        wait.async(pid, status, (err: Error | null, r: number) => (err ? reject(err) : resolve([r, status[0]!])));
      }),
    flock: (fd, op) => flock(fd, op),
    flockAsync: (fd, op) =>
      new Promise((resolve, reject) => flock.async(fd, op, (err: Error | null, r: number) => (err ? reject(err) : resolve(r)))),
    dupCloexec: (fd) => dupCloexec(fd),
    close: (fd) => close(fd),
    unixConnect: (path) => unixConnect(path),
    recvFd: (sock) => recvFd(sock),
    recvFdAsync: (sock) =>
      new Promise((resolve, reject) => recvFd.async(sock, (err: Error | null, r: number) => (err ? reject(err) : resolve(r)))),
    sendFd: (sock, fd, name) => sendFd(sock, fd, name),
    getWinsize(fd) {
      const rc = [0, 0];
      return getWinsize(fd, rc) < 0 ? null : [rc[0]!, rc[1]!];
    },
    setWinsize: (fd, rows, cols) => setWinsize(fd, rows, cols),
    mkfifo: (path, mode) => mkfifo(path, mode),
    mount: (src, target, fstype, flags, data) => mount(src, target, fstype, flags, data),
    umount: (path, flags) => umount(path, flags),
    unixListen: (path) => unixListen(path),
    recvFdWithDataAsync: (sock, max = 65536) =>
      new Promise((resolve, reject) => {
        const buf = Buffer.alloc(max);
        const got = [0];
        recvFdData.async(sock, buf, max, got, (err: Error | null, fd: number) =>
          err ? reject(err) : resolve({ fd, data: buf.subarray(0, got[0]!) }),
        );
      }),
    acceptAsync: (fd) =>
      new Promise((resolve, reject) => accept.async(fd, (err: Error | null, r: number) => (err ? reject(err) : resolve(r)))),
    netnsCreate(path) {
      const step = [0];
      const r = netnsCreate()(path, step);
      return [r, step[0]!];
    },
    netlinkOpen(netnsPath) {
      const step = [0];
      const r = netlinkOpen()(netnsPath, step);
      return [r, step[0]!];
    },
    netlinkSend: (fd, buf, len) => netlinkSend()(fd, buf, len),
    netlinkRecv: (fd, buf) => netlinkRecv()(fd, buf, buf.length),
    netlinkTransactAsync: (fd, req, buf) =>
      new Promise((resolve, reject) =>
        netlinkTransact().async(fd, req, req.length, buf, buf.length, (err: Error | null, r: number) => (err ? reject(err) : resolve(r))),
      ),
    netlinkRecvAsync: (fd, buf) =>
      new Promise((resolve, reject) =>
        netlinkRecv().async(fd, buf, buf.length, (err: Error | null, r: number) => (err ? reject(err) : resolve(r))),
      ),
  };
  return cached;
}

/** EPERM for 1: the name Node knows for an errno. */
export function errnoName(errno: number): string {
  let name: string;
  try {
    name = getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
  if (name.startsWith('Unknown')) return `errno ${errno}`;
  // Linux's own name for 95 (ENOTSUP is its alias in <errno.h>)
  return name === 'ENOTSUP' ? 'EOPNOTSUPP' : name;
}

export function errnoError(errno: number, what: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${what}: ${errnoName(errno)}`);
  e.errno = errno;
  e.code = errnoName(errno);
  return e;
}
