/*
 * Network namespaces and netlink sockets for lxr/network (part of liblxr.so).
 *
 * The Node process never enters another namespace. Work that has to happen inside one runs in
 * a short child made with clone(CLONE_VM | CLONE_VFORK): it shares our memory (so it reports
 * through a struct on our stack) and runs on its own small stack, also on ours; we are
 * suspended until it exits. Between clone and exit it makes raw system calls only. Its exit
 * signal is 0, so no SIGCHLD reaches Node; wait4 with __WALL reaps it.
 */
#include "common.h"
#include <linux/netlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "build/abi.h"

#include "compat.h"

/* NS_STEP_* come from native/abi.json (build/abi.h). */

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
  if (loopback_up() < 0) return ns_fail(j, NS_STEP_LOOPBACK);
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
