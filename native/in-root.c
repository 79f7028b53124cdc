/*
 * Paths inside a container's root, resolved by the kernel so that symlinks and ".." never
 * leave it (openat2 RESOLVE_IN_ROOT), for the executor's steps that name a path: mounts,
 * masked and read-only paths, device nodes, symlinks, directories to make.
 */
#include "common.h"
#include <linux/openat2.h>
#include "in-root.h"

static char pathbuf[8192];

int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/*
 * Resolve path inside the root held by rootfd (-1: a host path), so that symlinks and ".."
 * never leave it. mk 1: missing directories are made; mk 2: the last component is made as
 * an empty file. A dangling symlink on the way is followed (inside the root) and its target
 * made. Returns an O_PATH fd, or -1 with errno set.
 */
int resolve(int rootfd, const char *path, int mk) {
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
      if (pathbuf[j] != '/') {
        last = 0;
        break;
      }
    char saved = pathbuf[i];
    pathbuf[i] = 0;
    int next = openat2_in_root(rootfd, pathbuf, O_PATH);
    if (next < 0 && errno == ENOENT) {
      const char *name = pathbuf + start;
      static char link[4096], rebuilt[8192];
      long ln = syscall(SYS_readlinkat, parent, name, link, sizeof link - 1);
      if (ln > 0) {
        /* rebuild as <dir of the link>/<target>/<rest> and walk it again from the root */
        if (++links > 40) {
          errno = ELOOP;
          goto fail;
        }
        link[ln] = 0;
        size_t n = 0;
        if (link[0] != '/') {
          memcpy(rebuilt, pathbuf, start);
          n = start;
        }
        if (n + (size_t)ln + 1 + (len - i) + 1 > sizeof rebuilt) {
          errno = ENAMETOOLONG;
          goto fail;
        }
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
    return close_keep_errno(parent, -1);
  }
  return parent;
}

/* The directory holding path's last component (made if missing), as a real fd, and the name. */
int resolve_parent_dir(int rootfd, const char *path, const char **name) {
  static char parent[8192];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n >= sizeof parent) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(parent, path, n);
  parent[n] = 0;
  *name = slash ? slash + 1 : path;
  int dir = resolve(rootfd, n ? parent : "/", 1);
  if (dir < 0) return -1;
  int d = openat2_in_root(dir, ".", O_DIRECTORY | O_RDONLY);
  return close_keep_errno(dir, d);
}
