/*
 * lxr-init: the plan executor. A small static program that carries out a plan of steps
 * prepared in TypeScript (runtime/process/plan.ts), with raw syscalls only.
 *
 * lib.c's lxr_spawn clones the Node process (fork-like) and the clone at once executes this
 * program from a sealed memfd, before it joins or creates any namespace. So no process that
 * enters a container is a copy of Node: /proc/PID/exe is the sealed memfd, which no one can
 * write (CVE-2019-5736 class), and the only fds it holds are those the plan names.
 *
 *   lxr-init PLAN_FD STEPS_LEN CHAN_FD [KEEP_FD...]
 *
 * PLAN_FD is a memfd holding the steps (struct step, native/abi.json) followed by their data;
 * strings and arrays are referred to by offset. The child reports on the channel:
 *   'S' u32 id               a SYNC step: it waits for one zero byte
 *   'P' u32 pid              a CLONE step made a new process (pid in our pid namespace)
 *   'E' u32 step i32 errno   a step failed; the process exits 127
 * The channel is close-on-exec, so EOF without 'E' means the final execve happened.
 * TypeScript decides everything; a step does one generic thing with the values it is given.
 */
#include "common.h"
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <termios.h>
#include "build/abi.h"

#include "compat.h"
#include "in-root.h"

static int regs[LXR_REGS];
static int slots[LXR_MOUNT_SLOTS];
static int exec_choice = -1;
static int chan_fd = -1;
static char procbuf[64];

__attribute__((noreturn)) static void die(int code) {
  /* a seccomp profile may refuse even exit_group (ERRNO default): then fault */
  syscall(SYS_exit_group, code);
  for (;;) __builtin_trap();
}

static const char *str(const uint8_t *base, int64_t off) { return off < 0 ? NULL : (const char *)(base + off); }

static const char *procfd(int fd) {
  static const char prefix[] = "/proc/self/fd/";
  char num[24];
  char *s = itoa_into(num + sizeof num - 1, fd);
  num[sizeof num - 1] = 0;
  memcpy(procbuf, prefix, sizeof prefix - 1);
  memcpy(procbuf + sizeof prefix - 1, s, (size_t)(num + sizeof num - s));
  return procbuf;
}

static int reg(int64_t r) { return (r >= 0 && r < LXR_REGS) ? regs[r] : -1; }

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

static int do_mount(const uint8_t *base, const struct args_mount *a) {
  int fd = resolve(reg(a->root), str(base, a->target), (int)a->mk);
  if (fd < 0) return -1;
  char target[64];
  strcpy(target, procfd(fd));
  long r = syscall(SYS_mount, str(base, a->src), target, str(base, a->fstype), (unsigned long)a->flags, str(base, a->data));
  return close_keep_errno(fd, r);
}

static int do_remount(const uint8_t *base, const struct args_remount *a) {
  int fd = resolve(reg(a->root), str(base, a->target), 0);
  if (fd < 0) return -1;
  unsigned long flags = (unsigned long)a->flags | locked_flags(fd) | MS_REMOUNT | MS_BIND;
  return close_keep_errno(fd, syscall(SYS_mount, NULL, procfd(fd), NULL, flags, NULL));
}

static int take_slot(int64_t slot) {
  if (slot < 0 || slot >= LXR_MOUNT_SLOTS || slots[slot] < 0) {
    errno = EBADF;
    return -1;
  }
  int fd = slots[slot];
  slots[slot] = -1;
  return fd;
}

static int put_slot(int64_t slot, int fd) {
  if (slot < 0 || slot >= LXR_MOUNT_SLOTS) {
    syscall(SYS_close, fd);
    errno = EINVAL;
    return -1;
  }
  if (slots[slot] >= 0) syscall(SYS_close, slots[slot]);
  slots[slot] = fd;
  return 0;
}

/* Attach the detached mount tree onto the target fd. Closes both. */
static int attach(int tree, int target) {
  long r = syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int e = errno;
  syscall(SYS_close, tree);
  syscall(SYS_close, target);
  errno = e;
  return (int)r;
}

