/*
 * What the executor (executor.c, built as the static lxr-init) and the library Node loads
 * (lib.c, netns.c: liblxr.so) share: raw-syscall helpers that never allocate.
 */
#ifndef LXR_COMMON_H
#define LXR_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static inline long sys_err(long r) { return r < 0 ? -errno : r; }

/* close fd, keeping errno; returns r */
static inline int close_keep_errno(int fd, long r) {
  int e = errno;
  syscall(SYS_close, fd);
  errno = e;
  return (int)r;
}

static inline int write_all(int fd, const void *buf, size_t len) {
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

static inline void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Digits of v written backwards ending at end (exclusive); returns the start. */
static inline char *itoa_into(char *end, long v) {
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

/* Send fd with SCM_RIGHTS, with name as the payload. */
static inline int send_fd(int sock, int fd, const char *name, size_t namelen) {
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
  return syscall(SYS_sendmsg, sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/*
 * Receive one fd sent with SCM_RIGHTS, with up to len bytes of payload into buf.
 * Returns the payload's length (0: the peer closed) and *fd, or -1 with errno set.
 */
static inline long recv_fd_msg(int sock, void *buf, size_t len, int *fd) {
  struct iovec iov = {buf, len};
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
  if (r <= 0) return r;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    errno = EBADMSG;
    return -1;
  }
  memcpy(fd, CMSG_DATA(c), sizeof *fd);
  return r;
}

/* Set IFF_UP on "lo" of the caller's network namespace (a throwaway socket's ioctls). */
static inline long loopback_up(void) {
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

/* Every signal back to its default action, none blocked. */
static inline int reset_signals(void) {
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

/* Report the failure of step `step` with errno `err` on the channel: 'E' u32 step i32 errno. */
static inline void report_error(int chan, uint32_t step, int err) {
  uint8_t msg[9];
  msg[0] = 'E';
  put_u32(msg + 1, step);
  put_u32(msg + 5, (uint32_t)err);
  if (chan >= 0) write_all(chan, msg, sizeof msg);
}

#endif
