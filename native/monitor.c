/*
 * lxr-monitor: the parent of a background container's init, in the role podman gives conmon.
 *
 *   lxr-monitor NODE LXR_BIN ID
 *
 * A background container needs a process that outlives the `lxr` command that created it,
 * reaps the init and learns its exit status. A Node process doing only that costs ~60 MB of
 * memory per container; this costs a few hundred KB. The decisions stay in TypeScript:
 *
 *   1. It becomes a child subreaper and runs `NODE LXR_BIN __launch ID [restart]`, which
 *      creates and starts the container through the runtime library (so the init is that
 *      process's child), writes the init's pid to fd 4, reports to its creator on fd 3 (first
 *      launch only), and exits. The init is then reparented to this process.
 *   2. It reaps every child until the init is reaped, keeping its raw wait status.
 *   3. It runs `NODE LXR_BIN __cleanup ID STATUS`, which records the exit, releases what the
 *      container used and applies the restart policy: exit status 10 means "launch again",
 *      after a back-off of 100 ms doubling up to 5 s.
 *
 * Orphans that end up here (code-server started by --ide, processes of the container that
 * outlive a launcher) are reaped too. Signals meant for a terminal are ignored: a container is
 * stopped through its init, never by killing its monitor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build/abi.h"
#define RESTART MONITOR_RESTART_EXIT

static char *node, *bin, *id;

static void logmsg(const char *what) {
  fprintf(stderr, "lxr-monitor %s: %s: %s\n", id, what, strerror(errno));
}

/* Fork and exec `node bin <args>`; fd 4 is `pidfd` (or closed), fd 3 stays only if keep3. */
static pid_t run(char *const args[], int pidfd, int keep3) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (pidfd >= 0) {
    if (pidfd != 4) {
      dup2(pidfd, 4);
      close(pidfd);
    }
  } else {
    close(4);
  }
  if (!keep3) close(3);
  char *argv[8] = {node, bin};
  int i = 2;
  for (int j = 0; args[j] && i < 7; j++) argv[i++] = args[j];
  argv[i] = NULL;
  execv(node, argv);
  _exit(127);
}

/*
 * Reap children until `want` is reaped; returns its raw status (-1: it is not our child).
 * If `also` is reaped on the way, its status goes to *also_status: the init can exit (and be
 * reparented here as a zombie) before its launcher does.
 */
static int reap_until(pid_t want, pid_t also, int *also_status) {
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, 0);
    if (p == want) return status;
    if (p > 0 && p == also && also_status) *also_status = status;
    if (p < 0 && errno == ECHILD) return -1;
  }
}

/*
 * Read the init's pid from the launcher: one line. EOF without one: the launch failed or was
 * not needed. Only up to the newline, since a process the launcher started may hold the pipe.
 */
static pid_t read_pid(int fd) {
  char buf[32];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (memchr(buf, '\n', n) || n >= sizeof(buf) - 1) break;
  }
  buf[n] = 0;
  long v = strtol(buf, NULL, 10);
  return v > 0 ? (pid_t)v : -1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: lxr-monitor NODE LXR_BIN CONTAINER_ID\n");
    return 2;
  }
  node = argv[1];
  bin = argv[2];
  id = argv[3];
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    logmsg("PR_SET_CHILD_SUBREAPER");
    return 1;
  }
  int first = 1;
  long backoff_ms = 100;
  for (;;) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      logmsg("pipe");
      return 1;
    }
    char *launch[] = {"__launch", id, first ? NULL : "restart", NULL};
    /* the child's copy of the write end must survive exec: dup it without O_CLOEXEC */
    int w = fcntl(p[1], F_DUPFD, 5);
    pid_t launcher = run(launch, w, first);
    close(w);
    close(p[1]);
    if (launcher < 0) {
      logmsg("fork");
      return 1;
    }
    if (first) close(3); /* the creator's socket belongs to the first launcher only */
    first = 0;
    pid_t init = read_pid(p[0]);
    close(p[0]);
    int istatus = -1;
    int lstatus = reap_until(launcher, init, &istatus);
    if (init < 0) {
      /* the launcher recorded why (or that a stop came first) and released everything */
      if (!(WIFEXITED(lstatus) && WEXITSTATUS(lstatus) == 0)) fprintf(stderr, "lxr-monitor %s: the launcher failed (status %d)\n", id, lstatus);
      return 0;
    }
    int status = istatus != -1 ? istatus : reap_until(init, 0, NULL);
    if (status == -1) status = 255 << 8; /* lost: cleanup records 255 */
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    char *cleanup[] = {"__cleanup", id, st, NULL};
    pid_t c = run(cleanup, -1, 0);
    if (c < 0) {
      logmsg("fork");
      return 1;
    }
    int cstatus = reap_until(c, 0, NULL);
    if (!(WIFEXITED(cstatus) && WEXITSTATUS(cstatus) == RESTART)) return 0;
    struct timespec ts = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
  }
}
