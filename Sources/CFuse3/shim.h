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
#include <stdint.h>
#include <sys/uio.h>

/* Bitfields of fuse_file_info that Swift cannot set directly. */
static inline void afs_fi_set_keep_cache(struct fuse_file_info *fi, int v) { fi->keep_cache = v; }
static inline void afs_fi_set_direct_io(struct fuse_file_info *fi, int v) { fi->direct_io = v; }
static inline void afs_fi_set_cache_readdir(struct fuse_file_info *fi, int v) { fi->cache_readdir = v; }
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

/* O_TMPFILE through FUSE. Kernels since 6.1 send FUSE_TMPFILE (opcode 51) for an
   open(dir, O_TMPFILE); libfuse learnt to dispatch it in 3.15 and Debian 12 ships 3.14, which
   answers ENOSYS (and the kernel then EOPNOTSUPP). Its payload is FUSE_CREATE's
   (fuse_create_in, then the name "/"), and libfuse 3.15 answers it with fuse_reply_create, so
   this session reader turns it into a CREATE of the name "/": a name no real create can carry,
   which the create callback takes as "make an unnamed file" (see Operations.create). Layouts
   from <linux/fuse.h>: fuse_in_header is 40 bytes (len u32, opcode u32, unique u64, nodeid u64,
   uid, gid, pid u32, total_extlen u16, padding u16); fuse_create_in is 16 bytes. */
enum { AFS_FUSE_IN_HEADER = 40, AFS_FUSE_CREATE_IN = 16, AFS_FUSE_CREATE = 35, AFS_FUSE_TMPFILE = 51 };

static ssize_t afs_session_read(int fd, void *buf, size_t len, void *userdata) {
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n >= AFS_FUSE_IN_HEADER + AFS_FUSE_CREATE_IN) {
        uint32_t *header = (uint32_t *)buf;
        if (header[1] == AFS_FUSE_TMPFILE && len >= AFS_FUSE_IN_HEADER + AFS_FUSE_CREATE_IN + 2) {
            char *name = (char *)buf + AFS_FUSE_IN_HEADER + AFS_FUSE_CREATE_IN;
            name[0] = '/';
            name[1] = 0;
            n = AFS_FUSE_IN_HEADER + AFS_FUSE_CREATE_IN + 2;
            header[0] = (uint32_t)n;
            header[1] = AFS_FUSE_CREATE;
            ((uint16_t *)buf)[18] = 0;  /* total_extlen: no extensions follow the name now */
        }
    }
    return n;
}

static ssize_t afs_session_writev(int fd, struct iovec *iov, int count, void *userdata) {
    (void)userdata;
    return writev(fd, iov, count);
}

/* Given, so that libfuse keeps offering splice for replies (it does only when the custom
   I/O has this). */
static ssize_t afs_session_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
                                       unsigned int flags, void *userdata) {
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

/* Call after fuse_session_mount: the session reads /dev/fuse through afs_session_read. */
static inline int afs_session_read_tmpfile(struct fuse_session *se) {
    static const struct fuse_custom_io io = {
        .writev = afs_session_writev,
        .read = afs_session_read,
        .splice_receive = NULL,
        .splice_send = afs_session_splice_send,
    };
    return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

static inline int afs_fuse_errno(void) { return errno; }
static inline void afs_set_errno(int e) { errno = e; }

#endif
