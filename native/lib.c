/*
 * liblxr.so, loaded by Node through koffi (native/index.ts): lxr_spawn, which starts a plan
 * in a new process, and the few syscall wrappers Node lacks. netns.c adds the network
 * namespace helpers. The plan itself is carried out by lxr-init (executor.c).
 *
 * lxr_spawn starts lxr-init from a sealed memfd the way posix_spawn does: a clone that shares
 * our memory (CLONE_VM | CLONE_VFORK, on a small stack of its own, every signal blocked)
 * clears close-on-exec on the fds the plan uses and executes it. Node's memory is never
 * copied, and no copy of Node ever joins or creates a namespace, so none is reachable from a
 * container.
 */
#include "common.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sched.h>
#include <sys/wait.h>
#include <termios.h>
#include "build/abi.h"

#include "compat.h"

static int memfd(const char *name, unsigned int flags) {
  long fd = syscall(SYS_memfd_create, name, flags | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = syscall(SYS_memfd_create, name, flags); /* before Linux 6.3 */
  return (int)fd;
}

/*
 * lxr-init as a sealed memfd, made once per process: its contents can never change, so a
 * container process that reaches /proc/PID/exe of it cannot write through it.
 */
static int helper_fd = -1;

static int sealed_helper(const char *path) {
  if (helper_fd >= 0) return helper_fd;
  int src = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (src < 0) return -errno;
  struct stat st;
  int fd = -1;
  if (syscall(SYS_fstat, src, &st) < 0) goto fail;
  fd = memfd("lxr-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) goto fail;
  for (off_t done = 0; done < st.st_size;) {
    long n = syscall(SYS_sendfile, fd, src, NULL, (size_t)(st.st_size - done));
    if (n <= 0) {
      if (n == 0) errno = EIO;
      goto fail;
    }
    done += n;
  }
  if (syscall(SYS_fchmod, fd, 0555) < 0) goto fail;
  if (syscall(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) goto fail;
  syscall(SYS_close, src);
  helper_fd = fd;
  return fd;
fail:;
  int e = errno;
  syscall(SYS_close, src);
  if (fd >= 0) syscall(SYS_close, fd);
  return -e;
}

struct spawn_job {
  int exe, planfd, chan, parent_chan;
  const int *keep;
  int nkeep;
  char **argv, **envp;
};

/* The child: our memory, its own fd table. Raw syscalls only, until execveat replaces it. */
static int spawn_child(void *arg) {
  struct spawn_job *j = arg;
  if (j->parent_chan >= 0) syscall(SYS_close, j->parent_chan);
  for (int i = 0; i < j->nkeep; i++) syscall(SYS_fcntl, j->keep[i], F_SETFD, 0);
  syscall(SYS_fcntl, j->planfd, F_SETFD, 0);
  syscall(SYS_execveat, j->exe, "", j->argv, j->envp, AT_EMPTY_PATH);
  report_error(j->chan, LXR_EXEC_STEP, errno);
  syscall(SYS_exit, 127);
  return 127;
}

/*
 * Start a process carrying out a plan. plan/len is the whole encoded plan, steps_len the
 * part holding the steps. keep lists (sorted) the fds the plan uses; chan is one of them,
 * the child's end of the channel; parent_chan is the runtime's end, which the child closes
 * first (so that a dying runtime is seen as EOF). clone_flags are namespace flags of the
 * clone itself (0 except for a helper that only holds a namespace). helper is the path of
 * lxr-init. Returns the child's pid or -errno.
 */
int lxr_spawn(const uint8_t *plan, int64_t len, int64_t steps_len, int64_t clone_flags, int chan, int parent_chan,
              const int *keep, int nkeep, const char *helper) {
  enum { MAX_KEEP = 256 };
  if (nkeep > MAX_KEEP) return -E2BIG;
  int exe = sealed_helper(helper);
  if (exe < 0) return exe;
  int planfd = memfd("lxr-plan", MFD_CLOEXEC);
  if (planfd < 0) return -errno;
  if (write_all(planfd, plan, (size_t)len) < 0) {
    int e = errno;
    syscall(SYS_close, planfd);
    return -e;
  }
  /* argv, made before clone: the child only follows pointers */
  static char nums[MAX_KEEP + 3][24];
  static char *argv[MAX_KEEP + 5];
  long vals[3] = {planfd, (long)steps_len, chan};
  int argc = 0;
  argv[argc++] = "lxr-init";
  for (int i = 0; i < 3 + nkeep; i++) {
    char *end = nums[i] + sizeof nums[i] - 1;
    *end = 0;
    argv[argc++] = itoa_into(end, i < 3 ? vals[i] : keep[i - 3]);
  }
  argv[argc] = NULL;
  static char *envp[] = {NULL};

  struct spawn_job job = {exe, planfd, chan, parent_chan, keep, nkeep, argv, envp};
  /* every signal blocked around clone, so that no Node handler runs in the child */
  uint64_t all = ~0ULL, old = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
  static char stack[32768] __attribute__((aligned(16)));
  int pid = clone(spawn_child, stack + sizeof stack, (int)(clone_flags | CLONE_VM | CLONE_VFORK | SIGCHLD), &job);
  int e = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
  syscall(SYS_close, planfd);
  return pid < 0 ? -e : pid;
}

/* ---- small helpers for the Node side ---- */

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
  int fd = -1;
  long r = recv_fd_msg(sock, buf, (size_t)len, &fd);
  if (r < 0) return -errno;
  *got = (int)r;
  if (r == 0) return -EBADMSG; /* closed, no fd */
  return fd;
}

/* Receive one fd sent with SCM_RIGHTS (its payload is dropped). Returns the fd or -errno. */
int lxr_recv_fd(int sock) {
  char name[256];
  int got = 0;
  return lxr_recv_fd_data(sock, name, sizeof name, &got);
}

/* Send fd over a connected unix socket (console sockets in tests too). */
int lxr_send_fd(int sock, int fd, const char *name) { return send_fd(sock, fd, name, strlen(name)) < 0 ? -errno : 0; }

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