static int do_open_tree(const uint8_t *base, const struct args_open_tree *a) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (a->recursive ? AT_RECURSIVE : 0);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, str(base, a->path), flags);
  if (tree < 0) return -1;
  if (a->attr_set) {
    struct mount_attr_arg attr = {(uint64_t)a->attr_set, 0, 0, 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (a->recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
      return close_keep_errno(tree, -1);
  }
  return put_slot(a->slot, tree);
}

/* linux.maskedPaths: a directory gets an empty tmpfs, anything else the mount in slot. */
static int do_mask(const uint8_t *base, const struct args_mask_path *a) {
  int tree = take_slot(a->slot);
  if (tree < 0) return -1;
  int fd = resolve(reg(a->root), str(base, a->path), 0);
  if (fd < 0) return close_keep_errno(tree, -1);
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) < 0) {
    syscall(SYS_close, tree);
    return close_keep_errno(fd, -1);
  }
  if (!S_ISDIR(st.st_mode)) return attach(tree, fd);
  syscall(SYS_close, tree);
  char target[64];
  strcpy(target, procfd(fd));
  return close_keep_errno(fd, syscall(SYS_mount, "tmpfs", target, "tmpfs", (unsigned long)a->tmpfs_flags, str(base, a->tmpfs_data)));
}

static int do_readonly(const uint8_t *base, const struct args_readonly_path *a) {
  const char *path = str(base, a->path);
  int rootfd = reg(a->root);
  int fd = resolve(rootfd, path, 0);
  if (fd < 0) return -1;
  char target[64];
  strcpy(target, procfd(fd));
  long r = syscall(SYS_mount, target, target, NULL, MS_BIND | MS_REC, NULL);
  syscall(SYS_close, fd);
  if (r < 0) return -1;
  /* the bind made a new mount on top: resolve again to reach it */
  fd = resolve(rootfd, path, 0);
  if (fd < 0) return -1;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(fd);
  return close_keep_errno(fd, syscall(SYS_mount, NULL, procfd(fd), NULL, flags, NULL));
}

static int do_mount_setattr(const uint8_t *base, const struct args_mount_setattr *a) {
  int fd = resolve(reg(a->root), str(base, a->target), 0);
  if (fd < 0) return -1;
  struct mount_attr_arg attr = {(uint64_t)a->attr_set, (uint64_t)a->attr_clr, 0, 0};
  return close_keep_errno(fd, syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (a->recursive ? AT_RECURSIVE : 0), &attr, sizeof attr));
}

static int do_mkdir_in_root(const uint8_t *base, const struct args_mkdir_in_root *a) {
  int fd = resolve(reg(a->root), str(base, a->path), 1);
  return fd < 0 ? -1 : close_keep_errno(fd, 0);
}

static int do_mknod(const uint8_t *base, const struct args_mknod *a) {
  const char *name;
  int d = resolve_parent_dir(reg(a->root), str(base, a->path), &name);
  if (d < 0) return -1;
  long r = syscall(SYS_mknodat, d, name, (mode_t)a->mode, (dev_t)a->dev);
  if (r < 0 && errno == EEXIST) {
    syscall(SYS_unlinkat, d, name, 0);
    r = syscall(SYS_mknodat, d, name, (mode_t)a->mode, (dev_t)a->dev);
  }
  if (r == 0) r = syscall(SYS_fchownat, d, name, (uid_t)a->uid, (gid_t)a->gid, AT_SYMLINK_NOFOLLOW);
  if (r == 0) {
    /* mknod is subject to the umask: set the mode asked for */
    int f = (int)syscall(SYS_openat, d, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (f >= 0) r = close_keep_errno(f, syscall(SYS_fchmodat, AT_FDCWD, procfd(f), (mode_t)(a->mode & 07777), 0));
  }
  return close_keep_errno(d, r);
}

static int do_symlink(const uint8_t *base, const struct args_symlink *a) {
  const char *name;
  int d = resolve_parent_dir(reg(a->root), str(base, a->link), &name);
  if (d < 0) return -1;
  long r = syscall(SYS_symlinkat, str(base, a->target), d, name);
  if (r < 0 && errno == EEXIST) r = 0;
  return close_keep_errno(d, r);
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
  return close_keep_errno(fd, n < 0 ? -1 : 0);
}

static int do_capset(const struct args_capset *a) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = (uint32_t)a->eff_lo;
  data[1].effective = (uint32_t)a->eff_hi;
  data[0].permitted = (uint32_t)a->perm_lo;
  data[1].permitted = (uint32_t)a->perm_hi;
  data[0].inheritable = (uint32_t)a->inh_lo;
  data[1].inheritable = (uint32_t)a->inh_hi;
  return (int)syscall(SYS_capset, &hdr, data);
}

