#!/usr/bin/env python3
"""Named POSIX checks, run in one folder; prints {check: outcome} as JSON.

    python3 posix_checks.py DIR [CHECK ...]

Each check works in its own fresh subfolder DIR/<check> and returns a short string that
describes what happened ("ok", "errno=EEXIST", "mode=0o664", "data=b'AB'"), never a raw
timestamp or inode number, so a native folder and a FUSE mount give equal strings when they
behave alike (the shape of go-fuse's posixtest). A check that raises reports
"exception:<errno name or type>". Standard library only; Linux x86_64/aarch64.
"""
import ctypes
import ctypes.util
import errno
import fcntl
import json
import mmap
import os
import socket
import stat
import struct
import sys
import time

LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
# Timestamps on ext4 and in the kernel tick with jiffies: sleep past one tick before a change.
TICK = 0.03

CHECKS = {}


def check(fn):
    CHECKS[fn.__name__[len("check_"):]] = fn
    return fn


def ename(e):
    return errno.errorcode.get(e, str(e))


def err(e):
    return "errno=" + ename(e.errno)


def expect_error(fn, *args, **kw):
    """'ok' when fn succeeds, else 'errno=NAME' of its OSError."""
    try:
        fn(*args, **kw)
        return "ok"
    except OSError as e:
        return err(e)


def oserror():
    e = ctypes.get_errno()
    return OSError(e, os.strerror(e))


def write_file(path, data, mode=0o666):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def perm(path, follow=True):
    st = os.stat(path) if follow else os.lstat(path)
    return oct(stat.S_IMODE(st.st_mode))


def renameat2(src, dst, flags):
    src, dst = os.fsencode(src), os.fsencode(dst)
    fn = getattr(LIBC, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(AT_FDCWD, src, AT_FDCWD, dst, flags)
    else:
        nr = {"x86_64": 316, "aarch64": 276}[os.uname().machine]
        rc = LIBC.syscall(ctypes.c_long(nr), ctypes.c_int(AT_FDCWD), ctypes.c_char_p(src),
                          ctypes.c_int(AT_FDCWD), ctypes.c_char_p(dst), ctypes.c_uint(flags))
    if rc != 0:
        raise oserror()


def fallocate(fd, mode, offset, length):
    fn = LIBC.fallocate
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if fn(fd, mode, offset, length) != 0:
        raise oserror()


def linkat_follow(src, dst):
    """linkat(AT_SYMLINK_FOLLOW): os.link calls plain link(), which does not follow /proc/self/fd."""
    fn = LIBC.linkat
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), 0x400) != 0:
        raise oserror()


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, flags=0):
    """atime/mtime: (sec, nsec), or UTIME_NOW / UTIME_OMIT."""
    def ts(t):
        return Timespec(0, t) if isinstance(t, int) else Timespec(*t)
    times = (Timespec * 2)(ts(atime), ts(mtime))
    fn = LIBC.utimensat
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]
    if fn(AT_FDCWD, os.fsencode(path), times, flags) != 0:
        raise oserror()


def tick():
    time.sleep(TICK)


# -- create, open ------------------------------------------------------------------------------

@check
def check_create_mode(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)
    st = os.stat(f"{d}/f")
    return f"mode={oct(stat.S_IMODE(st.st_mode))},reg={stat.S_ISREG(st.st_mode)},size={st.st_size}"


@check
def check_create_owner_is_caller(d):
    write_file(f"{d}/f", b"x")
    st = os.stat(f"{d}/f")
    return f"uid_is_own={st.st_uid == os.geteuid()},gid_is_own={st.st_gid == os.getegid()}"


@check
def check_mkdir_mode(d):
    os.mkdir(f"{d}/sub", 0o777)
    st = os.stat(f"{d}/sub")
    return f"mode={oct(stat.S_IMODE(st.st_mode))},dir={stat.S_ISDIR(st.st_mode)}"


@check
def check_mkdir_trailing_slash(d):
    os.mkdir(f"{d}/sub/")
    return f"dir={os.path.isdir(f'{d}/sub')}"


