/*
 * lxr native part: clone a process and carry out a plan of steps in it.
 *
 * Node is multithreaded, so the Node process itself never forks, unshares or
 * calls setns. Instead TypeScript compiles the OCI spec into a "plan": a flat
 * buffer of fixed-size step records plus a string area (see
 * runtime/process/plan.ts for the encoder, which must agree with the opcode
 * numbers below). lxr_spawn() clones a child with the raw clone syscall (no
 * glibc fork: no atfork handlers, no malloc locks) and the child walks the
 * steps with raw syscalls only: no malloc, no stdio, no locks, no JS.
 *
 * The child talks to its parent over one stream socket (the "channel"):
 *   'S' u32 id         the child reached a SYNC step and waits for one byte
 *   'P' u32 pid        a CLONE step made a new process (pid in our pid ns)
 *   'E' u32 step i32 errno   step failed; the child exits
 * The channel is close-on-exec, so EOF without 'E' means the execve happened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif

/* Opcodes. Keep in sync with runtime/process/plan.ts. */
enum {
  OP_END = 0,
  OP_SYNC = 1,           /* a0 channel fd, a1 id */
  OP_SETNS = 2,          /* a0 fd, a1 nstype */
  OP_UNSHARE = 3,        /* a0 flags */
  OP_SETSID = 4,
  OP_SETHOSTNAME = 5,    /* a0 str, a1 len */
  OP_SETDOMAINNAME = 6,  /* a0 str, a1 len */
  OP_MOUNT = 7,          /* a0 src, a1 target, a2 fstype, a3 flags, a4 data, a5 mk, a6 root reg */
  OP_PIVOT_ROOT = 8,     /* a0 new root path */
  OP_MOVE_ROOT = 9,      /* a0 new root path (--no-pivot: MS_MOVE + chroot) */
  OP_MKNOD = 10,         /* a0 path, a1 mode, a2 dev, a3 uid, a4 gid, a5 root reg */
  OP_SYMLINK = 11,       /* a0 target, a1 linkpath, a2 root reg */
  OP_WRITE_FILE = 12,    /* a0 path, a1 data, a2 len */
  OP_SETRLIMIT = 13,     /* a0 resource, a1 soft, a2 hard */
  OP_CAP_BOUNDING = 14,  /* a0 keep mask lo, a1 keep mask hi, a2 last cap */
  OP_KEEPCAPS = 15,      /* a0 on/off */
  OP_SETGROUPS = 16,     /* a0 count, a1 offset of u32 array */
  OP_SETRESGID = 17,     /* a0 gid */
  OP_SETRESUID = 18,     /* a0 uid */
  OP_CAPSET = 19,        /* a0 eff lo, a1 eff hi, a2 perm lo, a3 perm hi, a4 inh lo, a5 inh hi */
  OP_AMBIENT = 20,       /* a0 mask lo, a1 mask hi */
  OP_UMASK = 21,         /* a0 mask */
  OP_NO_NEW_PRIVS = 22,
  OP_SECCOMP = 23,       /* a0 offset of sock_filter array, a1 count, a2 flags */
  OP_CHDIR = 24,         /* a0 path */
  OP_DUP = 25,           /* a0 from, a1 to */
  OP_CLOEXEC_FROM = 26,  /* a0 first fd marked close-on-exec */
  OP_EXEC = 27,          /* a0 candidate paths array, a1 argv array, a2 envp array, a3 check only */
  OP_OPEN_ROOT = 28,     /* a0 path, a1 reg */
  OP_MASK_PATH = 29,     /* a0 path, a1 root reg */
  OP_READONLY_PATH = 30, /* a0 path, a1 root reg */
  OP_CONSOLE = 31,       /* a0 socket fd, a1 rows, a2 cols */
  OP_REMOUNT = 32,       /* a0 target, a1 flags, a2 root reg: bind remount keeping locked flags */
  OP_DUMPABLE = 33,      /* a0 on/off */
  OP_WAIT_FIFO = 34,     /* a0 fd: block until `start` writes one byte */
  OP_CLONE = 35,         /* a0 clone flags, a1 channel fd: the old process reports 'P' and exits */
  OP_RESET_SIGNALS = 36,
  OP_CLEAR_CLOEXEC = 37, /* a0 first fd, a1 count */
  OP_OOM_SCORE_ADJ = 38, /* a0 str, a1 len */
  OP_CLOSE = 39,         /* a0 fd */
  OP_PDEATHSIG = 40,     /* a0 signal */
  OP_SET_PGID_TTY = 41,  /* a0 fd: make our process group the foreground of that tty (exec -t) */
  OP_CHROOT = 42,        /* a0 path: chroot + chdir("/") (no mount namespace of our own) */
  OP_RECV_FD = 43,       /* a0 channel fd, a1 mount slot, a2 SYNC id to report first (-1: none): receive one fd */
  OP_MOVE_MOUNT = 44,    /* a0 mount slot, a1 target, a2 mk, a3 root reg: attach a detached mount there */
  OP_IDMAP_TREE = 45,    /* a0 src, a1 userns path, a2 recursive clone, a3 recursive idmap, a4 socket: send an idmapped clone of src */
  OP_LOOPBACK_UP = 46,   /* bring up "lo" in our network namespace (runc does it for a new one) */
  OP_SECCOMP_LISTENER = 47, /* a0 filter offset, a1 count, a2 flags, a3 socket: load with a notify listener, send its fd */
};

/* Idmapped mounts (mount_setattr(2)); defined here for headers that lack them. */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
struct lxr_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

#define NMOUNT_SLOTS 32
static int mount_slots[NMOUNT_SLOTS];

struct step {
  int64_t op;
  int64_t a[7];
};

#define NREGS 8
static int regs[NREGS];
static int exec_choice = -1;
static char pathbuf[8192];
static char procbuf[64];

static long sys_err(long r) { return r < 0 ? -errno : r; }

