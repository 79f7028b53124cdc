/*
 * lxr-monitor: the parent of a background container's init, in the role podman gives conmon.
 *
 *   lxr-monitor NODE LXR_BIN ID [LOG_PATH]
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
 *      after a back-off of 100 ms doubling up to 5 s. Unless `lxr rm -f` left the file
 *      CLEANUP_TAKEN beside the log before it killed the container: then rm releases the
 *      container in its own process, and the monitor just ends (no second Node start).
 *
 * Logs: given the container's log file on fd 5, it gives every launcher two pipes on fds 5 and
 * 6, for the container's stdout and stderr, and a thread of its own writes what comes through
 * them to the log, one line per record as conmon's k8s-file driver does:
 * `2024-01-02T03:04:05.123456789Z stdout F text` (P: a partial line, continued by the next
 * record). `lxr logs` reads them back apart, with their times.
 *
 * Rotation (--log-opt max-size/max-file): the launcher's report on fd 4 carries the limits
 * TypeScript decided, `PID MAX_SIZE MAX_FILE` (MAX_SIZE 0: never). Before writing a record that would
 * take the file over MAX_SIZE, the log thread renames LOG_PATH.(n-1) -> LOG_PATH.n ... and
 * LOG_PATH -> LOG_PATH.1 (the oldest, LOG_PATH.(MAX_FILE-1), is dropped) and writes on in a
 * fresh LOG_PATH, as docker's json-file driver keeps its files. The writer rotates itself, so
 * no line is lost (a rotation by another process, copy-then-truncate, loses what comes between
 * the copy and the truncate). The log thread waits for the first report, so the limits hold
 * from the container's first line.
 *
 * Orphans that end up here (code-server started by --ide, processes of the container that
 * outlive a launcher) are reaped too. Signals meant for a terminal are ignored: a container is
 * stopped through its init, never by killing its monitor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build/abi.h"
#define RESTART MONITOR_RESTART_EXIT

static char *node, *bin, *id;

static void logmsg(const char *what) {
  fprintf(stderr, "lxr-monitor %s: %s: %s\n", id, what, strerror(errno));
}

/* ------------------------------------------------------------------ the log */
static int logfd = -1; /* ctr.log, O_APPEND */
static int logdir = -1; /* LOG_PATH's directory (O_PATH), where rotation renames */
static const char *logname; /* LOG_PATH's last component */
static long long log_size; /* bytes in logfd's file */
static long long max_size; /* 0: no rotation */
static long max_file = 1;
static int rotate_failed; /* report a failing rotation once, not for every record */
static int outw = -1, errw = -1; /* the pipes' write ends, handed to every launcher */
static pthread_mutex_t logmu = PTHREAD_MUTEX_INITIALIZER;

#define LINE_MAX_BYTES 16384
struct stream {
  int fd;
  const char *name;
  size_t n;
  char buf[LINE_MAX_BYTES];
};
static struct stream streams[2] = {{-1, "stdout", 0, {0}}, {-1, "stderr", 0, {0}}};

static int high_fd(int fd) {
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return n;
}

/* LOG_PATH.i, or LOG_PATH itself for i == 0 */
static void rotated_name(char *out, size_t size, long i) {
  if (i == 0) snprintf(out, size, "%s", logname);
  else snprintf(out, size, "%s.%ld", logname, i);
}

/*
 * Shift the files and go on in a fresh LOG_PATH. The fresh file is made first, under a
 * temporary name, so that a failure leaves the current file in use (nothing is lost, the file
 * only grows). LOG_PATH always names a file: it becomes LOG_PATH.1 by a hard link, then the
 * fresh file replaces it by rename (a reader that opens it meanwhile sees one of the two).
 */
