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

/* HANDLE_KILLPRIV_V2 through libfuse 3.14, which predates it (3.16 negotiates it).

   Why: without it the kernel asks for security.capability (a GETXATTR round trip) before every
   write(2) to a file, to see whether a write must drop file capabilities: one round trip in
   seven for each small file `cp` copies into incoming/, and one per MiB of a large one. With
   it the filesystem takes over dropping set-user-ID and set-group-ID on write, truncate and
   chown, and the kernel marks the superblock SB_NOSEC, after which it stops asking for files
   that have neither bit (Linux fs/fuse/inode.c, process_init_reply; fs/inode.c,
   file_remove_privs). artifactfs keeps no security.* attributes, so there are never
   capabilities to drop.

   How: afs_session_read notes the INIT request's unique and whether the kernel offers
   FUSE_HANDLE_KILLPRIV_V2 (bit 28 of fuse_init_in.flags, after the 40-byte header:
   major, minor, max_readahead, flags); afs_session_writev sets the same bit in libfuse's
   INIT reply (fuse_init_out.flags, the same offset 12) when it was offered. The kernel then
   says when to drop the bits: FUSE_WRITE_KILL_SUIDGID (bit 2 of fuse_write_in.write_flags),
   FUSE_OPEN_KILL_SUIDGID (bit 0 of fuse_open_in/fuse_create_in.open_flags) and
   FATTR_KILL_SUIDGID (bit 11 of setattr's valid, which libfuse passes on as
   FUSE_SET_ATTR_KILL_SUID). libfuse 3.14 passes neither write_flags nor open_flags on, so
   the reader folds them into the request's open flags as AFS_KILL_SUIDGID, a bit no open(2)
   flag uses; the callbacks strip it (Operations.killSetIDFlag). Layouts: fuse_write_in is
   fh u64, offset u64, size u32, write_flags u32, lock_owner u64, flags u32, padding u32;
   fuse_open_in is flags u32, open_flags u32; fuse_create_in is flags, mode, umask,
   open_flags (u32 each). */
enum {
    AFS_FUSE_INIT = 26, AFS_FUSE_OPEN = 14, AFS_FUSE_WRITE = 16,
    AFS_HANDLE_KILLPRIV_V2 = 1 << 28, AFS_WRITE_KILL_SUIDGID = 1 << 2, AFS_OPEN_KILL_SUIDGID = 1 << 0,
    AFS_KILL_SUIDGID = 1 << 30,
};
/* One session per process: the reader and the writer below are its only users. */
static uint64_t afs_init_unique = 0;
static int afs_killpriv_v2_offered = 0;
/* The bit the session reader adds to a request's open flags when the kernel asks the daemon
   to drop set-user-ID and set-group-ID (see above). */
static inline int afs_kill_suidgid_flag(void) { return AFS_KILL_SUIDGID; }

static void afs_fold_kill_flag(void *buf, ssize_t n, size_t flags_at, size_t kill_at, uint32_t kill_bit) {
    if (n < (ssize_t)(AFS_FUSE_IN_HEADER + kill_at + 4) || n < (ssize_t)(AFS_FUSE_IN_HEADER + flags_at + 4)) return;
    uint32_t kill, flags;
    memcpy(&kill, (char *)buf + AFS_FUSE_IN_HEADER + kill_at, 4);
    if (!(kill & kill_bit)) return;
    memcpy(&flags, (char *)buf + AFS_FUSE_IN_HEADER + flags_at, 4);
    flags |= AFS_KILL_SUIDGID;
    memcpy((char *)buf + AFS_FUSE_IN_HEADER + flags_at, &flags, 4);
}

/* Requests read from /dev/fuse, by opcode (<linux/fuse.h>; slot 0 counts opcodes past the
   table), into AFS_OPCODES counters the Swift side owns and hands over with
   afs_count_requests before the session starts: what `user.artifactfs.requests` on the
   mount's root shows, so that tests can bound the round trips an operation costs. (The
   table is Swift's because Swift does not emit a C header's static arrays.) */
enum { AFS_OPCODES = 64 };
static uint64_t *afs_request_counts = 0;
static inline void afs_count_requests(uint64_t *counts) { afs_request_counts = counts; }
static inline uint64_t afs_request_count(const uint64_t *counts, uint32_t opcode) {
    return opcode < AFS_OPCODES ? __atomic_load_n(&counts[opcode], __ATOMIC_RELAXED) : 0;
}

static ssize_t afs_session_read(int fd, void *buf, size_t len, void *userdata) {
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n >= AFS_FUSE_IN_HEADER) {
        uint32_t opcode;
        memcpy(&opcode, (char *)buf + 4, 4);
        if (afs_request_counts) __atomic_fetch_add(&afs_request_counts[opcode < AFS_OPCODES ? opcode : 0], 1, __ATOMIC_RELAXED);
        switch (opcode) {
        case AFS_FUSE_INIT:
            if (n >= AFS_FUSE_IN_HEADER + 16) {
                uint32_t flags;
                memcpy(&afs_init_unique, (char *)buf + 8, 8);
                memcpy(&flags, (char *)buf + AFS_FUSE_IN_HEADER + 12, 4);
                afs_killpriv_v2_offered = (flags & AFS_HANDLE_KILLPRIV_V2) != 0;
            }
            break;
        case AFS_FUSE_WRITE: afs_fold_kill_flag(buf, n, 32, 20, AFS_WRITE_KILL_SUIDGID); break;
        case AFS_FUSE_OPEN: afs_fold_kill_flag(buf, n, 0, 4, AFS_OPEN_KILL_SUIDGID); break;
        case AFS_FUSE_CREATE: afs_fold_kill_flag(buf, n, 0, 12, AFS_OPEN_KILL_SUIDGID); break;
        default: break;
        }
    }
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

/* libfuse sends a reply as the 16-byte fuse_out_header (len u32, error i32, unique u64) in
   iov[0] and its argument in iov[1]. */
static ssize_t afs_session_writev(int fd, struct iovec *iov, int count, void *userdata) {
    (void)userdata;
    if (afs_killpriv_v2_offered && afs_init_unique != 0 && count >= 2 && iov[0].iov_len >= 16 && iov[1].iov_len >= 16) {
        int32_t error;
        uint64_t unique;
        memcpy(&error, (char *)iov[0].iov_base + 4, 4);
        memcpy(&unique, (char *)iov[0].iov_base + 8, 8);
        if (unique == afs_init_unique && error == 0) {
            uint32_t flags;
            memcpy(&flags, (char *)iov[1].iov_base + 12, 4);
            flags |= AFS_HANDLE_KILLPRIV_V2;
            memcpy((char *)iov[1].iov_base + 12, &flags, 4);
            afs_init_unique = 0;
        }
    }
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