/*
 * Leave the child for good. A seccomp profile loaded by the plan may refuse even
 * exit_group (an ERRNO default action): then fault, which a process with default signal
 * handlers cannot survive. The child must never return into Node's code.
 */
__attribute__((noreturn)) static void die(int code) {
  syscall(SYS_exit_group, code);
  for (;;) __builtin_trap();
}

static const char *str(const uint8_t *base, int64_t off) {
  return off < 0 ? NULL : (const char *)(base + off);
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static int write_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    long n = syscall(SYS_write, fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static char *itoa_into(char *end, long v) {
  /* writes digits backwards ending at end (exclusive); returns start */
  char *p = end;
  int neg = v < 0;
  unsigned long u = neg ? (unsigned long)(-v) : (unsigned long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) *--p = '-';
  return p;
}

static const char *procfd(int fd) {
  static const char prefix[] = "/proc/self/fd/";
  char num[24];
  char *s = itoa_into(num + sizeof num - 1, fd);
  num[sizeof num - 1] = 0;
  size_t plen = sizeof prefix - 1;
  memcpy(procbuf, prefix, plen);
  memcpy(procbuf + plen, s, (size_t)(num + sizeof num - s));
  return procbuf;
}

static int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/*
 * Resolve path inside the root held by rootfd, so that symlinks and ".." can
 * never leave it (CVE-2024-21626 / CVE-2025-31133 class). With mk = 1 missing
 * directories are created; with mk = 2 the last component is created as an
 * empty file. Returns an O_PATH fd or -1 with errno set.
 */
static int resolve(int rootfd, const char *path, int mk) {
  if (rootfd < 0) return (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC);
  int fd = openat2_in_root(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT || !mk) return fd;

  size_t len = strlen(path);
  if (len >= sizeof pathbuf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(pathbuf, path, len + 1);
  int parent = openat2_in_root(rootfd, "/", O_PATH);
  if (parent < 0) return -1;
  int links = 0;
  size_t i = 0;
  while (i < len) {
    while (i < len && pathbuf[i] == '/') i++;
    if (i >= len) break;
    size_t start = i;
    while (i < len && pathbuf[i] != '/') i++;
    int last = 1;
    for (size_t j = i; j < len; j++)
      if (pathbuf[j] != '/') { last = 0; break; }
    char saved = pathbuf[i];
    pathbuf[i] = 0;
    int next = openat2_in_root(rootfd, pathbuf, O_PATH);
    if (next < 0 && errno == ENOENT) {
      const char *name = pathbuf + start;
      static char link[4096];
      long ln = syscall(SYS_readlinkat, parent, name, link, sizeof link - 1);
      if (ln > 0) {
        /* A dangling symlink: create its target instead, still inside the root.
           Rebuild the path as <dir of the link>/<target>/<rest> and walk it again. */
        static char rebuilt[8192];
        if (++links > 40) { errno = ELOOP; goto fail; }
        link[ln] = 0;
        size_t n = 0;
        if (link[0] != '/') {
          memcpy(rebuilt, pathbuf, start);
          n = start;
        }
        if (n + (size_t)ln + 1 + (len - i) + 1 > sizeof rebuilt) { errno = ENAMETOOLONG; goto fail; }
        memcpy(rebuilt + n, link, (size_t)ln);
        n += (size_t)ln;
        pathbuf[i] = saved;
        rebuilt[n++] = '/';
        memcpy(rebuilt + n, pathbuf + i, len - i);
        n += len - i;
        rebuilt[n] = 0;
        memcpy(pathbuf, rebuilt, n + 1);
        len = n;
        i = 0;
        syscall(SYS_close, parent);
        parent = openat2_in_root(rootfd, "/", O_PATH);
        if (parent < 0) return -1;
        continue;
      }
      if (last && mk == 2) {
        int f = (int)syscall(SYS_openat, parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST) goto fail;
        if (f >= 0) syscall(SYS_close, f);
      } else if (syscall(SYS_mkdirat, parent, name, 0755) < 0 && errno != EEXIST) {
        goto fail;
      }
      next = openat2_in_root(rootfd, pathbuf, O_PATH);
    }
    pathbuf[i] = saved;
    if (next < 0) goto fail;
    syscall(SYS_close, parent);
    parent = next;
    continue;
  fail:
    {
      int e = errno;
      syscall(SYS_close, parent);
      errno = e;
      return -1;
    }
  }
  return parent;
}

/* Split "a/b/c" into the resolved parent "a/b" (created) and the name "c". */
static int resolve_parent(int rootfd, const char *path, const char **name) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    *name = path;
    return openat2_in_root(rootfd, "/", O_PATH);
  }
  size_t n = (size_t)(slash - path);
  if (n >= sizeof pathbuf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  static char parent[8192];
  memcpy(parent, path, n);
  parent[n] = 0;
  *name = slash + 1;
  return resolve(rootfd, n ? parent : "/", 1);
}

static unsigned long locked_flags(int fd) {
  struct statfs st;
  unsigned long f = 0;
  if (syscall(SYS_fstatfs, fd, &st) < 0) return 0;
  if (st.f_flags & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flags & ST_NODEV) f |= MS_NODEV;
  if (st.f_flags & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flags & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flags & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flags & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static int reg(int64_t r) { return (r >= 0 && r < NREGS) ? regs[r] : -1; }

static int do_mount(const uint8_t *base, const struct step *s) {
  const char *src = str(base, s->a[0]);
  int rootfd = reg(s->a[6]);
  int fd = resolve(rootfd, str(base, s->a[1]), (int)s->a[5]);
  if (fd < 0) return -1;
  char target[64];
  strcpy(target, procfd(fd));
  long r = syscall(SYS_mount, src, target, str(base, s->a[2]), (unsigned long)s->a[3], str(base, s->a[4]));
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return (int)r;
}

static int do_remount(const uint8_t *base, const struct step *s) {
  int fd = resolve(reg(s->a[2]), str(base, s->a[0]), 0);
  if (fd < 0) return -1;
  unsigned long flags = (unsigned long)s->a[1] | locked_flags(fd) | MS_REMOUNT | MS_BIND;
  long r = syscall(SYS_mount, NULL, procfd(fd), NULL, flags, NULL);
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return (int)r;
}

static int do_mask(const uint8_t *base, const struct step *s) {
  int fd = resolve(reg(s->a[1]), str(base, s->a[0]), 0);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) < 0) return -1;
  char target[64];
  strcpy(target, procfd(fd));
  long r;
  if (S_ISDIR(st.st_mode))
    r = syscall(SYS_mount, "tmpfs", target, "tmpfs", MS_RDONLY, "size=0k");
  else
    r = syscall(SYS_mount, "/dev/null", target, NULL, MS_BIND, NULL);
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return (int)r;
}

static int do_readonly(const uint8_t *base, const struct step *s) {
  const char *path = str(base, s->a[0]);
  int rootfd = reg(s->a[1]);
  int fd = resolve(rootfd, path, 0);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  char target[64];
  strcpy(target, procfd(fd));
  long r = syscall(SYS_mount, target, target, NULL, MS_BIND | MS_REC, NULL);
  syscall(SYS_close, fd);
  if (r < 0) return -1;
  /* The bind created a new mount on top: resolve again to reach it. */
  fd = resolve(rootfd, path, 0);
  if (fd < 0) return -1;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(fd);
  r = syscall(SYS_mount, NULL, procfd(fd), NULL, flags, NULL);
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return (int)r;
}

static int do_mknod(const uint8_t *base, const struct step *s) {
  const char *name;
  int dir = resolve_parent(reg(s->a[5]), str(base, s->a[0]), &name);
  if (dir < 0) return -1;
  /* mknodat wants a real directory fd, not O_PATH */
  int d = openat2_in_root(dir, ".", O_DIRECTORY | O_RDONLY);
  syscall(SYS_close, dir);
  if (d < 0) return -1;
  long r = syscall(SYS_mknodat, d, name, (mode_t)s->a[1], (dev_t)s->a[2]);
  if (r < 0 && errno == EEXIST) {
    syscall(SYS_unlinkat, d, name, 0);
    r = syscall(SYS_mknodat, d, name, (mode_t)s->a[1], (dev_t)s->a[2]);
  }
  if (r == 0) r = syscall(SYS_fchownat, d, name, (uid_t)s->a[3], (gid_t)s->a[4], AT_SYMLINK_NOFOLLOW);
  if (r == 0) {
    /* mknod is subject to the umask: set the mode the spec asked for */
    int f = (int)syscall(SYS_openat, d, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (f >= 0) {
      r = syscall(SYS_chmod, procfd(f), (mode_t)(s->a[1] & 07777));
      syscall(SYS_close, f);
    }
  }
  int e = errno;
  syscall(SYS_close, d);
  errno = e;
  return (int)r;
}

static int do_symlink(const uint8_t *base, const struct step *s) {
  const char *name;
  int dir = resolve_parent(reg(s->a[2]), str(base, s->a[1]), &name);
  if (dir < 0) return -1;
  int d = openat2_in_root(dir, ".", O_DIRECTORY | O_RDONLY);
  syscall(SYS_close, dir);
  if (d < 0) return -1;
  long r = syscall(SYS_symlinkat, str(base, s->a[0]), d, name);
  if (r < 0 && errno == EEXIST) r = 0;
  int e = errno;
  syscall(SYS_close, d);
  errno = e;
  return (int)r;
}

static int do_pivot_root(const char *root) {
  int oldroot = (int)syscall(SYS_openat, AT_FDCWD, "/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return -1;
  int newroot = (int)syscall(SYS_openat, AT_FDCWD, root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) return -1;
  if (syscall(SYS_fchdir, newroot) < 0) return -1;
  if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
  /* the old root is now stacked under the new one at "."; detach it */
  if (syscall(SYS_fchdir, oldroot) < 0) return -1;
  if (syscall(SYS_mount, NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return -1;
  if (syscall(SYS_umount2, ".", MNT_DETACH) < 0) return -1;
  if (syscall(SYS_chdir, "/") < 0) return -1;
  syscall(SYS_close, oldroot);
  syscall(SYS_close, newroot);
  return 0;
}

static int do_move_root(const char *root) {
  if (syscall(SYS_chdir, root) < 0) return -1;
  if (syscall(SYS_mount, root, "/", NULL, MS_MOVE, NULL) < 0) return -1;
  if (syscall(SYS_chroot, ".") < 0) return -1;
  return (int)syscall(SYS_chdir, "/");
}

static int write_file(const char *path, const char *data, size_t len) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = syscall(SYS_write, fd, data, len);
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return n < 0 ? -1 : 0;
}

static int do_capset(const struct step *s) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = (uint32_t)s->a[0];
  data[1].effective = (uint32_t)s->a[1];
  data[0].permitted = (uint32_t)s->a[2];
  data[1].permitted = (uint32_t)s->a[3];
  data[0].inheritable = (uint32_t)s->a[4];
  data[1].inheritable = (uint32_t)s->a[5];
  return (int)syscall(SYS_capset, &hdr, data);
}

static int has_bit(int64_t lo, int64_t hi, int cap) {
  return cap < 32 ? (int)((lo >> cap) & 1) : (int)((hi >> (cap - 32)) & 1);
}

static int do_bounding(const struct step *s) {
  for (int cap = 0; cap <= (int)s->a[2]; cap++) {
    if (has_bit(s->a[0], s->a[1], cap)) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  }
  return 0;
}

static int do_ambient(const struct step *s) {
  for (int cap = 0; cap < 64; cap++) {
    if (!has_bit(s->a[0], s->a[1], cap)) continue;
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -1;
  }
  return 0;
}

static int do_exec(const uint8_t *base, const struct step *s) {
  char *const *cands = (char *const *)(base + s->a[0]);
  char *const *argv = (char *const *)(base + s->a[1]);
  char *const *envp = (char *const *)(base + s->a[2]);
  int first_err = 0;
  if (s->a[3]) {
    /* check only: find the first candidate that can be executed */
    for (int i = 0; cands[i]; i++) {
      struct stat st;
      if (syscall(SYS_faccessat, AT_FDCWD, cands[i], X_OK) == 0) {
        if (syscall(SYS_newfstatat, AT_FDCWD, cands[i], &st, 0) == 0 && !S_ISDIR(st.st_mode)) {
          exec_choice = i;
          return 0;
        }
        if (!first_err) first_err = EACCES;
        continue;
      }
      if (!first_err && errno != ENOENT && errno != ENOTDIR) first_err = errno;
    }
    errno = first_err ? first_err : ENOENT;
    return -1;
  }
  if (exec_choice >= 0) {
    syscall(SYS_execve, cands[exec_choice], argv, envp);
    return -1;
  }
  for (int i = 0; cands[i]; i++) {
    syscall(SYS_execve, cands[i], argv, envp);
    if (!first_err && errno != ENOENT && errno != ENOTDIR) first_err = errno;
  }
  errno = first_err ? first_err : ENOENT;
  return -1;
}

static int send_fd(int sock, int fd, const char *name, size_t namelen) {
  struct msghdr msg;
  struct iovec iov;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&msg, 0, sizeof msg);
  memset(&u, 0, sizeof u);
  iov.iov_base = (void *)name;
  iov.iov_len = namelen;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return syscall(SYS_sendmsg, sock, &msg, 0) < 0 ? -1 : 0;
}

static int do_console(const struct step *s) {
  int master = (int)syscall(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  int unlock = 0;
  if (syscall(SYS_ioctl, master, TIOCSPTLCK, &unlock) < 0) return -1;
  unsigned int ptn = 0;
  if (syscall(SYS_ioctl, master, TIOCGPTN, &ptn) < 0) return -1;
  int slave = (int)syscall(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return -1;
  if (s->a[1] > 0 && s->a[2] > 0) {
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)s->a[1];
    ws.ws_col = (unsigned short)s->a[2];
    syscall(SYS_ioctl, slave, TIOCSWINSZ, &ws);
  }
  char name[40] = "/dev/pts/";
  char num[16];
  char *p = itoa_into(num + sizeof num - 1, (long)ptn);
  num[sizeof num - 1] = 0;
  size_t nl = (size_t)(num + sizeof num - 1 - p);
  memcpy(name + 9, p, nl + 1);
  if (send_fd((int)s->a[0], master, name, 9 + nl) < 0) return -1;
  syscall(SYS_close, master);
  syscall(SYS_close, (int)s->a[0]);
  if (syscall(SYS_setsid) < 0 && errno != EPERM) return -1;
  if (syscall(SYS_ioctl, slave, TIOCSCTTY, 0) < 0) return -1;
  for (int i = 0; i < 3; i++)
    if (syscall(SYS_dup3, slave, i, 0) < 0) return -1;
  if (slave > 2) syscall(SYS_close, slave);
  return 0;
}

static int do_dup(int from, int to) {
  if (from == to) return (int)syscall(SYS_fcntl, to, F_SETFD, 0);
  return (int)syscall(SYS_dup3, from, to, 0);
}

static int do_reset_signals(void) {
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } act;
  memset(&act, 0, sizeof act); /* SIG_DFL */
  for (int sig = 1; sig < 65; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, &act, NULL, 8);
  }
  uint64_t empty = 0;
  return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, 8);
}

static void report(int chan, int step, int err) {
  uint8_t msg[9];
  msg[0] = 'E';
  put_u32(msg + 1, (uint32_t)step);
  put_u32(msg + 5, (uint32_t)err);
  if (chan >= 0) write_all(chan, msg, sizeof msg);
}

static int sync_parent(int chan, uint8_t kind, uint32_t v, int wait) {
  uint8_t msg[5];
  msg[0] = kind;
  put_u32(msg + 1, v);
  if (write_all(chan, msg, sizeof msg) < 0) return -1;
  if (!wait) return 0;
  uint8_t b;
  for (;;) {
    long n = syscall(SYS_read, chan, &b, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) die(1); /* parent gone or aborted: quietly die */
    if (b != 0) die(1);
    return 0;
  }
}

/* Receive one fd (SCM_RIGHTS with one byte of data) into a mount slot. */
/* Set IFF_UP on "lo" (SIOCGIFFLAGS/SIOCSIFFLAGS on a throwaway socket). */
static long do_loopback_up(void) {
  struct ifreq ifr;
  long fd = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  long r = syscall(SYS_ioctl, (int)fd, SIOCGIFFLAGS, &ifr);
  if (r == 0 && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    r = syscall(SYS_ioctl, (int)fd, SIOCSIFFLAGS, &ifr);
  }
  int saved = errno;
  syscall(SYS_close, (int)fd);
  errno = saved;
  return r;
}

static int do_recv_fd(const struct step *s) {
  int chan = (int)s->a[0];
  int64_t slot = s->a[1];
  if (slot < 0 || slot >= NMOUNT_SLOTS) {
    errno = EINVAL;
    return -1;
  }
  if (s->a[2] >= 0 && sync_parent(chan, 'S', (uint32_t)s->a[2], 0) < 0) return -1;
  uint8_t b;
  struct iovec iov = {&b, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  long r;
  do r = syscall(SYS_recvmsg, chan, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  if (r == 0) die(1); /* parent gone */
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    errno = EBADMSG;
    return -1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (mount_slots[slot] >= 0) syscall(SYS_close, mount_slots[slot]);
  mount_slots[slot] = fd;
  return 0;
}

static int do_move_mount(const uint8_t *base, const struct step *s) {
  int64_t slot = s->a[0];
  if (slot < 0 || slot >= NMOUNT_SLOTS || mount_slots[slot] < 0) {
    errno = EBADF;
    return -1;
  }
  int fd = resolve(reg(s->a[3]), str(base, s->a[1]), (int)s->a[2]);
  if (fd < 0) return -1;
  long r = syscall(SYS_move_mount, mount_slots[slot], "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int e = errno;
  syscall(SYS_close, fd);
  syscall(SYS_close, mount_slots[slot]);
  mount_slots[slot] = -1;
  errno = e;
  return (int)r;
}

/* Clone the tree at src (detached), idmap it with the user namespace at a1, send it on a4. */
static int do_idmap_tree(const uint8_t *base, const struct step *s) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (s->a[2] ? AT_RECURSIVE : 0);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, str(base, s->a[0]), flags);
  if (tree < 0) return -1;
  int userns = (int)syscall(SYS_openat, AT_FDCWD, str(base, s->a[1]), O_RDONLY | O_CLOEXEC);
  if (userns < 0) return -1;
  struct lxr_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (uint64_t)userns;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (s->a[3] ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) return -1;
  if (send_fd((int)s->a[4], tree, "m", 1) < 0) return -1;
  syscall(SYS_close, tree);
  syscall(SYS_close, userns);
  return 0;
}

static long raw_clone(unsigned long flags) {
  return syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
}

static int chan_fd = -1;

static void run_plan(const uint8_t *base, size_t len) {
  const struct step *steps = (const struct step *)base;
  size_t n = len / sizeof(struct step);
  for (size_t i = 0; i < n; i++) {
    const struct step *s = &steps[i];
    long r = 0;
    switch (s->op) {
    case OP_END:
      die(0);
      break;
    case OP_SYNC:
      r = sync_parent((int)s->a[0], 'S', (uint32_t)s->a[1], 1);
      break;
    case OP_SETNS:
      r = syscall(SYS_setns, (int)s->a[0], (int)s->a[1]);
      if (r == 0) syscall(SYS_close, (int)s->a[0]);
      break;
    case OP_UNSHARE:
      r = syscall(SYS_unshare, (int)s->a[0]);
      break;
    case OP_SETSID:
      r = syscall(SYS_setsid);
      if (r > 0) r = 0;
      break;
    case OP_SETHOSTNAME:
      r = syscall(SYS_sethostname, str(base, s->a[0]), (size_t)s->a[1]);
      break;
    case OP_SETDOMAINNAME:
      r = syscall(SYS_setdomainname, str(base, s->a[0]), (size_t)s->a[1]);
      break;
    case OP_MOUNT:
      r = do_mount(base, s);
      break;
    case OP_REMOUNT:
      r = do_remount(base, s);
      break;
    case OP_PIVOT_ROOT:
      r = do_pivot_root(str(base, s->a[0]));
      break;
    case OP_MOVE_ROOT:
      r = do_move_root(str(base, s->a[0]));
      break;
    case OP_MKNOD:
      r = do_mknod(base, s);
      break;
    case OP_SYMLINK:
      r = do_symlink(base, s);
      break;
    case OP_WRITE_FILE:
      r = write_file(str(base, s->a[0]), str(base, s->a[1]), (size_t)s->a[2]);
      break;
    case OP_SETRLIMIT: {
      struct rlimit lim = {(rlim_t)s->a[1], (rlim_t)s->a[2]};
      r = syscall(SYS_prlimit64, 0, (int)s->a[0], &lim, NULL);
      break;
    }
    case OP_CAP_BOUNDING:
      r = do_bounding(s);
      break;
    case OP_KEEPCAPS:
      r = syscall(SYS_prctl, PR_SET_KEEPCAPS, (unsigned long)s->a[0], 0, 0, 0);
      break;
    case OP_SETGROUPS:
      r = syscall(SYS_setgroups, (size_t)s->a[0], s->a[0] ? (const gid_t *)(base + s->a[1]) : NULL);
      break;
    case OP_SETRESGID:
      r = syscall(SYS_setresgid, (gid_t)s->a[0], (gid_t)s->a[0], (gid_t)s->a[0]);
      break;
    case OP_SETRESUID:
      r = syscall(SYS_setresuid, (uid_t)s->a[0], (uid_t)s->a[0], (uid_t)s->a[0]);
      break;
    case OP_CAPSET:
      r = do_capset(s);
      break;
    case OP_AMBIENT:
      r = do_ambient(s);
      break;
    case OP_UMASK:
      syscall(SYS_umask, (mode_t)s->a[0]);
      break;
    case OP_NO_NEW_PRIVS:
      r = syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      break;
    case OP_SECCOMP_LISTENER: {
      /* SCMP_ACT_NOTIFY: load with SECCOMP_FILTER_FLAG_NEW_LISTENER and hand the listener
         fd to the runtime, which passes it on to the agent at linux.seccomp.listenerPath */
      struct {
        unsigned short len;
        const void *filter;
      } prog = {(unsigned short)s->a[1], base + s->a[0]};
      long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)s->a[2] | (1U << 3), &prog);
      if (fd < 0) {
        r = -1;
        break;
      }
      r = send_fd((int)s->a[3], (int)fd, "seccompFd", 9);
      syscall(SYS_close, (int)fd);
      break;
    }
    case OP_SECCOMP: {
      struct {
        unsigned short len;
        const void *filter;
      } prog = {(unsigned short)s->a[1], base + s->a[0]};
      r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)s->a[2], &prog);
      if (r > 0) r = 0; /* a notify filter returns its listener fd */
      break;
    }
    case OP_CHDIR:
      r = syscall(SYS_chdir, str(base, s->a[0]));
      break;
    case OP_DUP:
      r = do_dup((int)s->a[0], (int)s->a[1]);
      break;
    case OP_CLOEXEC_FROM:
      r = syscall(SYS_close_range, (unsigned int)s->a[0], ~0U, CLOSE_RANGE_CLOEXEC);
      if (r < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL)) {
        /* old kernels, or a seccomp profile that does not know close_range */
        struct rlimit lim;
        unsigned long max = 65536;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &lim) == 0 && lim.rlim_cur < max) max = lim.rlim_cur;
        for (unsigned long fd = (unsigned long)s->a[0]; fd < max; fd++) syscall(SYS_fcntl, (int)fd, F_SETFD, FD_CLOEXEC);
        r = 0;
      }
      break;
    case OP_CLEAR_CLOEXEC:
      for (int64_t fd = s->a[0]; fd < s->a[0] + s->a[1] && r == 0; fd++)
        r = syscall(SYS_fcntl, (int)fd, F_SETFD, 0);
      break;
    case OP_EXEC:
      r = do_exec(base, s);
      break;
    case OP_OPEN_ROOT:
      r = syscall(SYS_openat, AT_FDCWD, str(base, s->a[0]), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (r >= 0 && s->a[1] >= 0 && s->a[1] < NREGS) {
        if (regs[s->a[1]] > 0) syscall(SYS_close, regs[s->a[1]]);
        regs[s->a[1]] = (int)r;
        r = 0;
      }
      break;
    case OP_MASK_PATH:
      r = do_mask(base, s);
      break;
    case OP_READONLY_PATH:
      r = do_readonly(base, s);
      break;
    case OP_CONSOLE:
      r = do_console(s);
      break;
    case OP_DUMPABLE:
      r = syscall(SYS_prctl, PR_SET_DUMPABLE, (unsigned long)s->a[0], 0, 0, 0);
      break;
    case OP_WAIT_FIFO: {
      uint8_t b;
      for (;;) {
        r = syscall(SYS_read, (int)s->a[0], &b, 1);
        if (r < 0 && errno == EINTR) continue;
        break;
      }
      if (r == 1) {
        syscall(SYS_close, (int)s->a[0]);
        r = 0;
      } else if (r == 0) {
        errno = EPIPE;
        r = -1;
      }
      break;
    }
    case OP_CLONE: {
      /* The new process must not talk to the parent before the parent knows its pid:
         it waits until the old one has reported 'P' and exited (EOF on this pipe). */
      int order[2];
      if (syscall(SYS_pipe2, order, O_CLOEXEC) < 0) {
        r = -1;
        break;
      }
      long pid = raw_clone((unsigned long)s->a[0] | CLONE_PARENT | SIGCHLD);
      if (pid < 0) {
        r = -1;
        break;
      }
      if (pid > 0) {
        syscall(SYS_close, order[0]);
        sync_parent((int)s->a[1], 'P', (uint32_t)pid, 0);
        die(0);
      }
      syscall(SYS_close, order[1]);
      uint8_t b;
      while (syscall(SYS_read, order[0], &b, 1) < 0 && errno == EINTR) {
      }
      syscall(SYS_close, order[0]);
      break;
    }
    case OP_RESET_SIGNALS:
      r = do_reset_signals();
      break;
    case OP_OOM_SCORE_ADJ:
      r = write_file("/proc/self/oom_score_adj", str(base, s->a[0]), (size_t)s->a[1]);
      break;
    case OP_CLOSE:
      syscall(SYS_close, (int)s->a[0]);
      break;
    case OP_PDEATHSIG:
      r = syscall(SYS_prctl, PR_SET_PDEATHSIG, (unsigned long)s->a[0], 0, 0, 0);
      break;
    case OP_SET_PGID_TTY: {
      pid_t pg = (pid_t)syscall(SYS_getpgid, 0);
      r = syscall(SYS_ioctl, (int)s->a[0], TIOCSPGRP, &pg);
      break;
    }
    case OP_CHROOT:
      r = syscall(SYS_chroot, str(base, s->a[0]));
      if (r == 0) r = syscall(SYS_chdir, "/");
      break;
    case OP_RECV_FD:
      r = do_recv_fd(s);
      break;
    case OP_MOVE_MOUNT:
      r = do_move_mount(base, s);
      break;
    case OP_IDMAP_TREE:
      r = do_idmap_tree(base, s);
      break;
    case OP_LOOPBACK_UP:
      r = do_loopback_up();
      break;
    default:
      errno = ENOSYS;
      r = -1;
    }
    if (r < 0) {
      report(chan_fd, (int)i, errno);
      die(127);
    }
  }
  die(0);
}

