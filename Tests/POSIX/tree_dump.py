#!/usr/bin/env python3
"""Prints a tree as one line per entry, everything `tar -p` and restic keep of it, so that two
trees compare with `diff`: path (escaped bytes), type, mode, owner, mtime (ns), size, link target,
user.* attributes, and which names are hard links of one file (numbered by first appearance).
atime is left out: reading a tree changes it.

Usage: tree_dump.py DIR [--no-dir-mtime]"""
import os, stat, sys

def esc(b):
    return b.decode("utf-8", "backslashreplace")

def main():
    root = os.fsencode(sys.argv[1])
    dir_mtime = "--no-dir-mtime" not in sys.argv
    groups = {}
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            kind = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l", stat.S_IFIFO: "p",
                    stat.S_IFSOCK: "s", stat.S_IFCHR: "c", stat.S_IFBLK: "b"}[stat.S_IFMT(st.st_mode)]
            fields = [esc(rel), kind, oct(stat.S_IMODE(st.st_mode)), f"{st.st_uid}:{st.st_gid}"]
            if kind != "d" or dir_mtime:
                fields.append(str(st.st_mtime_ns))
            if kind == "f":
                fields.append(str(st.st_size))
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    groups.setdefault(key, len(groups) + 1)
                    fields.append(f"link{groups[key]}x{st.st_nlink}")
            if kind == "l":
                fields.append("-> " + esc(os.readlink(full)))
            if kind in "cb":
                fields.append(f"rdev={os.major(st.st_rdev)},{os.minor(st.st_rdev)}")
            if kind in "fd":
                try:
                    attrs = sorted(a for a in os.listxattr(full, follow_symlinks=False)
                                   if a.startswith("user.") and not a.startswith("user.artifactfs."))
                except OSError:
                    attrs = []
                for a in attrs:
                    fields.append(f"{a}={os.getxattr(full, a, follow_symlinks=False)!r}")
            lines.append(" ".join(fields))
    print("\n".join(lines))

main()
