#ifndef ARTIFACTFS_CFUSE3_SHIM_H
#define ARTIFACTFS_CFUSE3_SHIM_H

#define FUSE_USE_VERSION 312
#define _GNU_SOURCE 1
#include <fuse3/fuse_lowlevel.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

/* Bitfields of fuse_file_info that Swift cannot set directly. */
static inline void afs_fi_set_keep_cache(struct fuse_file_info *fi, int v) { fi->keep_cache = v; }
static inline void afs_fi_set_direct_io(struct fuse_file_info *fi, int v) { fi->direct_io = v; }
static inline void afs_fi_set_noflush(struct fuse_file_info *fi, int v) { fi->noflush = v; }
static inline int afs_fi_writepage(const struct fuse_file_info *fi) { return fi->writepage; }

/* Reply with `size` bytes read from `fd` at `off`; libfuse splices when it can. */
static inline int afs_reply_fd(fuse_req_t req, int fd, size_t size, off_t off) {
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = (enum fuse_buf_flags)(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    return fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static inline struct fuse_args afs_args_init(int argc, char **argv) {
    struct fuse_args a = FUSE_ARGS_INIT(argc, argv);
    return a;
}

static inline dev_t afs_stat_dev(const struct stat *st) { return st->st_dev; }

/* fuse_session_loop_mt is a versioned macro; this wrapper picks the 3.12 form. */
static inline int afs_session_loop_mt(struct fuse_session *se, unsigned max_threads) {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, max_threads);
    fuse_loop_cfg_set_idle_threads(cfg, max_threads);
    int rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return rc;
}

static inline struct fuse_session *afs_session_new(struct fuse_args *args,
        const struct fuse_lowlevel_ops *ops, void *userdata) {
    return fuse_session_new(args, ops, sizeof(*ops), userdata);
}

/* O_DIRECT is a request to the kernel, which FUSE has honoured already; the buffers libfuse
   hands the daemon are not aligned, so the backing files are opened without it. */
static inline int afs_o_direct(void) { return O_DIRECT; }
static inline int afs_fallocate(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }

static inline int afs_fuse_errno(void) { return errno; }
static inline void afs_set_errno(int e) { errno = e; }

#endif