/*
 * Turn the offset arrays of every EXEC step into pointer arrays, in place.
 * Done in the parent, before clone, so the child only follows pointers.
 * An array is a run of u64 offsets ended by UINT64_MAX.
 */
static void relocate(uint8_t *base, size_t len) {
  struct step *steps = (struct step *)base;
  size_t n = len / sizeof(struct step);
  for (size_t i = 0; i < n && steps[i].op != OP_END; i++) {
    if (steps[i].op != OP_EXEC) continue;
    for (int k = 0; k < 3; k++) {
      uint64_t *arr = (uint64_t *)(base + steps[i].a[k]);
      for (; *arr != UINT64_MAX; arr++) *arr = (uint64_t)(uintptr_t)(base + *arr);
      *arr = 0;
    }
  }
}

/*
 * Clone a child that runs the plan. plan_len covers the steps only; strings
 * follow them in the same buffer. Returns the child's pid or -errno.
 */
/*
 * `parent_chan` is the parent's end of the channel: the child closes its copy first, so that
 * if the parent dies during the setup, the child's next read of the channel sees EOF and it
 * dies, instead of waiting forever on a socket it holds both ends of.
 */
int lxr_spawn(uint8_t *plan, int64_t steps_len, int64_t clone_flags, int chan, int parent_chan) {
  relocate(plan, (size_t)steps_len);
  for (int i = 0; i < NREGS; i++) regs[i] = -1;
  for (int i = 0; i < NMOUNT_SLOTS; i++) mount_slots[i] = -1;
  exec_choice = -1;
  chan_fd = chan;

  /* Block every signal around clone so that no Node handler runs in the child. */
  uint64_t all = ~0ULL, old = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
  long pid = raw_clone((unsigned long)clone_flags | SIGCHLD);
  if (pid == 0) {
    if (parent_chan >= 0) syscall(SYS_close, parent_chan);
    do_reset_signals();
    run_plan(plan, (size_t)steps_len);
    die(127);
  }
  int e = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
  return pid < 0 ? -e : (int)pid;
}

