/* in-root.c: paths resolved inside a root directory (see there). */
#ifndef LXR_IN_ROOT_H
#define LXR_IN_ROOT_H

/* openat2(rootfd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) with O_CLOEXEC */
int openat2_in_root(int rootfd, const char *path, int flags);
/*
 * An O_PATH fd of path inside the root held by rootfd (-1: a host path). mk 1: missing
 * directories are made; mk 2: the last component is made as an empty file. A dangling
 * symlink on the way is followed (inside the root) and its target made.
 */
int resolve(int rootfd, const char *path, int mk);
/* The directory holding path's last component (made if missing), as a real fd, and the name. */
int resolve_parent_dir(int rootfd, const char *path, const char **name);

#endif
