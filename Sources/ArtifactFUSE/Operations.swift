import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// The low-level callbacks. Each one resolves its inode, does one thing, and replies exactly
// once. They never await: state is reached through the session's user data.

@inline(__always)
private func fs(_ req: fuse_req_t?) -> ArtifactFileSystem {
    Unmanaged<ArtifactFileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

@inline(__always)
private func reply(_ req: fuse_req_t?, error: Error) {
    fuse_reply_err(req, errnoValue(for: error))
}

/// A name from the kernel, byte for byte (never `String(cString:)`, which repairs invalid UTF-8).
private func name(_ p: UnsafePointer<CChar>?) -> PathBytes { p.map { PathBytes(cString: $0) } ?? .empty }

/// An extended attribute's name: these are text by the kernel's rules (namespace.name).
private func attributeName(_ p: UnsafePointer<CChar>?) -> String { p.map { String(decoding: PathBytes(cString: $0).bytes, as: UTF8.self) } ?? "" }

private func replyEntry(_ req: fuse_req_t?, _ e: fuse_entry_param) {
    var e = e
    fs(req).forCaller(&e, req)
    fuse_reply_entry(req, &e)
}

/// Flags of an open(2) that the kernel has handled and the daemon must not pass to a backing
/// file: O_CREAT/O_EXCL (the create already happened), O_NOFOLLOW (no links on the backing
/// side), O_DIRECT (a request to the kernel, which FUSE has honoured already; the buffers
/// libfuse hands the daemon are not aligned, so backing files are opened without it).
let backingOpenMask: Int32 = ~(O_NOFOLLOW | O_CREAT | O_EXCL | afs_o_direct())

/// The name a create carries when it is an open(…, O_TMPFILE) (see `afs_session_read`).
private let anonymousName = PathBytes("/")

/// EROFS for every change outside incoming/ and the mkdir of a project.
private let readOnly = ArtifactError(.readOnly, "read-only")

enum Operations {
    static func make() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let conn else { return }
            conn.pointee.max_write = 1 << 20
            conn.pointee.max_readahead = 1 << 20
            let want: UInt32 = UInt32(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_READDIRPLUS
                | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ)
            conn.pointee.want |= (conn.pointee.capable & want)
            conn.pointee.want &= ~UInt32(FUSE_CAP_READDIRPLUS_AUTO)
        }
        ops.lookup = { Self.lookup($0, $1, $2) }
        ops.forget = { Self.forget($0, $1, $2) }
        ops.forget_multi = { Self.forgetMulti($0, $1, $2) }
        ops.getattr = { Self.getattr($0, $1, $2) }
        ops.setattr = { Self.setattr($0, $1, $2, $3, $4) }
        ops.mkdir = { Self.mkdir($0, $1, $2, $3) }
        ops.mknod = { Self.mknod($0, $1, $2, $3, $4) }
        ops.symlink = { Self.symlink($0, $1, $2, $3) }
        ops.link = { Self.link($0, $1, $2, $3) }
        ops.readlink = { Self.readlink($0, $1) }
        ops.unlink = { Self.unlink($0, $1, $2) }
        ops.rmdir = { Self.rmdir($0, $1, $2) }
        ops.rename = { Self.rename($0, $1, $2, $3, $4, $5) }
        ops.open = { Self.open($0, $1, $2) }
        ops.create = { Self.create($0, $1, $2, $3, $4) }
        ops.read = { Self.read($0, $1, $2, $3, $4) }
        ops.write = { Self.write($0, $1, $2, $3, $4, $5) }
        ops.fallocate = { Self.fallocate($0, $1, $2, $3, $4, $5) }
        // No flush: there is nothing to do at close(2) but release, and without a handler the
        // kernel stops sending FLUSH after the first ENOSYS (one round trip less per file).
        ops.release = { Self.release($0, $1, $2) }
        ops.fsync = { Self.fsync($0, $1, $2, $3) }
        ops.opendir = { Self.opendir($0, $1, $2) }
        ops.readdir = { Self.readdir($0, $1, $2, $3, $4) }
        ops.readdirplus = { Self.readdirplus($0, $1, $2, $3, $4) }
        ops.releasedir = { Self.releasedir($0, $1, $2) }
        ops.fsyncdir = { Self.fsyncdir($0, $1, $2, $3) }
        ops.statfs = { Self.statfs($0, $1) }
        ops.getxattr = { Self.getxattr($0, $1, $2, $3) }
        ops.listxattr = { Self.listxattr($0, $1, $2) }
        ops.setxattr = { Self.setxattr($0, $1, $2, $3, $4, $5) }
        ops.removexattr = { Self.removexattr($0, $1, $2) }
        return ops
    }

    // MARK: callbacks (libfuse low-level operations, one named function each)

    static func lookup(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        let fs = fs(req)
        let n = name(cname)
        guard let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        do {
            try fs.require(.read, on: p, req)
            switch p.kind {
            case .staged(let s):
                do {
                    replyEntry(req, try fs.stagedEntry(parent: s, name: n))
                } catch Errno.noSuchFileOrDirectory {
                    var e = fs.stagedAbsentEntry()
                    if fs.access.shared { e.entry_timeout = 0 }  // see `forCaller`
                    fuse_reply_entry(req, &e)
                }
            case .virtual(let node):
                if n.count > NameRules.maxBytes { fuse_reply_err(req, ENAMETOOLONG); return }
                guard let child = try fs.namespace.lookup(node, n) else { fuse_reply_err(req, ENOENT); return }
                replyEntry(req, try fs.entry(for: child, parent: node))
            }
        } catch { reply(req, error: error) }
    }

    static func forget(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ nlookup: UInt64) {
        fs(req).inodes.forget(ino, nlookup)
        fuse_reply_none(req)
    }

    static func forgetMulti(_ req: fuse_req_t?, _ count: Int, _ forgets: UnsafeMutablePointer<fuse_forget_data>?) {
        let fs = fs(req)
        if let forgets {
            for i in 0..<count { fs.inodes.forget(forgets[i].ino, forgets[i].nlookup) }
        }
        fuse_reply_none(req)
    }

    static func getattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        do {
            // What is inside a project or dataset is read's, as a folder's search bit guards
            // what is in it (the kernel may know a name from another user's lookup).
            // An fstat of a file the caller opened before a revoke still answers, as POSIX has
            // it (the kernel does not say whether a getattr comes from fstat or stat).
            if !fs.isResourceFolder(inode), !fs.openers.holds(ino: UInt64(ino), req) { try fs.require(.read, on: inode, req) }
            var (st, timeout) = try fs.attributes(of: inode)
            fs.forCaller(&st, &timeout, inode: inode, req)
            fuse_reply_attr(req, &st, timeout)
        } catch {
            // fstat of a file that was removed while open: its descriptor still knows it.
            if var st = Self.unlinkedOpenFile(fi, inode: inode) { fuse_reply_attr(req, &st, 0); return }
            reply(req, error: error)
        }
    }

    static func setattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ attr: UnsafeMutablePointer<stat>?, _ toSet: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino), let requested = attr else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(inode) else { fuse_reply_err(req, EROFS); return }
        do { try fs.requireChange(on: inode, req, owner: requested.pointee, toSet: toSet) } catch { reply(req, error: error); return }
        var attr = requested.pointee, toSet = toSet
        // FATTR_KILL_SUIDGID (HANDLE_KILLPRIV_V2): a truncate or chown that must also drop
        // set-user-ID and set-group-ID, done here as the mode change the kernel would send.
        let kill = FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID
        if toSet & kill != 0 {
            toSet &= ~kill
            if toSet & FUSE_SET_ATTR_MODE == 0, let mode = Self.modeWithoutSetID(req, inode) {
                attr.st_mode = mode
                toSet |= FUSE_SET_ATTR_MODE
            }
        }
        do {
            var (st, timeout) = try tree.setattr(attr, toSet: toSet, handle: fi.flatMap { Handles.from($0.pointee.fh) as? FileHandle })
            fs.forCaller(&st, &timeout, inode: inode, req)
            fuse_reply_attr(req, &st, timeout)
        } catch { reply(req, error: error) }
    }


    static func mkdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ mode: mode_t) {
        let fs = fs(req)
        let n = name(cname)
        guard let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        do {
            if let tree = fs.writable(p) {
                try fs.require(.write, on: p, req)
                replyEntry(req, try tree.mkdir(n, mode: mode, by: fs.caller(req!)))
            } else if case .virtual(let node) = p.kind {
                // A project or a dataset (anyone, who then administers it), or a branch.
                try fs.require(.write, on: p, req, to: "making a branch")
                replyEntry(req, try fs.mkdirVirtual(parent: node, name: n, by: fs.caller(req!)))
            }
        } catch { reply(req, error: error) }
    }


    static func mknod(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ mode: mode_t, _ rdev: dev_t) {
        let fs = fs(req)
        guard let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(p) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: p, req)
            replyEntry(req, try tree.mknod(name(cname), mode: mode, rdev: rdev, by: fs.caller(req!)))
        } catch { reply(req, error: error) }
    }


    static func symlink(_ req: fuse_req_t?, _ target: UnsafePointer<CChar>?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        let fs = fs(req)
        guard let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(p) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: p, req)
            replyEntry(req, try tree.symlink(name(cname), target: name(target), by: fs.caller(req!)))
        } catch { reply(req, error: error) }
    }


    static func link(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ newparent: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        let fs = fs(req)
        guard let p = fs.inodes.get(newparent), let source = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(p) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: p, req)
            try fs.require(.read, on: source, req)
            replyEntry(req, try tree.link(source, as: name(cname)))
        } catch { reply(req, error: error) }
    }


    static func readlink(_ req: fuse_req_t?, _ ino: fuse_ino_t) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        do {
            try fs.require(.read, on: inode, req)
            let target: PathBytes
            switch inode.kind {
            case .staged(let s):
                target = try s.withFD { fd, _ in try Syscalls.readlink(fd: fd) }
            case .virtual(let node):
                target = try fs.namespace.linkTarget(node)
            }
            target.withCString { _ = fuse_reply_readlink(req, $0) }
        } catch { reply(req, error: error) }
    }

    static func unlink(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        remove(req, parent, cname, directory: false)
    }


    static func rmdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        remove(req, parent, cname, directory: true)
    }

    /// unlink and rmdir.
    static func remove(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?, directory: Bool) {
        let fs = fs(req)
        guard let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(p) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: p, req)
            try tree.remove(name(cname), directory: directory, by: fs.caller(req!))
            fuse_reply_err(req, 0)
        } catch { reply(req, error: error) }
    }


    static func rename(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ newparent: fuse_ino_t, _ cnewname: UnsafePointer<CChar>?, _ flags: UInt32) {
        let fs = fs(req)
        guard let from = fs.inodes.get(parent), let to = fs.inodes.get(newparent) else { fuse_reply_err(req, ENOENT); return }
        // Into or out of a read-only folder: read-only; between two writable trees: EXDEV, as
        // across filesystems (mv copies then).
        guard let source = fs.writable(from), let target = fs.writable(to) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: from, req)
            try fs.require(.write, on: to, req)
            try source.rename(name(cname), to: target, as: name(cnewname), flags: flags)
            fuse_reply_err(req, 0)
        } catch { reply(req, error: error) }
    }


    static func open(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        guard let fi, let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        let dropsSetID = fi.pointee.flags & killSetIDFlag != 0
        fi.pointee.flags &= ~killSetIDFlag
        let flags = fi.pointee.flags
        let wantsWrite = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0
        do {
            if (flags & O_ACCMODE) != O_WRONLY { try fs.require(.read, on: inode, req) }
            if wantsWrite, fs.writable(inode) != nil { try fs.require(.write, on: inode, req) }
            if let tree = fs.writable(inode) {
                let (handle, directIO) = try tree.open(flags: flags, writable: wantsWrite)
                handle.inode = inode
                inode.attach(handle.fd, writable: wantsWrite)
                if dropsSetID { Self.dropSetID(req, inode, handle: handle) }
                fi.pointee.fh = handle.toFH()
                if directIO { afs_fi_set_direct_io(fi, 1) }
                Self.replyOpened(req, fi, ino: ino)
                return
            }
            switch inode.kind {
            case .virtual(let node):
                if wantsWrite { throw readOnly }
                switch try fs.namespace.content(node) {
                case .blob(let hash, let size):
                    fi.pointee.fh = try fs.openBlob(hash, size: size).toFH()
                    afs_fi_set_keep_cache(fi, 1)
                case .bytes(let bytes):
                    fi.pointee.fh = BytesHandle(bytes: bytes).toFH()
                    afs_fi_set_direct_io(fi, 1)
                case .staged:
                    throw readOnly
                }
            case .staged:
                throw readOnly
            }
            Self.replyOpened(req, fi, ino: ino)
        } catch { reply(req, error: error) }
    }

    static func create(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ mode: mode_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        let n = name(cname)
        guard let fi, let p = fs.inodes.get(parent) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(p) else { fuse_reply_err(req, EROFS); return }
        // The kernel asks for the set-ID bits to go when an unprivileged O_TRUNC create (not
        // O_EXCL) finds the file there after all: as for open.
        let dropsSetID = fi.pointee.flags & killSetIDFlag != 0
        fi.pointee.flags &= ~killSetIDFlag
        do { try fs.require(.write, on: p, req) } catch { reply(req, error: error); return }
        if n == anonymousName { Self.createAnonymous(req, in: tree, mode: mode, fi: fi); return }
        do {
            let (e, handle) = try tree.create(n, mode: mode, flags: fi.pointee.flags, by: fs.caller(req!))
            if let inode = fs.inodes.get(e.ino) {
                handle.inode = inode
                inode.attach(handle.fd, writable: true)
                if dropsSetID { Self.dropSetID(req, inode, handle: handle) }
            }
            fi.pointee.fh = handle.toFH()
            // Replied to after the change: a reply that fails closes the handle, which takes the lock.
            Self.replyOpened(req, fi, ino: e.ino, entry: e)
        } catch { reply(req, error: error) }
    }


    static func read(_ req: fuse_req_t?, _: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        guard let fi, let handle = Handles.from(fi.pointee.fh) else { fuse_reply_err(req, EBADF); return }
        if let h = handle as? FileHandle {
            if h.check != nil {
                do { try fs(req).checkRead(h, offset: Int64(off), length: size) } catch { reply(req, error: error); return }
            }
            _ = afs_reply_fd(req, h.fd, size, off)
        } else if let b = handle as? BytesHandle {
            let start = min(Int(off), b.bytes.count), end = min(start + size, b.bytes.count)
            b.bytes.withUnsafeBytes { raw in
                _ = fuse_reply_buf(req, raw.baseAddress.map { $0 + start }?.assumingMemoryBound(to: CChar.self), end - start)
            }
        } else {
            fuse_reply_err(req, EISDIR)
        }
    }

    static func write(_ req: fuse_req_t?, _: fuse_ino_t, _ buf: UnsafePointer<CChar>?, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        guard let fi, let h = Handles.from(fi.pointee.fh) as? FileHandle, h.writable else {
            fuse_reply_err(req, EBADF); return
        }
        // FUSE_WRITE_KILL_SUIDGID: an unprivileged writer (see killSetIDFlag).
        if fi.pointee.flags & killSetIDFlag != 0, let inode = h.inode { Self.dropSetID(req, inode, handle: h) }
        let s = h.staged
        let generation = s?.writes.generation ?? 0
        var done = 0
        while done < size {
            let n = pwrite(h.fd, buf! + done, size - done, off + off_t(done))
            if n < 0 {
                let err = afs_errno()
                if err == EINTR { continue }
                s?.writes.spoil()
                fuse_reply_err(req, err)
                return
            }
            done += n
        }
        s?.writes.record(UnsafeRawBufferPointer(start: buf, count: size), at: Int64(off), through: h.fd, since: generation)
        fuse_reply_write(req, size)
    }

    static func fallocate(_ req: fuse_req_t?, _: fuse_ino_t, _ mode: Int32, _ offset: off_t, _ length: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        guard let fi, let h = Handles.from(fi.pointee.fh) as? FileHandle, h.writable else { fuse_reply_err(req, EBADF); return }
        if afs_fallocate(h.fd, mode, offset, length) != 0 { fuse_reply_err(req, afs_errno()); return }
        // Preallocation and holes change bytes the streaming hash has not seen in order:
        // the seal reads the file again.
        h.staged?.writes.spoil()
        fuse_reply_err(req, 0)
    }

    static func release(_ req: fuse_req_t?, _: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        if let fi { fs(req).openers.released(fi.pointee.fh) }
        if let released = fi.flatMap({ Handles.release($0.pointee.fh) }) { Self.closed(fs(req), released) }
        fuse_reply_err(req, 0)
    }

    /// What the close of an open file ends: its descriptor's place on the inode and, for a
    /// writer, the writer it counted. From `release`, or when the open's reply never reached
    /// the caller (it was interrupted: the kernel sends no release then).
    static func closed(_ fs: ArtifactFileSystem, _ released: AnyObject) {
        guard let h = released as? FileHandle else { return }
        h.inode?.detach(h.fd)
        guard h.writable else { return }
        if let s = h.staged { fs.incoming.endWriting(s.writes, fd: h.fd) }
        h.markClosed { upper in fs.worktrees.endWriting(upperPath: upper, fd: h.fd) }
        if let b = h.branch { fs.worktrees.endWriting(branch: b) }
    }

    /// Replies to an open or create; when the reply cannot be delivered (the opener was
    /// interrupted, libfuse answers -ENOENT) the handle is closed here, as libfuse's own
    /// high-level layer does, so no writer stays counted.
    static func replyOpened(_ req: fuse_req_t?, _ fi: UnsafeMutablePointer<fuse_file_info>, ino: fuse_ino_t, entry: fuse_entry_param? = nil) {
        let fs = fs(req)
        fs.openers.opened(fi.pointee.fh, ino: UInt64(ino), req)
        let rc: Int32
        if var e = entry {
            fs.forCaller(&e, req)
            rc = fuse_reply_create(req, &e, fi)
        } else { rc = fuse_reply_open(req, fi) }
        if rc != 0 {
            fs.openers.released(fi.pointee.fh)
            if let released = Handles.release(fi.pointee.fh) { closed(fs, released) }
        }
    }

    static func fsync(_ req: fuse_req_t?, _: fuse_ino_t, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        guard let fi, let h = Handles.from(fi.pointee.fh) as? FileHandle else { fuse_reply_err(req, 0); return }
        let rc = datasync != 0 ? fdatasync(h.fd) : Glibc.fsync(h.fd)
        fuse_reply_err(req, rc == 0 ? 0 : afs_errno())
    }

    static func opendir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        guard let fi, let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        do {
            try fs.require(.read, on: inode, req)
            fi.pointee.fh = try fs.openDirectory(inode).toFH()
            if fs.keepsListing(inode) {
                afs_fi_set_cache_readdir(fi, 1)
                afs_fi_set_keep_cache(fi, 1)
            }
            fuse_reply_open(req, fi)
        } catch { reply(req, error: error) }
    }

    static func readdir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        fs(req).readDirectory(req: req!, ino: ino, size: size, offset: off, fi: fi, plus: false)
    }

    static func readdirplus(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        fs(req).readDirectory(req: req!, ino: ino, size: size, offset: off, fi: fi, plus: true)
    }

    static func releasedir(_ req: fuse_req_t?, _: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
        if let fi { _ = Handles.release(fi.pointee.fh) }
        fuse_reply_err(req, 0)
    }

    static func fsyncdir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _: Int32, _: UnsafeMutablePointer<fuse_file_info>?) {
        let fs = fs(req)
        if let s = fs.inodes.get(ino)?.staged {
            _ = try? s.withFD { _, path in
                let fd = try Syscalls.open(path, flags: O_RDONLY | O_DIRECTORY)
                _ = Glibc.fsync(fd)
                close(fd)
            }
        }
        fuse_reply_err(req, 0)
    }

    static func statfs(_ req: fuse_req_t?, _: fuse_ino_t) {
        var st = statvfs()
        if statvfs(fs(req).store.root, &st) != 0 { fuse_reply_err(req, afs_errno()); return }
        st.f_namemax = UInt(NameRules.maxBytes)
        fuse_reply_statfs(req, &st)
    }

    /// FUSE_ACCESS, asked on a shared mount only (`FUSESession`): see `checkAccess`.
    static func access(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ mask: Int32) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        do {
            try fs.checkAccess(inode, mask: mask, req)
            fuse_reply_err(req, 0)
        } catch { reply(req, error: error) }
    }

    static func getxattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ size: Int) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        let wanted = attributeName(cname)
        // Only user.* attributes exist here (SPEC §1), so security.*, system.* (POSIX ACLs) and
        // trusted.* are not supported, as setxattr says too. ENOTSUP rather than ENODATA: ls -l
        // (gnulib's ACL and SELinux probes) then stops asking for every other file of this
        // filesystem, which was 2 of every 3 requests of a listing.
        guard wanted.hasPrefix("user.") else { fuse_reply_err(req, ENOTSUP); return }
        do {
            if case .virtual(.root) = inode.kind, wanted.hasPrefix(ControlAttribute.result + ".") {
                let part = try fs.controlResult(wanted, size: size, req)
                if size == 0 { fuse_reply_xattr(req, part.count) } else { Self.replyXattr(req, part, size: size) }
                return
            }
            if wanted == ControlAttribute.right {
                // The caller's own right where it asks (the CLI names it in its refusals).
                Self.replyXattr(req, Array(try fs.right(on: inode, req).description.utf8), size: size)
                return
            }
            try fs.require(.read, on: inode, req)
            guard let value = try fs.extendedAttributes(inode).first(where: { $0.0 == wanted })?.1 else {
                fuse_reply_err(req, ENODATA); return
            }
            Self.replyXattr(req, value, size: size)
        } catch { reply(req, error: error) }
    }

    static func listxattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        do {
            try fs.require(.read, on: inode, req)
            var bytes: [UInt8] = []
            for key in try fs.listedAttributes(inode) { bytes += Array(key.utf8); bytes.append(0) }
            Self.replyXattr(req, bytes, size: size)
        } catch { reply(req, error: error) }
    }

    static func setxattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ cname: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?, _ size: Int, _ flags: Int32) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        if case .virtual(.root) = inode.kind, attributeName(cname) == ControlAttribute.forgotten {
            do {
                try fs.requireStoreUser(req)
                try fs.forgotten(file: String(decoding: bytes, as: UTF8.self))
                fuse_reply_err(req, 0)
            } catch { reply(req, error: error) }
            return
        }
        if case .virtual(.root) = inode.kind, attributeName(cname) == ControlAttribute.request {
            do {
                try fs.controlRequest(bytes, req)
                fuse_reply_err(req, 0)
            } catch { reply(req, error: error) }
            return
        }
        guard let tree = fs.writable(inode) else { fuse_reply_err(req, EROFS); return }
        do {
            let key = attributeName(cname)
            if key == ControlAttribute.imported { try fs.requireStoreUser(req) }
            try fs.require(.write, on: inode, req, to: key == ControlAttribute.seal ? "seal" : key == ControlAttribute.commit ? "commit" : nil)
            try tree.setxattr(key, value: bytes, flags: flags, by: fs.caller(req!))
            fuse_reply_err(req, 0)
        } catch { reply(req, error: error) }
    }


    static func removexattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ cname: UnsafePointer<CChar>?) {
        let fs = fs(req)
        guard let inode = fs.inodes.get(ino) else { fuse_reply_err(req, ENOENT); return }
        guard let tree = fs.writable(inode) else { fuse_reply_err(req, EROFS); return }
        do {
            try fs.require(.write, on: inode, req)
            try tree.setxattr(attributeName(cname), value: nil, flags: 0, by: fs.caller(req!))
            fuse_reply_err(req, 0)
        } catch { reply(req, error: error) }
    }



    /// The attributes of an open file whose name is gone, from its descriptor (nlink 0).
    /// open(dir, O_TMPFILE), which the session reader hands over as a create of
    /// `anonymousName` (see `afs_session_read`): an unnamed file, open read-write, that
    /// `linkat` may name later (link above) and that is gone if it is closed first.
    static func createAnonymous(_ req: fuse_req_t?, in tree: any WritableTree, mode: mode_t, fi: UnsafeMutablePointer<fuse_file_info>) {
        let fs = fs(req)
        do {
            let (handle, inode) = try tree.createAnonymous(mode: mode, flags: fi.pointee.flags, by: fs.caller(req!))
            handle.inode = inode
            inode.attach(handle.fd, writable: true)
            fi.pointee.fh = handle.toFH()
            guard let st = try? Syscalls.fstat(handle.fd) else {
                if let released = Handles.release(fi.pointee.fh) { closed(fs, released) }
                fuse_reply_err(req, EIO)
                return
            }
            var e = fuse_entry_param()
            e.ino = inode.ino
            e.attr = st
            e.attr.st_ino = UInt(inode.ino)
            e.attr.st_blksize = ArtifactFileSystem.blockSize
            e.attr.st_nlink = 1  // the kernel's d_tmpfile takes this one link away
            Self.replyOpened(req, fi, ino: e.ino, entry: e)
        } catch { reply(req, error: error) }
    }


    static func unlinkedOpenFile(_ fi: UnsafeMutablePointer<fuse_file_info>?, inode: Inode?) -> stat? {
        unlinkedOpenFile(fi.flatMap { Handles.from($0.pointee.fh) as? FileHandle }, inode: inode)
    }

    static func unlinkedOpenFile(_ handle: FileHandle?, inode: Inode?) -> stat? {
        let fd = handle?.fd ?? inode?.anyOpenDescriptor
        guard let inode, let fd, var st = try? Syscalls.fstat(fd) else { return nil }
        let ino = inode.ino
        st.st_ino = UInt(ino)
        st.st_nlink = 0
        st.st_blksize = ArtifactFileSystem.blockSize
        return st
    }

    /// The bit the session reader adds to a request's open flags when the kernel asks the
    /// daemon to drop set-user-ID and set-group-ID: HANDLE_KILLPRIV_V2, negotiated by the CFuse3
    /// shim (`afs_session_read`) so that the kernel stops asking for `security.capability`
    /// before every write. Stripped before the flags reach a backing open(2).
    static let killSetIDFlag = afs_kill_suidgid_flag()

    /// The permission bits of `st` without set-user-ID, and without set-group-ID when the group
    /// may execute or the caller of `req` is neither root nor in the file's group: what Linux
    /// drops when a caller without CAP_FSETID writes, truncates or chowns a file (fs/inode.c
    /// `should_remove_suid`, fs/attr.c `setattr_should_drop_sgid`; FUSE_HANDLE_KILLPRIV_V2 in
    /// <linux/fuse.h>).
    static func withoutSetID(_ st: stat, caller req: fuse_req_t?) -> mode_t {
        var m = st.st_mode & 0o7777 & ~S_ISUID
        if m & S_ISGID != 0, m & S_IXGRP != 0 || !callerIsRootOrInGroup(req, st.st_gid) { m &= ~S_ISGID }
        return m
    }

    /// Whether the caller of `req` is root or has `gid` as its group or one of its groups (which
    /// libfuse reads from /proc, so only asked for a set-group-ID file).
    static func callerIsRootOrInGroup(_ req: fuse_req_t?, _ gid: gid_t) -> Bool {
        guard let req, let ctx = fuse_req_ctx(req) else { return true }
        if ctx.pointee.uid == 0 || ctx.pointee.gid == gid { return true }
        var groups = [gid_t](repeating: 0, count: 256)
        let n = fuse_req_getgroups(req, Int32(groups.count), &groups)
        return n > 0 && groups.prefix(Int(min(n, Int32(groups.count)))).contains(gid)
    }

    /// Drops `inode`'s set-user-ID and set-group-ID bits (see `withoutSetID`) when it has them,
    /// through `handle`. A file that cannot be stat'ed keeps its mode: nothing is gained by
    /// failing the write or the open for it.
    static func dropSetID(_ req: fuse_req_t?, _ inode: Inode, handle: FileHandle?) {
        guard let tree = fs(req).writable(inode), let mode = modeWithoutSetID(req, inode) else { return }
        var attr = stat()
        attr.st_mode = mode
        _ = try? tree.setattr(attr, toSet: FUSE_SET_ATTR_MODE, handle: handle)
    }

    /// `inode`'s permission bits once its set-ID bits are dropped for the caller of `req`
    /// (`withoutSetID`), or nil when that changes nothing (or it cannot be stat'ed).
    static func modeWithoutSetID(_ req: fuse_req_t?, _ inode: Inode) -> mode_t? {
        guard let (st, _) = try? fs(req).attributes(of: inode) else { return nil }
        let mode = withoutSetID(st, caller: req)
        return mode != st.st_mode & 0o7777 ? mode : nil
    }

    /// chmod, truncate and utimens through a descriptor.
    static func setattr(fd: Int32, attr: stat, toSet: Int32) throws {
        if toSet & FUSE_SET_ATTR_MODE != 0, fchmod(fd, attr.st_mode & 0o7777) != 0 { throw Errno(rawValue: afs_errno()) }
        if toSet & FUSE_SET_ATTR_SIZE != 0, ftruncate(fd, attr.st_size) != 0 { throw Errno(rawValue: afs_errno()) }
        if toSet & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME) != 0 {
            if futimens(fd, requestedTimes(attr, toSet)) != 0 { throw Errno(rawValue: afs_errno()) }
        }
        if toSet & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0 {
            if fchown(fd, owner(attr, toSet).uid, owner(attr, toSet).gid) != 0 { throw Errno(rawValue: afs_errno()) }
        }
    }

    /// utimensat's two timespecs for a setattr: the given time, UTIME_NOW, or UTIME_OMIT.
    static func requestedTimes(_ attr: stat, _ toSet: Int32) -> [timespec] {
        var times = [timespec(tv_sec: 0, tv_nsec: utimeOmit), timespec(tv_sec: 0, tv_nsec: utimeOmit)]
        if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 { times[0].tv_nsec = utimeNow }
        else if toSet & FUSE_SET_ATTR_ATIME != 0 { times[0] = attr.st_atim }
        if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 { times[1].tv_nsec = utimeNow }
        else if toSet & FUSE_SET_ATTR_MTIME != 0 { times[1] = attr.st_mtim }
        return times
    }

    static func replyXattr(_ req: fuse_req_t?, _ bytes: [UInt8], size: Int) {
        if size == 0 {
            fuse_reply_xattr(req, bytes.count)
        } else if size < bytes.count {
            fuse_reply_err(req, ERANGE)
        } else {
            bytes.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count) }
        }
    }

    /// A staged file's setattr: through the caller's open descriptor when there is one (so it
    /// works on a file whose name is gone), else through the file's path.
    static func setattr(_ s: StagedObject, attr: stat, toSet: Int32, fd: Int32?, incoming: IncomingChanges) throws {
        if let fd, fd >= 0 {
            try setattr(fd: fd, attr: attr, toSet: toSet)
        } else {
            try s.withFD { fd, procPath in
                if toSet & FUSE_SET_ATTR_MODE != 0, chmod(procPath, attr.st_mode & 0o7777) != 0 { throw Errno(rawValue: afs_errno()) }
                if toSet & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0,
                   fchownat(fd, "", owner(attr, toSet).uid, owner(attr, toSet).gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
                    throw Errno(rawValue: afs_errno())
                }
                if toSet & FUSE_SET_ATTR_SIZE != 0, truncate(procPath, attr.st_size) != 0 { throw Errno(rawValue: afs_errno()) }
                if toSet & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME) != 0,
                   utimensat(AT_FDCWD, procPath, requestedTimes(attr, toSet), 0) != 0 {
                    throw Errno(rawValue: afs_errno())
                }
            }
        }
        if toSet & FUSE_SET_ATTR_SIZE != 0 {
            incoming.truncated(s.writes, to: Int64(attr.st_size))
        }
    }

    /// The uid and gid a setattr asks for (-1: unchanged).
    static func owner(_ attr: stat, _ toSet: Int32) -> (uid: uid_t, gid: gid_t) {
        (toSet & FUSE_SET_ATTR_UID != 0 ? attr.st_uid : uid_t.max, toSet & FUSE_SET_ATTR_GID != 0 ? attr.st_gid : gid_t.max)
    }
}

// <sys/stat.h> defines these as macros Swift does not import.
private let utimeNow = (1 << 30) - 1
private let utimeOmit = (1 << 30) - 2