@check
def check_excl_existing(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.open, f"{d}/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)


@check
def check_excl_new(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    return f"exists={os.path.exists(f'{d}/f')},mode={perm(f'{d}/f')}"


@check
def check_excl_dangling_symlink(d):
    os.symlink("nowhere", f"{d}/l")
    return expect_error(os.open, f"{d}/l", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)


@check
def check_append(d):
    write_file(f"{d}/f", b"AB")
    fd = os.open(f"{d}/f", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"CD")
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    os.close(fd)
    return f"data={read_file(f'{d}/f')!r},pos={pos}"


@check
def check_append_two_fds(d):
    write_file(f"{d}/f", b"")
    a = os.open(f"{d}/f", os.O_WRONLY | os.O_APPEND)
    b = os.open(f"{d}/f", os.O_WRONLY | os.O_APPEND)
    os.write(a, b"1")
    os.write(b, b"2")
    os.write(a, b"3")
    os.close(a)
    os.close(b)
    return f"data={read_file(f'{d}/f')!r}"


@check
def check_trunc_on_open(d):
    write_file(f"{d}/f", b"hello")
    fd = os.open(f"{d}/f", os.O_WRONLY | os.O_TRUNC)
    size = os.fstat(fd).st_size
    os.close(fd)
    return f"size={size},data={read_file(f'{d}/f')!r}"


@check
def check_open_missing(d):
    return expect_error(os.open, f"{d}/missing", os.O_RDONLY)


@check
def check_open_missing_parent(d):
    return expect_error(os.open, f"{d}/nodir/f", os.O_CREAT | os.O_WRONLY, 0o644)


@check
def check_open_creat_on_dir(d):
    os.mkdir(f"{d}/sub")
    return expect_error(os.open, f"{d}/sub", os.O_CREAT | os.O_WRONLY, 0o644)


@check
def check_open_dir_for_write(d):
    return expect_error(os.open, d, os.O_WRONLY)


@check
def check_open_directory_flag_on_file(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.open, f"{d}/f", os.O_RDONLY | os.O_DIRECTORY)


@check
def check_open_nofollow_symlink(d):
    write_file(f"{d}/f", b"x")
    os.symlink("f", f"{d}/l")
    return expect_error(os.open, f"{d}/l", os.O_RDONLY | os.O_NOFOLLOW)


@check
def check_write_to_readonly_fd(d):
    write_file(f"{d}/f", b"x")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        return expect_error(os.write, fd, b"y")
    finally:
        os.close(fd)


@check
def check_ftruncate_readonly_fd(d):
    write_file(f"{d}/f", b"xyz")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        return expect_error(os.ftruncate, fd, 1)
    finally:
        os.close(fd)


# -- sizes, offsets ----------------------------------------------------------------------------

@check
def check_truncate_down(d):
    write_file(f"{d}/f", b"0123456789")
    os.truncate(f"{d}/f", 4)
    return f"size={os.stat(f'{d}/f').st_size},data={read_file(f'{d}/f')!r}"


@check
def check_truncate_up(d):
    write_file(f"{d}/f", b"ab")
    os.truncate(f"{d}/f", 10)
    return f"size={os.stat(f'{d}/f').st_size},data={read_file(f'{d}/f')!r}"


@check
def check_ftruncate_then_write(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"abcdef")
    os.ftruncate(fd, 2)
    os.write(fd, b"Z")  # offset is still 6: a hole of 4 zeros
    os.close(fd)
    return f"data={read_file(f'{d}/f')!r}"


@check
def check_write_beyond_eof(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"A")
    os.pwrite(fd, b"Z", 100000)
    size = os.fstat(fd).st_size
    data = os.pread(fd, 200000, 0)
    os.close(fd)
    zeros = data[1:-1] == bytes(len(data) - 2)
    return f"size={size},len={len(data)},first={data[:1]!r},last={data[-1:]!r},hole_zero={zeros}"


@check
def check_sparse_large_offset(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"end", 5 * 2**30)
    st = os.fstat(fd)
    mid = os.pread(fd, 4, 2**30)
    tail = os.pread(fd, 10, 5 * 2**30)
    os.close(fd)
    return f"size={st.st_size},mid={mid!r},tail={tail!r},sparse={st.st_blocks * 512 < 2**20}"


@check
def check_read_past_eof(d):
    write_file(f"{d}/f", b"abc")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    data = os.pread(fd, 10, 100)
    os.close(fd)
    return f"data={data!r}"


@check
def check_pwrite_pread_offsets(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"0123456789")
    os.pwrite(fd, b"xy", 3)
    data = os.pread(fd, 4, 2)
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    os.close(fd)
    return f"data={data!r},pos={pos},all={read_file(f'{d}/f')!r}"


@check
def check_two_fds_coherent(d):
    a = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    b = os.open(f"{d}/f", os.O_RDONLY)
    os.write(a, b"first")
    r1 = os.pread(b, 10, 0)
    os.pwrite(a, b"F", 0)
    r2 = os.pread(b, 10, 0)
    os.close(a)
    os.close(b)
    return f"r1={r1!r},r2={r2!r}"


@check
def check_blocks_cover_size(d):
    write_file(f"{d}/f", os.urandom(65536))
    fd = os.open(f"{d}/f", os.O_RDONLY)
    os.fsync(fd)
    st = os.fstat(fd)
    os.close(fd)
    return f"blocks_cover_size={st.st_blocks * 512 >= st.st_size}"


@check
def check_mmap_shared_write(d):
    write_file(f"{d}/f", b"." * 4096)
    fd = os.open(f"{d}/f", os.O_RDWR)
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:5] = b"hello"
    m.flush()
    m.close()
    os.close(fd)
    return f"head={read_file(f'{d}/f')[:6]!r}"


@check
def check_copy_file_range(d):
    write_file(f"{d}/a", b"0123456789")
    write_file(f"{d}/b", b"")
    src = os.open(f"{d}/a", os.O_RDONLY)
    dst = os.open(f"{d}/b", os.O_WRONLY)
    n = os.copy_file_range(src, dst, 6, 2, 0)
    os.close(src)
    os.close(dst)
    return f"n={n},data={read_file(f'{d}/b')!r}"


# -- rename ------------------------------------------------------------------------------------

@check
def check_rename_over_file(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"B")
    os.rename(f"{d}/a", f"{d}/b")
    return f"a_exists={os.path.exists(f'{d}/a')},b={read_file(f'{d}/b')!r},entries={len(os.listdir(d))}"


@check
def check_rename_folder(d):
    os.makedirs(f"{d}/d1/inner")
    write_file(f"{d}/d1/inner/f", b"x")
    os.rename(f"{d}/d1", f"{d}/d2")
    return f"old={os.path.exists(f'{d}/d1')},data={read_file(f'{d}/d2/inner/f')!r}"


@check
def check_rename_folder_over_empty_folder(d):
    os.mkdir(f"{d}/a")
    write_file(f"{d}/a/f", b"x")
    os.mkdir(f"{d}/b")
    os.rename(f"{d}/a", f"{d}/b")
    return f"a={os.path.exists(f'{d}/a')},b_list={sorted(os.listdir(f'{d}/b'))}"


@check
def check_rename_folder_over_nonempty_folder(d):
    os.mkdir(f"{d}/a")
    os.mkdir(f"{d}/b")
    write_file(f"{d}/b/f", b"x")
    return expect_error(os.rename, f"{d}/a", f"{d}/b")


@check
def check_rename_file_over_folder(d):
    write_file(f"{d}/f", b"x")
    os.mkdir(f"{d}/sub")
    return expect_error(os.rename, f"{d}/f", f"{d}/sub")


@check
def check_rename_folder_over_file(d):
    write_file(f"{d}/f", b"x")
    os.mkdir(f"{d}/sub")
    return expect_error(os.rename, f"{d}/sub", f"{d}/f")


@check
def check_rename_into_own_subfolder(d):
    os.makedirs(f"{d}/a/b")
    return expect_error(os.rename, f"{d}/a", f"{d}/a/b/c")


@check
def check_rename_missing(d):
    return expect_error(os.rename, f"{d}/missing", f"{d}/x")


@check
def check_rename_hardlinks_of_same_file(d):
    write_file(f"{d}/a", b"x")
    os.link(f"{d}/a", f"{d}/b")
    os.rename(f"{d}/a", f"{d}/b")  # POSIX: a no-op, both names stay
    return f"names={sorted(os.listdir(d))}"


@check
def check_rename_open_file(d):
    fd = os.open(f"{d}/a", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"12")
    os.rename(f"{d}/a", f"{d}/b")
    os.write(fd, b"34")
    os.close(fd)
    return f"a={os.path.exists(f'{d}/a')},b={read_file(f'{d}/b')!r}"


@check
def check_rename_updates_ctime(d):
    write_file(f"{d}/a", b"x")
    before = os.stat(f"{d}/a").st_ctime_ns
    tick()
    os.rename(f"{d}/a", f"{d}/b")
    return f"ctime_changed={os.stat(f'{d}/b').st_ctime_ns != before}"


@check
def check_renameat2_noreplace_existing(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"B")
    r = expect_error(renameat2, f"{d}/a", f"{d}/b", RENAME_NOREPLACE)
    return f"{r},a={read_file(f'{d}/a')!r},b={read_file(f'{d}/b')!r}"


@check
def check_renameat2_noreplace_new(d):
    write_file(f"{d}/a", b"A")
    r = expect_error(renameat2, f"{d}/a", f"{d}/b", RENAME_NOREPLACE)
    return f"{r},names={sorted(os.listdir(d))}"


@check
def check_renameat2_exchange_files(d):
    write_file(f"{d}/a", b"A")
    write_file(f"{d}/b", b"B")
    r = expect_error(renameat2, f"{d}/a", f"{d}/b", RENAME_EXCHANGE)
    return f"{r},a={read_file(f'{d}/a')!r},b={read_file(f'{d}/b')!r}"


@check
def check_renameat2_exchange_file_and_folder(d):
    write_file(f"{d}/a", b"A")
    os.mkdir(f"{d}/b")
    write_file(f"{d}/b/inner", b"I")
    r = expect_error(renameat2, f"{d}/a", f"{d}/b", RENAME_EXCHANGE)
    return f"{r},a_dir={os.path.isdir(f'{d}/a')},b={read_file(f'{d}/b')!r}"


@check
def check_renameat2_exchange_missing(d):
    write_file(f"{d}/a", b"A")
    return expect_error(renameat2, f"{d}/a", f"{d}/b", RENAME_EXCHANGE)


# -- links -------------------------------------------------------------------------------------

@check
def check_hardlink(d):
    write_file(f"{d}/a", b"one")
    os.link(f"{d}/a", f"{d}/b")
    n2 = os.stat(f"{d}/a").st_nlink
    same = os.stat(f"{d}/a").st_ino == os.stat(f"{d}/b").st_ino
    with open(f"{d}/b", "ab") as f:
        f.write(b"+two")
    via_a = read_file(f"{d}/a")
    os.unlink(f"{d}/a")
    st = os.stat(f"{d}/b")
    return f"nlink={n2},same_ino={same},via_a={via_a!r},after_unlink={read_file(f'{d}/b')!r},nlink_after={st.st_nlink}"


@check
def check_hardlink_existing_target(d):
    write_file(f"{d}/a", b"x")
    write_file(f"{d}/b", b"y")
    return expect_error(os.link, f"{d}/a", f"{d}/b")


@check
def check_hardlink_folder(d):
    os.mkdir(f"{d}/sub")
    return expect_error(os.link, f"{d}/sub", f"{d}/l")


@check
def check_hardlink_updates_ctime(d):
    write_file(f"{d}/a", b"x")
    before = os.stat(f"{d}/a").st_ctime_ns
    tick()
    os.link(f"{d}/a", f"{d}/b")
    return f"ctime_changed={os.stat(f'{d}/a').st_ctime_ns != before}"


@check
def check_symlink_readlink(d):
    write_file(f"{d}/f", b"content")
    os.symlink("f", f"{d}/l")
    st = os.lstat(f"{d}/l")
    return (f"target={os.readlink(os.fsencode(f'{d}/l'))!r},islink={stat.S_ISLNK(st.st_mode)},"
            f"size={st.st_size},via={read_file(f'{d}/l')!r}")


@check
def check_symlink_dangling(d):
    os.symlink("no/such/target", f"{d}/l")
    follow = expect_error(os.stat, f"{d}/l")
    return f"target={os.readlink(os.fsencode(f'{d}/l'))!r},stat={follow},lexists={os.path.lexists(f'{d}/l')}"


@check
def check_symlink_invalid_utf8_target(d):
    target = b"\xff\xfe/caf\xe9"
    os.symlink(target, os.fsencode(f"{d}/l"))
    return f"target={os.readlink(os.fsencode(f'{d}/l'))!r},size={os.lstat(f'{d}/l').st_size}"


@check
def check_symlink_long_target(d):
    target = b"x" * 4000
    os.symlink(target, os.fsencode(f"{d}/l"))
    return f"same={os.readlink(os.fsencode(f'{d}/l')) == target}"


@check
def check_symlink_existing(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.symlink, "t", f"{d}/f")


@check
def check_readlink_of_file(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.readlink, f"{d}/f")


@check
def check_utime_symlink_nofollow(d):
    os.symlink("nowhere", f"{d}/l")
    os.utime(f"{d}/l", ns=(1_500_000_000_000_000_000, 1_400_000_000_000_000_000), follow_symlinks=False)
    return f"mtime_ok={os.lstat(f'{d}/l').st_mtime_ns == 1_400_000_000_000_000_000}"


# -- special files -----------------------------------------------------------------------------

@check
def check_mkfifo(d):
    os.mkfifo(f"{d}/p", 0o666)
    st = os.lstat(f"{d}/p")
    return f"fifo={stat.S_ISFIFO(st.st_mode)},mode={oct(stat.S_IMODE(st.st_mode))},size={st.st_size}"


@check
def check_mknod_fifo(d):
    os.mknod(f"{d}/p", stat.S_IFIFO | 0o640)
    st = os.lstat(f"{d}/p")
    return f"fifo={stat.S_ISFIFO(st.st_mode)},mode={oct(stat.S_IMODE(st.st_mode))}"


@check
def check_fifo_roundtrip(d):
    os.mkfifo(f"{d}/p")
    r = os.open(f"{d}/p", os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(f"{d}/p", os.O_WRONLY | os.O_NONBLOCK)
    os.write(w, b"ping")
    data = os.read(r, 10)
    os.close(w)
    os.close(r)
    return f"data={data!r}"


@check
def check_socket_bind(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(os.fsencode(f"{d}/s"))
        st = os.lstat(f"{d}/s")
        return f"sock={stat.S_ISSOCK(st.st_mode)}"
    finally:
        s.close()


@check
def check_mknod_char_device(d):
    os.mknod(f"{d}/null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    st = os.lstat(f"{d}/null")
    return f"chr={stat.S_ISCHR(st.st_mode)},rdev={os.major(st.st_rdev)},{os.minor(st.st_rdev)},mode={oct(stat.S_IMODE(st.st_mode))}"


# -- unlink while open -------------------------------------------------------------------------

@check
def check_unlink_open_file(d):
    write_file(f"{d}/f", b"hello world")
    fd = os.open(f"{d}/f", os.O_RDWR)
    os.unlink(f"{d}/f")
    gone = not os.path.lexists(f"{d}/f")
    st = os.fstat(fd)
    data = os.pread(fd, 100, 0)
    end = os.lseek(fd, 0, os.SEEK_END)
    os.ftruncate(fd, 5)
    size = os.fstat(fd).st_size
    os.pwrite(fd, b"!", 5)
    data2 = os.pread(fd, 100, 0)
    os.close(fd)
    return (f"gone={gone},nlink={st.st_nlink},size={st.st_size},data={data!r},end={end},"
            f"trunc_size={size},data2={data2!r}")


@check
def check_unlink_open_file_metadata(d):
    """fchmod, fchown and futimens of a file whose name is gone (the kernel sends them
    without a handle)."""
    write_file(f"{d}/f", b"data")
    fd = os.open(f"{d}/f", os.O_RDWR)
    os.unlink(f"{d}/f")
    os.fchmod(fd, 0o600)
    st = os.fstat(fd)
    os.fchown(fd, st.st_uid, st.st_gid)
    os.utime(fd, ns=(1_500_000_000_000_000_000, 1_600_000_000_000_000_000))
    st = os.fstat(fd)
    os.close(fd)
    return f"mode={oct(stat.S_IMODE(st.st_mode))},mtime={st.st_mtime_ns},atime={st.st_atime_ns}"


@check
def check_unlink_open_then_recreate(d):
    write_file(f"{d}/f", b"old")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    os.unlink(f"{d}/f")
    write_file(f"{d}/f", b"new")
    old = os.pread(fd, 10, 0)
    os.close(fd)
    return f"old={old!r},new={read_file(f'{d}/f')!r}"


@check
def check_rename_over_open_file(d):
    write_file(f"{d}/a", b"AAA")
    write_file(f"{d}/b", b"BBB")
    fd = os.open(f"{d}/b", os.O_RDONLY)
    os.rename(f"{d}/a", f"{d}/b")
    old = os.pread(fd, 10, 0)
    os.close(fd)
    return f"fd_sees={old!r},name_sees={read_file(f'{d}/b')!r}"


# -- folders -----------------------------------------------------------------------------------

@check
def check_mkdir_existing(d):
    os.mkdir(f"{d}/sub")
    return expect_error(os.mkdir, f"{d}/sub")


@check
def check_mkdir_over_file(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.mkdir, f"{d}/f")


@check
def check_mkdir_under_file(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.mkdir, f"{d}/f/sub")


@check
def check_rmdir_nonempty(d):
    os.mkdir(f"{d}/sub")
    write_file(f"{d}/sub/f", b"x")
    return expect_error(os.rmdir, f"{d}/sub")


@check
def check_rmdir_file(d):
    write_file(f"{d}/f", b"x")
    return expect_error(os.rmdir, f"{d}/f")


@check
def check_rmdir_ok(d):
    os.mkdir(f"{d}/sub")
    r = expect_error(os.rmdir, f"{d}/sub")
    return f"{r},exists={os.path.exists(f'{d}/sub')}"


@check
def check_rmdir_missing(d):
    return expect_error(os.rmdir, f"{d}/missing")


@check
def check_unlink_folder(d):
    os.mkdir(f"{d}/sub")
    return expect_error(os.unlink, f"{d}/sub")


@check
def check_unlink_missing(d):
    return expect_error(os.unlink, f"{d}/missing")


@check
def check_folder_nlink(d):
    os.mkdir(f"{d}/sub")
    os.mkdir(f"{d}/sub/a")
    os.mkdir(f"{d}/sub/b")
    write_file(f"{d}/sub/f", b"x")
    return f"nlink={os.stat(f'{d}/sub').st_nlink}"


def _kinds(d):
    kinds = []
    for e in sorted(os.scandir(os.fsencode(d)), key=lambda e: e.name):
        kind = "l" if e.is_symlink() else "d" if e.is_dir(follow_symlinks=False) else \
               "f" if e.is_file(follow_symlinks=False) else "o"
        kinds.append(f"{e.name.decode()}:{kind}")
    return ",".join(kinds)


@check
def check_readdir_types(d):
    write_file(f"{d}/f", b"x")
    os.mkdir(f"{d}/sub")
    return _kinds(d)


@check
def check_readdir_types_special(d):
    write_file(f"{d}/f", b"x")
    os.symlink("f", f"{d}/l")
    os.mkfifo(f"{d}/p")
    return _kinds(d)


@check
def check_readdir_inode_matches_stat(d):
    write_file(f"{d}/f", b"x")
    os.mkdir(f"{d}/sub")
    ok = all(e.inode() == os.lstat(e.path).st_ino for e in os.scandir(os.fsencode(d)))
    return f"ino_match={ok}"


@check
def check_readdir_many(d):
    names = {f"file-{i:04d}-{'x' * 40}" for i in range(600)}
    for n in names:
        os.close(os.open(f"{d}/{n}", os.O_CREAT | os.O_WRONLY, 0o644))
    listed = os.listdir(d)
    return f"count={len(listed)},same={set(listed) == names}"


@check
def check_readdir_after_unlink_during_listing(d):
    for i in range(50):
        write_file(f"{d}/f{i:02d}", b"x")
    it = os.scandir(d)
    first = next(it).name
    for i in range(50):
        n = f"f{i:02d}"
        if n != first:
            os.unlink(f"{d}/{n}")
    rest = list(it)
    it.close()
    return f"no_error=True,left={len(os.listdir(d))}"


@check
def check_fsync_file(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x")
    a = expect_error(os.fsync, fd)
    b = expect_error(os.fdatasync, fd)
    os.close(fd)
    return f"fsync={a},fdatasync={b}"


@check
def check_fsync_folder(d):
    write_file(f"{d}/f", b"x")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return expect_error(os.fsync, fd)
    finally:
        os.close(fd)


@check
def check_statvfs_namemax(d):
    return f"namemax={os.statvfs(d).f_namemax}"


# -- permissions, owner ------------------------------------------------------------------------

@check
def check_chmod(d):
    write_file(f"{d}/f", b"x")
    os.chmod(f"{d}/f", 0o600)
    a = perm(f"{d}/f")
    os.chmod(f"{d}/f", 0o755)
    return f"first={a},second={perm(f'{d}/f')}"


@check
def check_fchmod(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.fchmod(fd, 0o640)
    os.close(fd)
    return f"mode={perm(f'{d}/f')}"


@check
def check_create_suid_mode(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_WRONLY, 0o4755)
    os.close(fd)
    return f"mode={perm(f'{d}/f')}"


@check
def check_chmod_suid(d):
    write_file(f"{d}/f", b"x")
    os.chmod(f"{d}/f", 0o4755)
    a = perm(f"{d}/f")
    os.chmod(f"{d}/f", 0o2755)
    b = perm(f"{d}/f")
    os.chmod(f"{d}/f", 0o1777)
    return f"suid={a},sgid={b},sticky={perm(f'{d}/f')}"


@check
def check_chmod_folder_sticky(d):
    os.mkdir(f"{d}/sub")
    os.chmod(f"{d}/sub", 0o1777)
    return f"mode={perm(f'{d}/sub')}"


@check
def check_sgid_folder_inheritance(d):
    os.mkdir(f"{d}/sub")
    os.chown(f"{d}/sub", -1, 4242)
    os.chmod(f"{d}/sub", 0o2775)
    write_file(f"{d}/sub/f", b"x")
    os.mkdir(f"{d}/sub/inner")
    fst, ist = os.stat(f"{d}/sub/f"), os.stat(f"{d}/sub/inner")
    return (f"file_gid_inherited={fst.st_gid == 4242},dir_gid_inherited={ist.st_gid == 4242},"
            f"dir_mode={oct(stat.S_IMODE(ist.st_mode))}")


@check
def check_chown_own(d):
    write_file(f"{d}/f", b"x")
    os.chown(f"{d}/f", os.geteuid(), os.getegid())
    st = os.stat(f"{d}/f")
    return f"uid_is_own={st.st_uid == os.geteuid()},gid_is_own={st.st_gid == os.getegid()}"


@check
def check_chown_other(d):
    write_file(f"{d}/f", b"x")
    r = expect_error(os.chown, f"{d}/f", 4321, 4322)
    st = os.stat(f"{d}/f")
    return f"{r},uid={st.st_uid},gid={st.st_gid}"


@check
def check_chown_clears_suid(d):
    write_file(f"{d}/f", b"x")
    os.chmod(f"{d}/f", 0o6755)
    os.chown(f"{d}/f", os.geteuid(), os.getegid())
    return f"mode={perm(f'{d}/f')}"


def as_other_user(fn):
    """Runs fn() in a child process as uid/gid 4242 (no supplementary groups, so without
    CAP_FSETID); returns what it returned, or "child:<error>". Needs root, and a mount made
    with allow_other."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(4242, 4242, 4242)
            os.setresuid(4242, 4242, 4242)
            res = fn()
        except OSError as e:
            res = "child:" + err(e)
        except BaseException as e:  # noqa: BLE001 - report anything from the child
            res = f"child:{type(e).__name__}"
        os.write(w, str(res).encode())
        os._exit(0)
    os.close(w)
    res = os.read(r, 200).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return res


@check
def check_unprivileged_change_drops_setid(d):
    """A write, truncate or O_TRUNC open by a user without CAP_FSETID drops set-user-ID, and
    set-group-ID when the group may execute; root keeps both (Linux fs/inode.c
    should_remove_suid, and FUSE_HANDLE_KILLPRIV_V2)."""
    def setid_file(name, mode):
        write_file(f"{d}/{name}", b"x")
        os.chmod(f"{d}/{name}", mode)
        return f"{d}/{name}"

    def write_one(path):
        def fn():
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, b"y", 1)
            os.close(fd)
            return "ok"
        return fn

    out = []
    w = setid_file("write", 0o6777)
    out.append(f"write={as_other_user(write_one(w))}:{perm(w)}")
    nx = setid_file("write_no_group_exec", 0o6767)
    out.append(f"write_no_group_exec={as_other_user(write_one(nx))}:{perm(nx)}")
    t = setid_file("truncate", 0o6777)
    out.append(f"truncate={as_other_user(lambda: os.truncate(t, 0) or 'ok')}:{perm(t)}")
    o = setid_file("open_trunc", 0o6777)
    out.append(f"open_trunc={as_other_user(lambda: os.close(os.open(o, os.O_WRONLY | os.O_TRUNC)) or 'ok')}:{perm(o)}")
    r = setid_file("root_write", 0o6777)
    write_one(r)()
    out.append(f"root_write={perm(r)}")
    return ",".join(out)


@check
def check_lchown_symlink(d):
    os.symlink("nowhere", f"{d}/l")
    r = expect_error(os.lchown, f"{d}/l", 4321, 4322)
    st = os.lstat(f"{d}/l")
    return f"{r},uid={st.st_uid},gid={st.st_gid}"


# -- times -------------------------------------------------------------------------------------

@check
def check_ctime_changes_on_chmod(d):
    write_file(f"{d}/f", b"x")
    before = os.stat(f"{d}/f")
    tick()
    os.chmod(f"{d}/f", 0o600)
    after = os.stat(f"{d}/f")
    return f"ctime_changed={after.st_ctime_ns != before.st_ctime_ns},mtime_kept={after.st_mtime_ns == before.st_mtime_ns}"


@check
def check_ctime_changes_on_xattr(d):
    write_file(f"{d}/f", b"x")
    before = os.stat(f"{d}/f").st_ctime_ns
    tick()
    os.setxattr(f"{d}/f", "user.t", b"v")
    return f"ctime_changed={os.stat(f'{d}/f').st_ctime_ns != before}"


@check
def check_write_updates_mtime_ctime(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = os.stat(f"{d}/f")
    tick()
    fd = os.open(f"{d}/f", os.O_WRONLY)
    os.write(fd, b"y")
    os.close(fd)
    after = os.stat(f"{d}/f")
    return (f"mtime_changed={after.st_mtime_ns != before.st_mtime_ns},"
            f"ctime_changed={after.st_ctime_ns != before.st_ctime_ns}")


@check
def check_truncate_updates_mtime(d):
    write_file(f"{d}/f", b"xyz")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.truncate(f"{d}/f", 1)
    return f"mtime_changed={os.stat(f'{d}/f').st_mtime_ns != 1_000_000_000_000_000_000}"


@check
def check_read_keeps_mtime(d):
    write_file(f"{d}/f", b"xyz")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    read_file(f"{d}/f")
    return f"mtime_kept={os.stat(f'{d}/f').st_mtime_ns == 1_000_000_000_000_000_000}"


@check
def check_utimens_explicit(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    st = os.stat(f"{d}/f")
    return (f"atime_ok={st.st_atime_ns == 1_600_000_000_123_456_789},"
            f"mtime_ok={st.st_mtime_ns == 1_500_000_000_987_654_321}")


@check
def check_utimens_seconds_only(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", (1_600_000_000, 1_500_000_000))
    st = os.stat(f"{d}/f")
    return f"atime_ok={st.st_atime_ns == 1_600_000_000 * 10**9},mtime_ok={st.st_mtime_ns == 1_500_000_000 * 10**9}"


@check
def check_utimens_before_1970(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(-86400 * 365 * 10**9, -86400 * 10**9 + 5))
    st = os.stat(f"{d}/f")
    return f"atime_ok={st.st_atime_ns == -86400 * 365 * 10**9},mtime_ok={st.st_mtime_ns == -86400 * 10**9 + 5}"


@check
def check_utimens_far_future(d):
    write_file(f"{d}/f", b"x")
    t = 4_102_444_800 * 10**9  # 2100-01-01
    os.utime(f"{d}/f", ns=(t, t))
    return f"mtime_ok={os.stat(f'{d}/f').st_mtime_ns == t}"


@check
def check_utimens_atime_only(d):
    # touch -a: atime set, mtime UTIME_OMIT.
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    utimensat(f"{d}/f", (1_200_000_000, 0), UTIME_OMIT)
    st = os.stat(f"{d}/f")
    return (f"atime_set={st.st_atime_ns == 1_200_000_000 * 10**9},"
            f"mtime_kept={st.st_mtime_ns == 1_100_000_000_000_000_000}")


@check
def check_utimens_mtime_only(d):
    # touch -m: mtime set, atime UTIME_OMIT.
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    utimensat(f"{d}/f", UTIME_OMIT, (1_300_000_000, 0))
    st = os.stat(f"{d}/f")
    return (f"atime_kept={st.st_atime_ns == 1_000_000_000_000_000_000},"
            f"mtime_set={st.st_mtime_ns == 1_300_000_000 * 10**9}")


@check
def check_utimens_now(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    utimensat(f"{d}/f", UTIME_NOW, UTIME_NOW)
    st = os.stat(f"{d}/f")
    now = time.time_ns()
    recent = lambda t: abs(now - t) < 60 * 10**9
    return f"atime_recent={recent(st.st_atime_ns)},mtime_recent={recent(st.st_mtime_ns)}"


@check
def check_utimens_python_none(d):
    # os.utime(path) with no times: both now, as `touch` on an existing file.
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.utime(f"{d}/f")
    st = os.stat(f"{d}/f")
    return f"mtime_recent={abs(time.time_ns() - st.st_mtime_ns) < 60 * 10**9}"


@check
def check_utimens_omit_both(d):
    write_file(f"{d}/f", b"x")
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    utimensat(f"{d}/f", UTIME_OMIT, UTIME_OMIT)
    st = os.stat(f"{d}/f")
    return (f"atime_kept={st.st_atime_ns == 1_000_000_000_000_000_000},"
            f"mtime_kept={st.st_mtime_ns == 1_100_000_000_000_000_000}")


@check
def check_utimens_changes_ctime(d):
    write_file(f"{d}/f", b"x")
    before = os.stat(f"{d}/f").st_ctime_ns
    tick()
    os.utime(f"{d}/f", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return f"ctime_changed={os.stat(f'{d}/f').st_ctime_ns != before}"


@check
def check_folder_times_on_add_and_remove(d):
    os.mkdir(f"{d}/sub")
    s0 = os.stat(f"{d}/sub")
    tick()
    write_file(f"{d}/sub/f", b"x")
    s1 = os.stat(f"{d}/sub")
    tick()
    os.unlink(f"{d}/sub/f")
    s2 = os.stat(f"{d}/sub")
    return (f"add_mtime={s1.st_mtime_ns != s0.st_mtime_ns},add_ctime={s1.st_ctime_ns != s0.st_ctime_ns},"
            f"rm_mtime={s2.st_mtime_ns != s1.st_mtime_ns},rm_ctime={s2.st_ctime_ns != s1.st_ctime_ns}")


@check
def check_folder_mtime_on_rename_out(d):
    os.mkdir(f"{d}/a")
    os.mkdir(f"{d}/b")
    write_file(f"{d}/a/f", b"x")
    a0, b0 = os.stat(f"{d}/a").st_mtime_ns, os.stat(f"{d}/b").st_mtime_ns
    tick()
    os.rename(f"{d}/a/f", f"{d}/b/f")
    return (f"src_changed={os.stat(f'{d}/a').st_mtime_ns != a0},"
            f"dst_changed={os.stat(f'{d}/b').st_mtime_ns != b0}")


@check
def check_folder_utimens(d):
    os.mkdir(f"{d}/sub")
    os.utime(f"{d}/sub", ns=(1_300_000_000_000_000_000, 1_200_000_000_000_000_000))
    return f"mtime_ok={os.stat(f'{d}/sub').st_mtime_ns == 1_200_000_000_000_000_000}"


# -- xattrs ------------------------------------------------------------------------------------

@check
def check_xattr_roundtrip(d):
    write_file(f"{d}/f", b"x")
    os.setxattr(f"{d}/f", "user.test", b"v\x00al\xff")
    got = os.getxattr(f"{d}/f", "user.test")
    listed = "user.test" in os.listxattr(f"{d}/f")
    os.removexattr(f"{d}/f", "user.test")
    after = expect_error(os.getxattr, f"{d}/f", "user.test")
    return f"got={got!r},listed={listed},after_remove={after},listed_after={'user.test' in os.listxattr(f'{d}/f')}"


@check
def check_xattr_missing(d):
    write_file(f"{d}/f", b"x")
    return f"get={expect_error(os.getxattr, f'{d}/f', 'user.none')},remove={expect_error(os.removexattr, f'{d}/f', 'user.none')}"


@check
def check_xattr_create_replace_flags(d):
    write_file(f"{d}/f", b"x")
    os.setxattr(f"{d}/f", "user.a", b"1")
    create = expect_error(os.setxattr, f"{d}/f", "user.a", b"2", os.XATTR_CREATE)
    replace = expect_error(os.setxattr, f"{d}/f", "user.b", b"2", os.XATTR_REPLACE)
    ok = expect_error(os.setxattr, f"{d}/f", "user.a", b"3", os.XATTR_REPLACE)
    return f"create={create},replace_missing={replace},replace={ok},value={os.getxattr(f'{d}/f', 'user.a')!r}"


@check
def check_xattr_empty_and_large(d):
    write_file(f"{d}/f", b"x")
    os.setxattr(f"{d}/f", "user.empty", b"")
    big = bytes(range(256)) * 4  # 1 KiB: ext4 without ea_inode stores at most one block
    os.setxattr(f"{d}/f", "user.big", big)
    return f"empty={os.getxattr(f'{d}/f', 'user.empty')!r},big_ok={os.getxattr(f'{d}/f', 'user.big') == big}"


@check
def check_xattr_on_folder(d):
    os.mkdir(f"{d}/sub")
    os.setxattr(f"{d}/sub", "user.k", b"v")
    return f"got={os.getxattr(f'{d}/sub', 'user.k')!r}"


@check
def check_xattr_user_on_symlink(d):
    os.symlink("nowhere", f"{d}/l")
    return expect_error(os.setxattr, f"{d}/l", "user.k", b"v", follow_symlinks=False)


@check
def check_xattr_survives_rename(d):
    write_file(f"{d}/a", b"x")
    os.setxattr(f"{d}/a", "user.k", b"v")
    os.rename(f"{d}/a", f"{d}/b")
    return f"got={os.getxattr(f'{d}/b', 'user.k')!r}"


@check
def check_xattr_via_fd(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.setxattr(fd, "user.k", b"v")
    got = os.getxattr(fd, "user.k")
    os.close(fd)
    return f"got={got!r}"


# -- fallocate, seek ---------------------------------------------------------------------------

def _falloc(d, initial, mode, off, length):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, initial)
    try:
        fallocate(fd, mode, off, length)
        r = "ok"
    except OSError as e:
        r = err(e)
    size = os.fstat(fd).st_size
    data = os.pread(fd, size + 10, 0)
    os.close(fd)
    return r, size, data


@check
def check_fallocate_default(d):
    r, size, data = _falloc(d, b"0123456789", 0, 0, 100)
    return f"{r},size={size},data={data[:10]!r},rest_zero={data[10:] == bytes(size - 10)}"


@check
def check_fallocate_keep_size(d):
    r, size, data = _falloc(d, b"0123456789", FALLOC_FL_KEEP_SIZE, 0, 100000)
    return f"{r},size={size},data={data!r}"


@check
def check_fallocate_punch_hole(d):
    r, size, data = _falloc(d, b"A" * 8192, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
    return f"{r},size={size},zeros={data.count(0)},as={data.count(ord('A'))}"


@check
def check_fallocate_zero_range(d):
    r, size, data = _falloc(d, b"0123456789" * 3, FALLOC_FL_ZERO_RANGE, 10, 10)
    return f"{r},size={size},data={data!r}"


@check
def check_fallocate_zero_range_extends(d):
    r, size, data = _falloc(d, b"0123456789", FALLOC_FL_ZERO_RANGE, 5, 20)
    return f"{r},size={size},data={data!r}"


@check
def check_posix_fallocate(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"ab")
    os.posix_fallocate(fd, 0, 50)
    size = os.fstat(fd).st_size
    os.close(fd)
    return f"size={size}"


@check
def check_seek_data_hole(d):
    write_file(f"{d}/f", b"hello")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    try:
        data = os.lseek(fd, 0, os.SEEK_DATA)
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
        past = expect_error(os.lseek, fd, 100, os.SEEK_DATA)
    finally:
        os.close(fd)
    return f"data_at={data},hole_at_or_after_end={hole >= 5},past_eof={past}"


@check
def check_seek_end_and_beyond(d):
    write_file(f"{d}/f", b"hello")
    fd = os.open(f"{d}/f", os.O_RDONLY)
    end = os.lseek(fd, 0, os.SEEK_END)
    beyond = os.lseek(fd, 100, os.SEEK_SET)
    neg = expect_error(os.lseek, fd, -1, os.SEEK_SET)
    os.close(fd)
    return f"end={end},beyond={beyond},negative={neg}"


# -- locks -------------------------------------------------------------------------------------

@check
def check_lockf_exclusive(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        a = expect_error(fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        b = expect_error(fcntl.lockf, fd, fcntl.LOCK_UN)
        return f"lock={a},unlock={b}"
    finally:
        os.close(fd)


@check
def check_posix_lock_conflict_other_process(d):
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            c = os.open(f"{d}/f", os.O_RDWR)
            res = expect_error(fcntl.lockf, c, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException as e:  # noqa: BLE001 - report anything from the child
            res = f"child:{type(e).__name__}"
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    res = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    os.close(fd)
    return f"child={res}"


@check
def check_ofd_lock_conflict(d):
    a = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    b = os.open(f"{d}/f", os.O_RDWR)
    lk = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)  # struct flock, whole file
    try:
        first = expect_error(fcntl.fcntl, a, fcntl.F_OFD_SETLK, lk)
        second = expect_error(fcntl.fcntl, b, fcntl.F_OFD_SETLK, lk)
        return f"first={first},second={second}"
    finally:
        os.close(a)
        os.close(b)


@check
def check_flock(d):
    a = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR, 0o644)
    b = os.open(f"{d}/f", os.O_RDONLY)
    try:
        first = expect_error(fcntl.flock, a, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = expect_error(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shared = expect_error(fcntl.flock, b, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(a, fcntl.LOCK_UN)
        after = expect_error(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return f"first={first},second={second},shared={shared},after_unlock={after}"
    finally:
        os.close(a)
        os.close(b)


# -- O_DIRECT, O_TMPFILE -----------------------------------------------------------------------

@check
def check_o_direct(d):
    buf = mmap.mmap(-1, 4096)
    buf.write(bytes(range(256)) * 16)
    fd = os.open(f"{d}/f", os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
    try:
        n = os.pwrite(fd, buf, 0)
        back = mmap.mmap(-1, 4096)
        m = os.preadv(fd, [back], 0)
        same = back[:] == buf[:]
    finally:
        os.close(fd)
    return f"written={n},read={m},same={same},file_same={read_file(f'{d}/f') == buf[:]}"


@check
def check_o_tmpfile_metadata(d):
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, b"0123456789")
    os.ftruncate(fd, 4)
    os.fchmod(fd, 0o640)
    os.utime(fd, ns=(1_500_000_000_000_000_000, 1_600_000_000_000_000_000))
    st = os.fstat(fd)
    linkat_follow(f"/proc/self/fd/{fd}", f"{d}/named")
    os.close(fd)
    named = os.stat(f"{d}/named")
    return (f"size={st.st_size},mode={oct(stat.S_IMODE(st.st_mode))},mtime={st.st_mtime_ns},nlink={st.st_nlink},"
            f"named_mode={oct(stat.S_IMODE(named.st_mode))},named_mtime={named.st_mtime_ns},data={read_file(f'{d}/named')!r}")


@check
def check_o_tmpfile(d):
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
    try:
        os.write(fd, b"tmp data")
        invisible = os.listdir(d) == []
        linkat_follow(f"/proc/self/fd/{fd}", f"{d}/named")
    finally:
        os.close(fd)
    return f"invisible={invisible},data={read_file(f'{d}/named')!r},mode={perm(f'{d}/named')}"


# -- names -------------------------------------------------------------------------------------

@check
def check_names_nfc_nfd(d):
    base = os.fsencode(d)
    nfc, nfd = b"caf\xc3\xa9", b"cafe\xcc\x81"
    write_file(base + b"/" + nfc, b"NFC")
    write_file(base + b"/" + nfd, b"NFD")
    listed = sorted(os.listdir(base))
    return (f"count={len(listed)},exact={listed == sorted([nfc, nfd])},"
            f"nfc={read_file(base + b'/' + nfc)!r},nfd={read_file(base + b'/' + nfd)!r}")


@check
def check_names_invalid_utf8(d):
    base = os.fsencode(d)
    a, b = b"\xe9.txt", b"\xe8.txt"
    write_file(base + b"/" + a, b"E9")
    write_file(base + b"/" + b, b"E8")
    listed = sorted(os.listdir(base))
    return (f"count={len(listed)},exact={listed == sorted([a, b])},"
            f"a={read_file(base + b'/' + a)!r},b={read_file(base + b'/' + b)!r}")


@check
def check_names_invalid_utf8_folder(d):
    base = os.fsencode(d)
    os.mkdir(base + b"/\xff\xfe")
    write_file(base + b"/\xff\xfe/\xc0", b"deep")
    os.rename(base + b"/\xff\xfe/\xc0", base + b"/\xff\xfe/\xc1")
    listed, data = os.listdir(base + b"/\xff\xfe"), read_file(base + b"/\xff\xfe/\xc1")
    return f"list={listed!r},data={data!r}"


@check
def check_name_255_bytes(d):
    return expect_error(write_file, f"{d}/{'n' * 255}", b"x")


@check
def check_name_255_bytes_multibyte(d):
    name = "é" * 127 + "x"  # 255 bytes
    r = expect_error(write_file, f"{d}/{name}", b"x")
    return f"{r},listed={os.listdir(d) == [name]}"


@check
def check_name_256_bytes(d):
    return expect_error(write_file, f"{d}/{'n' * 256}", b"x")


@check
def check_mkdir_256_bytes(d):
    return expect_error(os.mkdir, f"{d}/{'n' * 256}")


@check
def check_name_with_newline(d):
    base = os.fsencode(d)
    write_file(base + b"/a\nb", b"nl")
    listed, data = os.listdir(base), read_file(base + b"/a\nb")
    return f"list={listed!r},data={data!r}"


@check
def check_name_odd_characters(d):
    names = sorted([b"-dash", b" lead space", b"trail space ", b"a*b?c", b"back\\slash", b"tab\there",
                    b"quote'\"", b"\x01ctrl", b"...", b"dot.", b"emoji \xf0\x9f\x93\x81"])
    base = os.fsencode(d)
    for n in names:
        write_file(base + b"/" + n, n)
    ok = all(read_file(base + b"/" + n) == n for n in names)
    return f"same_list={sorted(os.listdir(base)) == names},contents_ok={ok}"


@check
def check_name_case_distinct(d):
    write_file(f"{d}/Readme", b"upper")
    write_file(f"{d}/readme", b"lower")
    return f"count={len(os.listdir(d))},upper={read_file(f'{d}/Readme')!r}"


# -- runner ------------------------------------------------------------------------------------

def outcome(exc):
    if isinstance(exc, OSError) and exc.errno is not None:
        return "exception:" + ename(exc.errno)
    return "exception:" + type(exc).__name__


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    os.umask(0o002)
    root = os.path.abspath(argv[1])
    wanted = argv[2:] or list(CHECKS)
    results = {}
    for name in wanted:
        d = os.path.join(root, name)
        try:
            os.mkdir(d)
            results[name] = CHECKS[name](d)
        except Exception as e:  # noqa: BLE001 - every failure becomes an outcome
            results[name] = outcome(e)
    json.dump(results, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
