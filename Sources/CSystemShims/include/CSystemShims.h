#ifndef ARTIFACTFS_CSYSTEMSHIMS_H
#define ARTIFACTFS_CSYSTEMSHIMS_H
#include <sys/types.h>
#include <sys/stat.h>

/* Linux calls that Glibc's Swift module does not expose, in one place. */
int afs_syncfs(int fd);
int afs_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
int afs_errno(void);
int afs_open(const char *path, int flags, mode_t mode);
int afs_openat(int dirfd, const char *path, int flags, mode_t mode);
ssize_t afs_getxattr(const char *path, const char *name, void *value, size_t size);
int afs_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t afs_lgetxattr(const char *path, const char *name, void *value, size_t size);
int afs_lremovexattr(const char *path, const char *name);
int afs_fsetxattr(int fd, const char *name, const void *value, size_t size);
int afs_fremovexattr(int fd, const char *name);
ssize_t afs_llistxattr(const char *path, char *list, size_t size);
ssize_t afs_listxattr(const char *path, char *list, size_t size);
int afs_setxattr_flags(const char *path, const char *name, const void *value, size_t size, int flags);
int afs_removexattr(const char *path, const char *name);
ssize_t afs_readlinkat(int dirfd, const char *path, char *buf, size_t size);
int afs_symlinkat(const char *target, int dirfd, const char *path);
int afs_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);
/* open(…, O_TMPFILE): a macro of two flags that Swift does not import. */
int afs_o_tmpfile(void);
int afs_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev);
ssize_t afs_copy_file_range(int fd_in, int fd_out, size_t len);
/* memfd_create(name, MFD_CLOEXEC): an anonymous file in memory (a packed blob served by the daemon). */
int afs_memfd_create(const char *name);
/* O_DIRECT: a _GNU_SOURCE flag that Swift does not import. */
int afs_o_direct(void);
#include <spawn.h>
int afs_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/* Closes every descriptor from `from` up in the child (glibc 2.34's
   posix_spawn_file_actions_addclosefrom_np): a spawned command inherits nothing it was not given. */
int afs_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
#endif