static void rotate(void) {
  if (logdir < 0) return;
  char from[512], to[512], fresh[512];
  snprintf(fresh, sizeof(fresh), "%s.rotating", logname);
  int fd = openat(logdir, fresh, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (!rotate_failed++) logmsg("rotating the log: creating the fresh file");
    return;
  }
  for (long i = max_file - 2; i >= 1; i--) {
    rotated_name(from, sizeof(from), i);
    rotated_name(to, sizeof(to), i + 1);
    if (renameat(logdir, from, logdir, to) != 0 && errno != ENOENT && !rotate_failed++) logmsg("rotating the log: rename");
  }
  if (max_file > 1) {
    rotated_name(to, sizeof(to), 1);
    if (linkat(logdir, logname, logdir, to, 0) != 0) {
      /* LOG_PATH.1 is still there (its rename failed): replace it */
      unlinkat(logdir, to, 0);
      if (linkat(logdir, logname, logdir, to, 0) != 0) {
        /* keep writing the current file rather than drop it */
        if (!rotate_failed++) logmsg("rotating the log: link");
        unlinkat(logdir, fresh, 0);
        close(fd);
        return;
      }
    }
  }
  if (renameat(logdir, fresh, logdir, logname) != 0) {
    if (!rotate_failed++) logmsg("rotating the log: rename of the fresh file");
    unlinkat(logdir, fresh, 0);
    close(fd);
    return;
  }
  close(logfd);
  logfd = high_fd(fd);
  log_size = 0;
}

