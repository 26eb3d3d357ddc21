#define _GNU_SOURCE 1
#include "CSystemShims.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <spawn.h>

int afs_syncfs(int fd) { return syncfs(fd); }
int afs_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}
int afs_errno(void) { return errno; }
int afs_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
int afs_openat(int dirfd, const char *path, int flags, mode_t mode) { return openat(dirfd, path, flags, mode); }
ssize_t afs_getxattr(const char *path, const char *name, void *value, size_t size) {
    return getxattr(path, name, value, size);
}
int afs_setxattr(const char *path, const char *name, const void *value, size_t size) {
    return setxattr(path, name, value, size, 0);
}
ssize_t afs_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}
int afs_lremovexattr(const char *path, const char *name) { return lremovexattr(path, name); }
int afs_fsetxattr(int fd, const char *name, const void *value, size_t size) { return fsetxattr(fd, name, value, size, 0); }
int afs_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }
ssize_t afs_llistxattr(const char *path, char *list, size_t size) { return llistxattr(path, list, size); }
ssize_t afs_listxattr(const char *path, char *list, size_t size) { return listxattr(path, list, size); }
int afs_setxattr_flags(const char *path, const char *name, const void *value, size_t size, int flags) {
    return setxattr(path, name, value, size, flags);
}
int afs_removexattr(const char *path, const char *name) { return removexattr(path, name); }
ssize_t afs_readlinkat(int dirfd, const char *path, char *buf, size_t size) { return readlinkat(dirfd, path, buf, size); }
int afs_symlinkat(const char *target, int dirfd, const char *path) { return symlinkat(target, dirfd, path); }
int afs_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
    return linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}
int afs_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev) { return mknodat(dirfd, path, mode, dev); }
int afs_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int afs_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

/* Copies from the current offsets of both descriptors; in-kernel, no user-space buffer. */
int afs_o_direct(void) { return O_DIRECT; }

ssize_t afs_copy_file_range(int fd_in, int fd_out, size_t len) {
    return copy_file_range(fd_in, NULL, fd_out, NULL, len, 0);
}

int afs_o_tmpfile(void) { return O_TMPFILE; }

int afs_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