static int has_bit(int64_t lo, int64_t hi, int cap) {
  return cap < 32 ? (int)((lo >> cap) & 1) : (int)((hi >> (cap - 32)) & 1);
}

static int do_bounding(const struct args_cap_bounding *a) {
  for (int cap = 0; cap <= (int)a->last_cap; cap++) {
    if (has_bit(a->keep_lo, a->keep_hi, cap)) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  }
  return 0;
}

static int do_ambient(const struct args_ambient *a) {
  for (int cap = 0; cap < 64; cap++) {
    if (!has_bit(a->lo, a->hi, cap)) continue;
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -1;
  }
  return 0;
}

static int do_exec(const uint8_t *base, const struct args_exec *a) {
  char *const *cands = (char *const *)(base + a->paths);
  char *const *argv = (char *const *)(base + a->argv);
  char *const *envp = (char *const *)(base + a->envp);
  int first_err = 0;
  if (a->check) {
    /* find the first candidate that can be executed */
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

static int do_console(const struct args_console *a) {
  int master = (int)syscall(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  int unlock = 0;
  unsigned int ptn = 0;
  if (syscall(SYS_ioctl, master, TIOCSPTLCK, &unlock) < 0) return -1;
  if (syscall(SYS_ioctl, master, TIOCGPTN, &ptn) < 0) return -1;
  int slave = (int)syscall(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return -1;
  if (a->rows > 0 && a->cols > 0) {
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)a->rows;
    ws.ws_col = (unsigned short)a->cols;
    syscall(SYS_ioctl, slave, TIOCSWINSZ, &ws);
  }
  char name[40] = "/dev/pts/";
  char num[16];
  char *p = itoa_into(num + sizeof num - 1, (long)ptn);
  num[sizeof num - 1] = 0;
  size_t nl = (size_t)(num + sizeof num - 1 - p);
  memcpy(name + 9, p, nl + 1);
  if (send_fd((int)a->sock, master, name, 9 + nl) < 0) return -1;
  syscall(SYS_close, master);
  syscall(SYS_close, (int)a->sock);
  if (syscall(SYS_setsid) < 0 && errno != EPERM) return -1;
  if (syscall(SYS_ioctl, slave, TIOCSCTTY, 0) < 0) return -1;
  for (int i = 0; i < 3; i++)
    if ((i == slave ? syscall(SYS_fcntl, i, F_SETFD, 0) : syscall(SYS_dup3, slave, i, 0)) < 0) return -1;
  if (slave > 2) syscall(SYS_close, slave);
  return 0;
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
    if (n != 1 || b != 0) die(1); /* the runtime is gone or gave up: quietly die */
    return 0;
  }
}

/* Receive one fd (SCM_RIGHTS with one byte of data) into a mount slot. */
static int do_recv_fd(const struct args_recv_fd *a) {
  int chan = (int)a->chan;
  if (a->sync >= 0 && sync_parent(chan, 'S', (uint32_t)a->sync, 0) < 0) return -1;
  uint8_t b;
  int fd = -1;
  long r = recv_fd_msg(chan, &b, 1, &fd);
  if (r < 0) return -1;
  if (r == 0) die(1); /* the runtime is gone */
  return put_slot(a->slot, fd);
}

static int do_move_mount(const uint8_t *base, const struct args_move_mount *a) {
  int tree = take_slot(a->slot);
  if (tree < 0) return -1;
  int fd = resolve(reg(a->root), str(base, a->target), (int)a->mk);
  if (fd < 0) return close_keep_errno(tree, -1);
  return attach(tree, fd);
}

/* Clone the tree at src (detached), idmap it with the user namespace at userns, send it on sock. */
static int do_idmap_tree(const uint8_t *base, const struct args_idmap_tree *a) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (a->recursive ? AT_RECURSIVE : 0);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, str(base, a->src), flags);
  if (tree < 0) return -1;
  int userns = (int)syscall(SYS_openat, AT_FDCWD, str(base, a->userns), O_RDONLY | O_CLOEXEC);
  if (userns < 0) return -1;
  struct mount_attr_arg attr = {MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (a->recursive_idmap ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) return -1;
  if (send_fd((int)a->sock, tree, "m", 1) < 0) return -1;
  syscall(SYS_close, tree);
  syscall(SYS_close, userns);
  return 0;
}

static int do_seccomp(const uint8_t *base, int64_t filter, int64_t count, int64_t flags, int sock) {
  struct {
    unsigned short len;
    const void *filter;
  } prog = {(unsigned short)count, base + filter};
  unsigned int f = (unsigned int)flags | (sock >= 0 ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f, &prog);
  if (fd < 0 || sock < 0) return fd < 0 ? -1 : 0;
  /* SCMP_ACT_NOTIFY: hand the listener to the runtime, which passes it to listenerPath */
  return close_keep_errno((int)fd, send_fd(sock, (int)fd, "seccompFd", 9));
}

static int do_wait_fifo(int fd) {
  uint8_t b;
  long r;
  do r = syscall(SYS_read, fd, &b, 1);
  while (r < 0 && errno == EINTR);
  if (r == 1) return close_keep_errno(fd, 0);
  if (r == 0) errno = EPIPE;
  return -1;
}

/* The new process must not talk to the runtime before it knows its pid: it waits until the
   old one has reported 'P' and exited (EOF on this pipe). */
static int do_clone(const struct args_clone *a) {
  int order[2];
  if (syscall(SYS_pipe2, order, O_CLOEXEC) < 0) return -1;
  long pid = syscall(SYS_clone, (unsigned long)a->flags | CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
  if (pid < 0) return -1;
  if (pid > 0) {
    syscall(SYS_close, order[0]);
    sync_parent((int)a->chan, 'P', (uint32_t)pid, 0);
    die(0);
  }
  syscall(SYS_close, order[1]);
  uint8_t b;
  while (syscall(SYS_read, order[0], &b, 1) < 0 && errno == EINTR) {
  }
  syscall(SYS_close, order[0]);
  return 0;
}

static int do_cloexec_from(unsigned int first) {
  if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  /* old kernels */
  struct rlimit lim;
  unsigned long max = 65536;
  if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &lim) == 0 && lim.rlim_cur < max) max = lim.rlim_cur;
  for (unsigned long fd = first; fd < max; fd++) syscall(SYS_fcntl, (int)fd, F_SETFD, FD_CLOEXEC);
  return 0;
}

