/*
 * lxr-pid1: the small init of `lxr run --init`, as docker's tini and podman's catatonit.
 *
 *   lxr-pid1 [--] COMMAND [ARG...]
 *
 * It runs COMMAND as its child and stays as the container's PID 1, so that:
 *   - orphans are reaped (no zombies pile up under a command that does not wait for them);
 *   - signals sent to PID 1 (docker stop, Ctrl-C, lxr kill) go to the command, which as
 *     PID 1 itself would ignore every signal it has no handler for;
 *   - it exits with the command's status (128+N when signal N killed it), as tini does.
 * Static, with no dependency on the container's libc; bind-mounted read-only into the
 * container, so that the container cannot write it (CVE-2019-5736). Kept apart from the
 * plan executor (executor.c), which has nothing to do once the command runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* signals that report a fault of this process itself: never blocked, never forwarded */
static int synchronous(int sig) {
  return sig == SIGFPE || sig == SIGILL || sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGTRAP || sig == SIGSYS;
}

int main(int argc, char **argv) {
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
  if (first >= argc) {
    fprintf(stderr, "lxr-pid1: usage: lxr-pid1 [--] COMMAND [ARG...]\n");
    return 2;
  }
  /* not PID 1 (e.g. --pid host): still reap the command's orphans */
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  sigset_t all, old;
  sigfillset(&all);
  for (int s = 1; s < NSIG; s++)
    if (synchronous(s)) sigdelset(&all, s);
  if (sigprocmask(SIG_BLOCK, &all, &old) < 0) {
    perror("lxr-pid1: sigprocmask");
    return 1;
  }
    pid_t child = fork();
  if (child < 0) {
    perror("lxr-pid1: fork");
    return 1;
  }
  if (child == 0) {
    /* a process group of its own, in the terminal's foreground (as tini): Ctrl-C reaches
       it once, from the terminal, rather than also through us (SIGTTOU is still blocked) */
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) tcsetpgrp(STDIN_FILENO, getpgrp());
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[first], &argv[first]);
    fprintf(stderr, "lxr-pid1: exec %s: %s\n", argv[first], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }

  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) {
      if (errno == EINTR) continue;
      perror("lxr-pid1: sigwaitinfo");
      return 1;
    }
    if (sig != SIGCHLD) {
      /* forward to the command; it may be gone already (then the SIGCHLD is pending) */
      kill(child, sig);
      continue;
    }
    /* reap everything that has exited: the command and any orphan */
    for (;;) {
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p != child) continue;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    }
  }
}