/* One record, in one write: a reader never sees half of one. */
static void emit(const struct stream *s, const char *p, size_t n, char tag) {
  static char rec[96 + LINE_MAX_BYTES];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t h = strftime(rec, 64, "%Y-%m-%dT%H:%M:%S", &tm);
  h += (size_t)snprintf(rec + h, 96 - h, ".%09ldZ %s %c ", ts.tv_nsec, s->name, tag);
  memcpy(rec + h, p, n);
  rec[h + n] = '\n';
  const char *q = rec;
  size_t left = h + n + 1;
  /* a record alone bigger than max-size still goes whole into a fresh file */
  if (max_size > 0 && log_size > 0 && log_size + (long long)left > max_size) rotate();
  while (left > 0) {
    ssize_t w = write(logfd, q, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    q += w;
    left -= (size_t)w;
    log_size += w;
  }
}

/* Read what the pipe holds (non-blocking) and log its complete lines; `final`: the rest too. */
static void pump(struct stream *s, int final) {
  for (;;) {
    ssize_t r = read(s->fd, s->buf + s->n, sizeof(s->buf) - s->n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    s->n += (size_t)r;
    char *start = s->buf, *nl;
    while ((nl = memchr(start, '\n', s->n - (size_t)(start - s->buf))) != NULL) {
      emit(s, start, (size_t)(nl - start), 'F');
      start = nl + 1;
    }
    s->n -= (size_t)(start - s->buf);
    memmove(s->buf, start, s->n);
    if (s->n == sizeof(s->buf)) {
      emit(s, s->buf, s->n, 'P');
      s->n = 0;
    }
  }
  if (final && s->n > 0) {
    emit(s, s->buf, s->n, 'P');
    s->n = 0;
  }
}

static void *pump_thread(void *arg) {
  (void)arg;
  struct pollfd pf[2] = {{streams[0].fd, POLLIN, 0}, {streams[1].fd, POLLIN, 0}};
  for (;;) {
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    pthread_mutex_lock(&logmu);
    pump(&streams[0], 0);
    pump(&streams[1], 0);
    pthread_mutex_unlock(&logmu);
  }
}

/* Everything the container wrote before it exited is in the log before __cleanup runs. */
static void drain_log(void) {
  if (logfd < 0) return;
  pthread_mutex_lock(&logmu);
  pump(&streams[0], 1);
  pump(&streams[1], 1);
  pthread_mutex_unlock(&logmu);
}

/*
 * fd 5, if the creating lxr passed the log file there: set up the pipes; the thread starts
 * with start_log_thread, once the first launcher has reported the rotation limits.
 */
static void open_log(const char *path) {
  struct stat st;
  if (fstat(5, &st) != 0 || !S_ISREG(st.st_mode)) return;
  int fd = high_fd(5);
  int o[2], e[2];
  if (fd < 0 || pipe2(o, O_CLOEXEC) != 0) return;
  if (pipe2(e, O_CLOEXEC) != 0) {
    close(o[0]);
    close(o[1]);
    return;
  }
  streams[0].fd = high_fd(o[0]);
  streams[1].fd = high_fd(e[0]);
  outw = high_fd(o[1]);
  errw = high_fd(e[1]);
  fcntl(streams[0].fd, F_SETFL, O_NONBLOCK);
  fcntl(streams[1].fd, F_SETFL, O_NONBLOCK);
  logfd = fd;
  log_size = st.st_size;
  if (path) {
    /* the directory, held open: rotation renames in it whatever becomes of the path */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    logname = slash ? slash + 1 : path;
    if (n + 2 > sizeof(dir) || strlen(logname) > 400) return; /* lxr's is ctr.log */
    if (!slash) dir[n++] = '.';
    else if (n == 0) dir[n++] = '/';
    else memcpy(dir, path, n);
    dir[n] = 0;
    int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) logmsg("opening the log's directory");
    else logdir = high_fd(d);
  }
}

static void start_log_thread(void) {
  static int started;
  if (logfd < 0 || started) return;
  started = 1;
  pthread_t t;
  if (pthread_create(&t, NULL, pump_thread, NULL) != 0) {
    /* drain_log still writes what the pipes hold when the init exits */
    logmsg("pthread_create");
    return;
  }
  pthread_detach(t);
}

/*
 * Fork and exec `node bin <args>`; fd 4 is `pidfd` (or closed), fd 3 stays only if keep3; with
 * `logs`, fds 5 and 6 are the write ends of the log pipes.
 */
static pid_t run(char *const args[], int pidfd, int keep3, int logs) {
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
  if (logs && outw >= 0) {
    dup2(outw, 5);
    dup2(errw, 6);
  }
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
 * Read the launcher's report: one line, `PID MAX_SIZE MAX_FILE` (the log's rotation limits;
 * older launchers wrote the pid alone). EOF without one: the launch failed or was not needed.
 * Only up to the newline, since a process the launcher started may hold the pipe.
 */
static pid_t read_report(int fd) {
  char buf[96];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (memchr(buf, '\n', n) || n >= sizeof(buf) - 1) break;
  }
  buf[n] = 0;
  char *end;
  long v = strtol(buf, &end, 10);
  if (v <= 0) return -1;
  char *end2;
  long long size = strtoll(end, &end2, 10);
  if (end2 != end && size >= 0) {
    long files = strtol(end2, NULL, 10);
    pthread_mutex_lock(&logmu);
    max_size = size;
    max_file = files >= 1 ? files : 1;
    pthread_mutex_unlock(&logmu);
  }
  return (pid_t)v;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: lxr-monitor NODE LXR_BIN CONTAINER_ID [LOG_PATH]\n");
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
  open_log(argc == 5 ? argv[4] : NULL);
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
    pid_t launcher = run(launch, w, first, 1);
    close(w);
    close(p[1]);
    if (launcher < 0) {
      logmsg("fork");
      return 1;
    }
    if (first) close(3); /* the creator's socket belongs to the first launcher only */
    first = 0;
    pid_t init = read_report(p[0]);
    close(p[0]);
    start_log_thread();
    int istatus = -1;
    int lstatus = reap_until(launcher, init, &istatus);
    if (init < 0) {
      /* the launcher recorded why (or that a stop came first) and released everything */
      if (!(WIFEXITED(lstatus) && WEXITSTATUS(lstatus) == 0)) fprintf(stderr, "lxr-monitor %s: the launcher failed (status %d)\n", id, lstatus);
      return 0;
    }
    int status = istatus != -1 ? istatus : reap_until(init, 0, NULL);
    drain_log();
    /* `lxr rm -f` killed it and releases what it used itself: nothing left to do here */
    if (logdir >= 0 && faccessat(logdir, MONITOR_CLEANUP_TAKEN, F_OK, 0) == 0) return 0;
    if (status == -1) status = 255 << 8; /* lost: cleanup records 255 */
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    char *cleanup[] = {"__cleanup", id, st, NULL};
    pid_t c = run(cleanup, -1, 0, 0);
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