static long do_syscall(const uint8_t *base, const struct args_syscall *a) {
  const int64_t *v = &a->a0;
  long x[5];
  for (int k = 0; k < 5; k++) x[k] = (a->pointers >> k) & 1 ? (long)(uintptr_t)(base + v[k]) : (long)v[k];
  long r = syscall((long)a->nr, x[0], x[1], x[2], x[3], x[4]);
  return r < 0 ? -1 : 0;
}

static long run_step(const uint8_t *base, const struct step *s) {
  const void *p = s->a;
  switch (s->op) {
  case OP_SYNC: return sync_parent((int)ARGS(p, sync)->chan, 'S', (uint32_t)ARGS(p, sync)->id, 1);
  case OP_SETNS: {
    int fd = (int)ARGS(p, setns)->ns;
    long r = syscall(SYS_setns, fd, (int)ARGS(p, setns)->nstype);
    if (r == 0) syscall(SYS_close, fd);
    return r;
  }
  case OP_UNSHARE: return syscall(SYS_unshare, (int)ARGS(p, unshare)->flags);
  case OP_SETSID: return syscall(SYS_setsid) < 0 ? -1 : 0;
  case OP_SETHOSTNAME: return syscall(SYS_sethostname, str(base, ARGS(p, sethostname)->name), (size_t)ARGS(p, sethostname)->len);
  case OP_SETDOMAINNAME: return syscall(SYS_setdomainname, str(base, ARGS(p, setdomainname)->name), (size_t)ARGS(p, setdomainname)->len);
  case OP_MOUNT: return do_mount(base, p);
  case OP_REMOUNT: return do_remount(base, p);
  case OP_PIVOT_ROOT: return do_pivot_root(str(base, ARGS(p, pivot_root)->path));
  case OP_MOVE_ROOT: return do_move_root(str(base, ARGS(p, move_root)->path));
  case OP_MKNOD: return do_mknod(base, p);
  case OP_SYMLINK: return do_symlink(base, p);
  case OP_WRITE_FILE: {
    const struct args_write_file *a = p;
    return write_file(str(base, a->path), str(base, a->data), (size_t)a->len);
  }
  case OP_SETRLIMIT: {
    const struct args_setrlimit *a = p;
    struct rlimit lim = {(rlim_t)a->soft, (rlim_t)a->hard};
    return syscall(SYS_prlimit64, 0, (int)a->resource, &lim, NULL);
  }
  case OP_CAP_BOUNDING: return do_bounding(p);
  case OP_KEEPCAPS: return syscall(SYS_prctl, PR_SET_KEEPCAPS, (unsigned long)ARGS(p, keepcaps)->on, 0, 0, 0);
  case OP_SETGROUPS: {
    const struct args_setgroups *a = p;
    return syscall(SYS_setgroups, (size_t)a->count, a->count ? (const gid_t *)(base + a->gids) : NULL);
  }
  case OP_SETRESGID: {
    gid_t g = (gid_t)ARGS(p, setresgid)->gid;
    return syscall(SYS_setresgid, g, g, g);
  }
  case OP_SETRESUID: {
    uid_t u = (uid_t)ARGS(p, setresuid)->uid;
    return syscall(SYS_setresuid, u, u, u);
  }
  case OP_CAPSET: return do_capset(p);
  case OP_AMBIENT: return do_ambient(p);
  case OP_UMASK: syscall(SYS_umask, (mode_t)ARGS(p, umask)->mask); return 0;
  case OP_NO_NEW_PRIVS: return syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  case OP_SECCOMP: {
    const struct args_seccomp *a = p;
    return do_seccomp(base, a->filter, a->count, a->flags, -1);
  }
  case OP_SECCOMP_LISTENER: {
    const struct args_seccomp_listener *a = p;
    return do_seccomp(base, a->filter, a->count, a->flags, (int)a->sock);
  }
  case OP_CHDIR: return syscall(SYS_chdir, str(base, ARGS(p, chdir)->path));
  case OP_DUP: {
    int from = (int)ARGS(p, dup)->from, to = (int)ARGS(p, dup)->to;
    return from == to ? syscall(SYS_fcntl, to, F_SETFD, 0) : syscall(SYS_dup3, from, to, 0);
  }
  case OP_CLOEXEC_FROM: return do_cloexec_from((unsigned int)ARGS(p, cloexec_from)->first);
  case OP_CLEAR_CLOEXEC: {
    const struct args_clear_cloexec *a = p;
    for (int64_t fd = a->first; fd < a->first + a->count; fd++)
      if (syscall(SYS_fcntl, (int)fd, F_SETFD, 0) < 0) return -1;
    return 0;
  }
  case OP_EXEC: return do_exec(base, p);
  case OP_OPEN_ROOT: {
    const struct args_open_root *a = p;
    long fd = syscall(SYS_openat, AT_FDCWD, str(base, a->path), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (a->reg < 0 || a->reg >= LXR_REGS) return close_keep_errno((int)fd, (errno = EINVAL, -1));
    if (regs[a->reg] >= 0) syscall(SYS_close, regs[a->reg]);
    regs[a->reg] = (int)fd;
    return 0;
  }
  case OP_MASK_PATH: return do_mask(base, p);
  case OP_READONLY_PATH: return do_readonly(base, p);
  case OP_CONSOLE: return do_console(p);
  case OP_DUMPABLE: return syscall(SYS_prctl, PR_SET_DUMPABLE, (unsigned long)ARGS(p, dumpable)->on, 0, 0, 0);
  case OP_WAIT_FIFO: return do_wait_fifo((int)ARGS(p, wait_fifo)->fifo);
  case OP_CLONE: return do_clone(p);
  case OP_CHROOT: {
    long r = syscall(SYS_chroot, str(base, ARGS(p, chroot)->path));
    return r == 0 ? syscall(SYS_chdir, "/") : r;
  }
  case OP_RECV_FD: return do_recv_fd(p);
  case OP_MOVE_MOUNT: return do_move_mount(base, p);
  case OP_IDMAP_TREE: return do_idmap_tree(base, p);
  case OP_LOOPBACK_UP: return loopback_up();
  case OP_OPEN_TREE: return do_open_tree(base, p);
  case OP_SYSCALL: return do_syscall(base, p);
  case OP_MKDIR_IN_ROOT: return do_mkdir_in_root(base, p);
  case OP_MOUNT_SETATTR: return do_mount_setattr(base, p);
  default: errno = ENOSYS; return -1;
  }
}

static void run_plan(const uint8_t *base, size_t steps_len) {
  const struct step *steps = (const struct step *)base;
  size_t n = steps_len / sizeof(struct step);
  for (size_t i = 0; i < n && steps[i].op != OP_END; i++) {
    if (run_step(base, &steps[i]) < 0 && errno != steps[i].ok_errno) {
      report_error(chan_fd, (uint32_t)i, errno);
      die(127);
    }
  }
  die(0);
}

/* Turn the offset lists of every EXEC step into pointer lists, in place (UINT64_MAX ends one). */
static void relocate(uint8_t *base, size_t steps_len) {
  struct step *steps = (struct step *)base;
  for (size_t i = 0; i < steps_len / sizeof(struct step); i++) {
    if (steps[i].op != OP_EXEC) continue;
    const struct args_exec *a = (const void *)steps[i].a;
    int64_t lists[3] = {a->paths, a->argv, a->envp};
    for (int k = 0; k < 3; k++) {
      uint64_t *arr = (uint64_t *)(base + lists[k]);
      for (; *arr != UINT64_MAX; arr++) *arr = (uint64_t)(uintptr_t)(base + *arr);
      *arr = 0;
    }
  }
}

static long parse_fd(const char *s) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

int main(int argc, char **argv) {
  /* first: nothing may attach to us, and no handler or mask of Node's may remain */
  syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  reset_signals();
  for (int i = 0; i < LXR_REGS; i++) regs[i] = -1;
  for (int i = 0; i < LXR_MOUNT_SLOTS; i++) slots[i] = -1;
  if (argc < 4) die(126);
  long planfd = parse_fd(argv[1]), steps_len = parse_fd(argv[2]);
  chan_fd = (int)parse_fd(argv[3]);
  struct stat st;
  if (planfd < 0 || steps_len < 0 || syscall(SYS_fstat, (int)planfd, &st) < 0 || st.st_size < steps_len) die(126);
  uint8_t *base = (uint8_t *)syscall(SYS_mmap, NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, (int)planfd, 0);
  if (base == MAP_FAILED) {
    report_error(chan_fd, LXR_EXEC_STEP, errno);
    die(127);
  }
  syscall(SYS_close, (int)planfd);
  /* close every fd but those the plan names (given sorted) */
  unsigned int from = 0;
  for (int i = 4; i <= argc; i++) {
    long keep = i < argc ? parse_fd(argv[i]) : -1;
    unsigned int upto = keep < 0 ? ~0U : (unsigned int)keep;
    if (upto > from) syscall(SYS_close_range, from, upto - 1, 0);
    if (keep >= 0) from = (unsigned int)keep + 1;
  }
  /* 0, 1 and 2 stay taken (by /dev/null until the plan sets them up), so that no fd the
     steps open lands there and is then replaced by the container's stdio */
  for (int fd = 0; fd < 3; fd++)
    if (syscall(SYS_fcntl, fd, F_GETFD) < 0) {
      long n = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        syscall(SYS_dup3, (int)n, fd, 0);
        syscall(SYS_close, (int)n);
      }
    }
  relocate(base, (size_t)steps_len);
  run_plan(base, (size_t)steps_len);
}