/* ---- small helpers for the Node side (called in the parent only) ---- */

int lxr_socketpair(int *fds) {
  return (int)sys_err(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
}

int lxr_wait(int pid, int *status) {
  for (;;) {
    long r = syscall(SYS_wait4, pid, status, __WALL, NULL);
    if (r < 0 && errno == EINTR) continue;
    return (int)sys_err(r);
  }
}

int lxr_wait_nohang(int pid, int *status) {
  return (int)sys_err(syscall(SYS_wait4, pid, status, __WALL | WNOHANG, NULL));
}

int lxr_flock(int fd, int op) {
  for (;;) {
    long r = syscall(SYS_flock, fd, op);
    if (r < 0 && errno == EINTR) continue;
    return (int)sys_err(r);
  }
}

int lxr_dup_cloexec(int fd) { return (int)sys_err(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3)); }

int lxr_close(int fd) { return (int)sys_err(syscall(SYS_close, fd)); }

/* A unix stream socket with its address: connected (listen = 0) or listening. */
static int unix_socket(const char *path, int listen) {
  int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof addr.sun_path) {
    syscall(SYS_close, fd);
    return -ENAMETOOLONG;
  }
  memcpy(addr.sun_path, path, n);
  long r = listen ? syscall(SYS_bind, fd, &addr, sizeof addr) : syscall(SYS_connect, fd, &addr, sizeof addr);
  if (r == 0 && listen) r = syscall(SYS_listen, fd, 16);
  if (r < 0) {
    int e = errno;
    syscall(SYS_close, fd);
    return -e;
  }
  return fd;
}

int lxr_unix_connect(const char *path) { return unix_socket(path, 0); }

int lxr_recv_fd_data(int sock, char *buf, int len, int *got);

/* Receive one fd sent with SCM_RIGHTS (its payload is dropped). Returns the fd or -errno. */
int lxr_recv_fd(int sock) {
  char name[256];
  int got = 0;
  return lxr_recv_fd_data(sock, name, sizeof name, &got);
}

/* Send fd over a connected unix socket (used by tests' console sockets too). */
int lxr_send_fd(int sock, int fd, const char *name) {
  return send_fd(sock, fd, name, strlen(name)) < 0 ? -errno : 0;
}

int lxr_pidfd_open(int pid) { return (int)sys_err(syscall(SYS_pidfd_open, pid, 0)); }

int lxr_set_subreaper(void) { return (int)sys_err(syscall(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)); }

int lxr_tcgetwinsize(int fd, int *rowscols) {
  struct winsize ws;
  if (syscall(SYS_ioctl, fd, TIOCGWINSZ, &ws) < 0) return -errno;
  rowscols[0] = ws.ws_row;
  rowscols[1] = ws.ws_col;
  return 0;
}

int lxr_tcsetwinsize(int fd, int rows, int cols) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)rows;
  ws.ws_col = (unsigned short)cols;
  return (int)sys_err(syscall(SYS_ioctl, fd, TIOCSWINSZ, &ws));
}

/* mkfifo(3) without libc's wrapper */
int lxr_mkfifo(const char *path, int mode) { return (int)sys_err(syscall(SYS_mknodat, AT_FDCWD, path, S_IFIFO | mode, 0)); }

int lxr_umount(const char *path, int flags) { return (int)sys_err(syscall(SYS_umount2, path, flags)); }

int lxr_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data) {
  return (int)sys_err(syscall(SYS_mount, src, target, fstype, flags, data));
}

/* A listening unix socket (console sockets for tests and the front end). */
int lxr_unix_listen(const char *path) { return unix_socket(path, 1); }

int lxr_accept(int fd) {
  long r;
  do r = syscall(SYS_accept4, fd, NULL, NULL, SOCK_CLOEXEC);
  while (r < 0 && errno == EINTR);
  return (int)sys_err(r);
}

/* Receive one fd sent with SCM_RIGHTS together with its payload (up to len bytes). */
int lxr_recv_fd_data(int sock, char *buf, int len, int *got) {
  struct iovec iov = {buf, (size_t)len};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.b;
  msg.msg_controllen = sizeof u.b;
  long r;
  do r = syscall(SYS_recvmsg, sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  *got = (int)r;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -EBADMSG;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* ---- network namespaces and netlink sockets for lxr/network ----
 *
 * The Node process never enters another namespace. Work that has to happen inside one runs in
 * a short child made with clone(CLONE_VM | CLONE_VFORK): it shares our memory (so it reports
 * through a struct on our stack) and runs on its own small stack, also on ours; we are
 * suspended until it exits. Between clone and exit it makes raw system calls only. Its exit
 * signal is 0, so no SIGCHLD reaches Node; wait4 with __WALL reaps it.
 */
#include <linux/netlink.h>

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Steps reported on failure; keep in sync with lxr/network/netns.ts and netlink.ts. */
enum {
  NS_STEP_NONE = 0,
  NS_STEP_CREATE_FILE = 1, /* creating the (empty) file to bind the netns onto */
  NS_STEP_CLONE = 2,       /* clone with CLONE_NEWNET (or for setns) */
  NS_STEP_LOOPBACK = 3,    /* bringing up lo in the new netns */
  NS_STEP_BIND = 4,        /* bind-mounting the new netns onto the file */
  NS_STEP_OPEN_NETNS = 5,  /* opening the netns file */
  NS_STEP_SETNS = 6,       /* setns into it */
  NS_STEP_SOCKET = 7,      /* socket() inside it */
  NS_STEP_SOCKOPT = 8,     /* setsockopt on the netlink socket */
};

struct ns_job {
  const char *path; /* netns create: the file to bind onto */
  int nsfd;         /* socket: the netns to enter */
  int domain, type, protocol;
  int fd;  /* socket made */
  int err; /* errno of the failed step */
  int step;
};

static int ns_fail(struct ns_job *j, int step) {
  j->err = errno;
  j->step = step;
  return 1;
}

static int netns_create_child(void *arg) {
  struct ns_job *j = arg;
  if (do_loopback_up() < 0) return ns_fail(j, NS_STEP_LOOPBACK);
  if (syscall(SYS_mount, "/proc/thread-self/ns/net", j->path, NULL, MS_BIND, NULL) < 0) return ns_fail(j, NS_STEP_BIND);
  return 0;
}

static int socket_in_netns_child(void *arg) {
  struct ns_job *j = arg;
  if (syscall(SYS_setns, j->nsfd, CLONE_NEWNET) < 0) return ns_fail(j, NS_STEP_SETNS);
  long fd = syscall(SYS_socket, j->domain, j->type | SOCK_CLOEXEC, j->protocol);
  if (fd < 0) return ns_fail(j, NS_STEP_SOCKET);
  j->fd = (int)fd; /* CLONE_FILES: the fd is in our table too */
  return 0;
}

/* Run fn(j) in a CLONE_VM | CLONE_VFORK child with extra clone flags; 0 or -errno (j->step set). */
static int run_ns_child(int (*fn)(void *), struct ns_job *j, unsigned long flags) {
  char stack[16384] __attribute__((aligned(16)));
  uint64_t all = ~0ULL, old = 0;
  /* every signal blocked in the child: no Node handler may run on the little stack */
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
  int pid = clone(fn, stack + sizeof stack, (int)(flags | CLONE_VM | CLONE_VFORK), j);
  int e = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
  if (pid < 0) {
    j->step = NS_STEP_CLONE;
    return -e;
  }
  int status = 0;
  long r;
  do r = syscall(SYS_wait4, pid, &status, __WALL, NULL);
  while (r < 0 && errno == EINTR);
  if (j->step != NS_STEP_NONE) return -(j->err ? j->err : EIO);
  if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    j->step = NS_STEP_CLONE;
    return -EIO;
  }
  return 0;
}

/*
 * Create a network namespace with loopback up and bind-mount it onto path, which must not
 * exist (its directory must, and should be a shared mount point, as `ip netns add` makes
 * /run/netns). Returns 0 or -errno; *step says what failed. Nothing is left on failure.
 */
int lxr_netns_create(const char *path, int *step) {
  struct ns_job j;
  memset(&j, 0, sizeof j);
  j.path = path;
  *step = NS_STEP_CREATE_FILE;
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  syscall(SYS_close, (int)fd);
  int r = run_ns_child(netns_create_child, &j, CLONE_NEWNET);
  *step = j.step;
  if (r < 0) {
    syscall(SYS_umount2, path, MNT_DETACH); /* in case the bind mount was made */
    syscall(SYS_unlinkat, AT_FDCWD, path, 0);
  }
  return r;
}

/*
 * A socket(domain, type | SOCK_CLOEXEC, protocol) made inside the network namespace at
 * nspath (NULL: our own). Sockets keep the namespace they were made in. Returns the fd or
 * -errno; *step says what failed.
 */
int lxr_socket_in_netns(const char *nspath, int domain, int type, int protocol, int *step) {
  *step = NS_STEP_SOCKET;
  if (!nspath) return (int)sys_err(syscall(SYS_socket, domain, type | SOCK_CLOEXEC, protocol));
  struct ns_job j;
  memset(&j, 0, sizeof j);
  j.domain = domain;
  j.type = type;
  j.protocol = protocol;
  j.fd = -1;
  *step = NS_STEP_OPEN_NETNS;
  j.nsfd = (int)syscall(SYS_openat, AT_FDCWD, nspath, O_RDONLY | O_CLOEXEC);
  if (j.nsfd < 0) return -errno;
  int r = run_ns_child(socket_in_netns_child, &j, CLONE_FILES);
  syscall(SYS_close, j.nsfd);
  *step = j.step;
  if (r < 0) {
    if (j.fd >= 0) syscall(SYS_close, j.fd);
    return r;
  }
  return j.fd;
}

/*
 * A NETLINK_ROUTE socket, in the netns at nspath (NULL: ours), with extended acks (the
 * kernel's error text) and capped acks (errors do not echo the whole request), and a receive
 * timeout of 10 s so that a missing answer cannot hang the caller.
 */
int lxr_netlink_open(const char *nspath, int *step) {
  int fd = lxr_socket_in_netns(nspath, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, step);
  if (fd < 0) return fd;
  int one = 1;
  struct timeval tv = {10, 0};
  if (syscall(SYS_setsockopt, fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0 ||
      syscall(SYS_setsockopt, fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0 ||
      syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    int e = errno;
    *step = NS_STEP_SOCKOPT;
    syscall(SYS_close, fd);
    return -e;
  }
  *step = NS_STEP_NONE;
  return fd;
}

/* Send one netlink request (a whole buffer) to the kernel. Returns bytes sent or -errno. */
int lxr_netlink_send(int fd, const uint8_t *buf, int len) {
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  long r;
  do r = syscall(SYS_sendto, fd, buf, (size_t)len, 0, &kernel, sizeof kernel);
  while (r < 0 && errno == EINTR);
  return (int)sys_err(r);
}

/* Receive one netlink datagram into buf. Returns its length, -EMSGSIZE if it did not fit, or -errno. */
int lxr_netlink_recv(int fd, uint8_t *buf, int len) {
  struct iovec iov = {buf, (size_t)len};
  struct sockaddr_nl from;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  long r;
  do r = syscall(SYS_recvmsg, fd, &msg, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (msg.msg_flags & MSG_TRUNC) return -EMSGSIZE;
  return (int)r;
}

/* Send one request and receive the first datagram of the answer (for a worker thread). */
int lxr_netlink_transact(int fd, const uint8_t *req, int len, uint8_t *buf, int buflen) {
  int r = lxr_netlink_send(fd, req, len);
  if (r < 0) return r;
  return lxr_netlink_recv(fd, buf, buflen);
}
