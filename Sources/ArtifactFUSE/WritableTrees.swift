import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A node of a tree that takes changes, and the changes it answers. There are two kinds:
/// `StagedTree` (a project's incoming/, served from its backing folder under the core's
/// `IncomingChanges` protocol) and `WorkingTree` (a branch's `@branch/`, the core's
/// `Worktrees`). A callback finds the tree of its inode once (`ArtifactFileSystem.writable`)
/// and calls it; a node of no writable tree is read-only (EROFS). Folder operations name a
/// child of this node; attribute operations change the node itself.
///
/// One small interface per kind of change, as go-fuse's `fs` package has one per operation.
protocol WritableTree {
    func mkdir(_ name: PathBytes, mode: mode_t, by who: Caller) throws -> fuse_entry_param
    /// A regular file (created empty and closed), FIFO, socket or device node.
    func mknod(_ name: PathBytes, mode: mode_t, rdev: dev_t, by who: Caller) throws -> fuse_entry_param
    func symlink(_ name: PathBytes, target: PathBytes, by who: Caller) throws -> fuse_entry_param
    /// A hard link named `name` to `source`, which must be in the same tree (else EXDEV).
    func link(_ source: Inode, as name: PathBytes) throws -> fuse_entry_param
    /// unlink (`directory` false) or rmdir of `name`.
    func remove(_ name: PathBytes, directory: Bool, by who: Caller) throws
    /// rename(2) of `name` to `newName` in `target`, with renameat2's flags; EXDEV across trees.
    func rename(_ name: PathBytes, to target: any WritableTree, as newName: PathBytes, flags: UInt32) throws
    /// open(2) of this file; `writable`: for writing or truncating. The handle, and whether
    /// reads must bypass the page cache.
    func open(flags: Int32, writable: Bool) throws -> (FileHandle, directIO: Bool)
    /// create(2), open for writing: the entry and the handle the caller writes through.
    func create(_ name: PathBytes, mode: mode_t, flags: Int32, by who: Caller) throws -> (fuse_entry_param, FileHandle)
    /// open(dir, O_TMPFILE): an unnamed file open for writing, and the inode that stands for it.
    func createAnonymous(mode: mode_t, flags: Int32, by who: Caller) throws -> (FileHandle, Inode)
    /// chmod, chown, truncate, utimens: the new attributes and their timeout (seconds).
    /// `handle`: the caller's open file, if the change came through one (ftruncate).
    func setattr(_ attr: stat, toSet: Int32, handle: FileHandle?) throws -> (stat, Double)
    /// setxattr (`value` given) or removexattr (`value` nil) of `key`, or a control attribute.
    func setxattr(_ key: String, value: [UInt8]?, flags: Int32, by who: Caller) throws
}

extension ArtifactFileSystem {
    /// The writable tree `inode` is in, or nil when it is read-only.
    func writable(_ inode: Inode) -> (any WritableTree)? {
        switch inode.kind {
        case .staged(let s): return StagedTree(fs: self, node: s, inode: inode)
        case .virtual(.worktree(let b, let path)): return WorkingTree(fs: self, branch: b, path: path, inode: inode)
        case .virtual: return nil
        }
    }
}

/// Why a user may not set or remove extended attribute `key`, if so: only `user.*` are kept
/// (others: ENOTSUP; ENODATA for a removal), `user.artifactfs.*` are the daemon's (EPERM),
/// and Linux allows user attributes on no symbolic link (EPERM).
func refusal(forChanging key: String, isSymlink: Bool, removing: Bool) -> Errno? {
    if !key.hasPrefix("user.") { return removing ? .noData : .notSupported }
    if !UserXattrs.isUserAttribute(key) || isSymlink { return .notPermitted }
    return nil
}

// MARK: incoming/

/// A node of a project's incoming/: the backing folder holds the bytes and the tree; every
/// change runs under the project's change lock (`IncomingChanges.changing`) so that a seal
/// sees a still folder.
struct StagedTree: WritableTree {
    let fs: ArtifactFileSystem
    let node: StagedObject
    let inode: Inode

    private func changing<T>(_ body: (inout IncomingChanges.Change) throws -> T) throws -> T {
        try fs.incoming.changing(node.projectId, body)
    }

    func mkdir(_ name: PathBytes, mode: mode_t, by who: Caller) throws -> fuse_entry_param {
        try make(name, for: who) { dir, c in Glibc.mkdirat(dir, c, mode) }
        return try fs.stagedEntry(parent: node, name: name)
    }

    func mknod(_ name: PathBytes, mode: mode_t, rdev: dev_t, by who: Caller) throws -> fuse_entry_param {
        if (mode & S_IFMT) == S_IFREG {
            try changing { _ in
                let fd = try node.withFD { dir, _ in try Syscalls.openat(dir, name, flags: O_CREAT | O_EXCL | O_WRONLY, mode: mode & 0o7777) }
                Syscalls.giveToCaller(fd, uid: who.uid, gid: who.gid, mode: mode, parentIsSetGID: fs.isSetGID(node))
                close(fd)
            }
        } else {
            // FIFOs, sockets and device nodes: kept as metadata-only entries (SPEC §1).
            try make(name, for: who) { dir, c in afs_mknodat(dir, c, mode, rdev) }
        }
        return try fs.stagedEntry(parent: node, name: name)
    }

    func symlink(_ name: PathBytes, target: PathBytes, by who: Caller) throws -> fuse_entry_param {
        try make(name, for: who) { dir, c in target.withCString { afs_symlinkat($0, dir, c) } }
        return try fs.stagedEntry(parent: node, name: name)
    }

    func link(_ source: Inode, as name: PathBytes) throws -> fuse_entry_param {
        guard let from = source.staged, from.projectId == node.projectId else { throw Errno.improperLink }
        try changing { _ in
            func link(_ procPath: String) throws {
                try node.withFD { dir, _ in
                    _ = try name.withCString { c in try Syscalls.retrying { afs_linkat(AT_FDCWD, procPath, dir, c, AT_SYMLINK_FOLLOW) } }
                }
            }
            if let handle = source.anonymousHandle {
                // An O_TMPFILE file, reached through its open descriptor.
                try link("/proc/self/fd/\(handle.fd)")
            } else {
                // The /proc path of an O_PATH descriptor, followed: a hard link to that very inode.
                try from.withFD { _, procPath in try link(procPath) }
            }
        }
        return try fs.stagedEntry(parent: node, name: name)
    }

    func remove(_ name: PathBytes, directory: Bool, by who: Caller) throws {
        try changing { _ in try unlinkAt(name, flags: directory ? AT_REMOVEDIR : 0) }
    }

    func rename(_ name: PathBytes, to target: any WritableTree, as newName: PathBytes, flags: UInt32) throws {
        guard let target = target as? StagedTree, target.node.projectId == node.projectId else { throw Errno.improperLink }
        try changing { _ in try renameAt(name, to: target.node, newName, flags: flags) }
    }

    func open(flags: Int32, writable: Bool) throws -> (FileHandle, directIO: Bool) {
        let fd: Int32
        do {
            fd = try openFile(flags: Self.readable(flags & backingOpenMask), writable: writable)
        } catch Errno.permissionDenied where flags & O_ACCMODE == O_WRONLY {
            // A daemon that is not root may not read a file of mode 0200 it owns: write-only
            // then, and the hashing thread's read-back fails, which spoils the hash (the seal
            // reads the file itself).
            fd = try openFile(flags: flags & backingOpenMask, writable: writable)
        }
        return (FileHandle(fd: fd, staged: node, writable: writable), false)
    }

    /// `flags` with O_WRONLY made O_RDWR: the `BackgroundHasher` reads a staged file back
    /// through (a duplicate of) its writer's descriptor. The caller's access mode is still
    /// the kernel's to enforce: it sends no READ for a file opened write-only.
    static func readable(_ flags: Int32) -> Int32 {
        flags & O_ACCMODE == O_WRONLY ? (flags & ~O_ACCMODE) | O_RDWR : flags
    }

    func create(_ name: PathBytes, mode: mode_t, flags: Int32, by who: Caller) throws -> (fuse_entry_param, FileHandle) {
        try changing { change in
            // A new file in one call (O_EXCL); only a name that exists already, opened without
            // O_EXCL, costs a second open.
            let (existed, fd) = try node.withFD { dir, _ -> (Bool, Int32) in
                let open = Self.readable(flags & backingOpenMask)
                do {
                    return (false, try Syscalls.openat(dir, name, flags: open | O_CREAT | O_EXCL, mode: mode & 0o7777))
                } catch Errno.fileExists where flags & O_EXCL == 0 {
                    return (true, try Syscalls.openat(dir, name, flags: open | O_CREAT, mode: mode & 0o7777))
                }
            }
            // An existing file opened through create keeps its owner, as with open(2).
            if !existed { Syscalls.giveToCaller(fd, uid: who.uid, gid: who.gid, mode: mode, parentIsSetGID: fs.isSetGID(node)) }
            // If the reply cannot be built (e.g. out of descriptors), leave no empty file behind
            // that a later seal would register.
            func abandon(_ error: Error) -> Error {
                close(fd)
                if !existed { _ = try? node.withFD { dir, _ in name.withCString { unlinkat(dir, $0, 0) } } }
                return error
            }
            // A new file's entry from its descriptor: the name cannot change meanwhile (the
            // project's change lock is held), and fstat saves looking the folder up again. A
            // name that existed is looked up as itself (it may be a symbolic link).
            let e: fuse_entry_param
            do {
                e = existed ? try fs.stagedEntry(parent: node, name: name)
                            : try fs.stagedEntry(parent: node, name: name, stat: try Syscalls.fstat(fd))
            } catch { throw abandon(error) }
            guard let child = fs.inodes.get(e.ino)?.staged else { throw abandon(Errno.noSuchFileOrDirectory) }
            change.beginWriting(child.writes, fd: fd, truncated: true, created: !existed)
            return (e, FileHandle(fd: fd, staged: child, writable: true))
        }
    }

    func createAnonymous(mode: mode_t, flags: Int32, by who: Caller) throws -> (FileHandle, Inode) {
        try changing { change in
            let fd = try node.withFD { dir, _ in
                try Syscalls.openat(dir, PathBytes("."), flags: Self.readable(flags & (O_ACCMODE | O_EXCL)) | afs_o_tmpfile(), mode: mode & 0o7777)
            }
            Syscalls.giveToCaller(fd, uid: who.uid, gid: who.gid, mode: mode, parentIsSetGID: fs.isSetGID(node))
            let st: stat
            do { st = try Syscalls.fstat(fd) } catch { close(fd); throw error }
            let object = StagedObject(base: node.base, path: nil, dev: UInt64(st.st_dev), realIno: UInt64(st.st_ino),
                                      projectId: node.projectId, isDirectory: false)
            let handle = FileHandle(fd: fd, staged: object, writable: true)
            change.beginWriting(object.writes, fd: fd, truncated: true, created: true)
            return (handle, fs.inodes.insertAnonymous(.staged(object), handle: handle))
        }
    }

    func setattr(_ attr: stat, toSet: Int32, handle: FileHandle?) throws -> (stat, Double) {
        // The handle's descriptor (ftruncate), else for a file whose name is gone a writer's
        // (fchmod and futimens come without a handle).
        let fd = handle?.fd ?? (node.path == nil ? inode.anyWritableDescriptor : nil)
        try changing { _ in try Operations.setattr(node, attr: attr, toSet: toSet, fd: fd, incoming: fs.incoming) }
        if let st = (try? fs.stagedStat(node, ino: inode.ino)) ?? Operations.unlinkedOpenFile(handle, inode: inode) {
            return (st, fs.mutableTimeout)
        }
        throw Errno.noSuchFileOrDirectory
    }

    func setxattr(_ key: String, value: [UInt8]?, flags: Int32, by who: Caller) throws {
        if key == ControlAttribute.imported, let value {
            try fs.importedRun(projectId: node.projectId, name: String(decoding: value, as: UTF8.self))
            return
        }
        if key == ControlAttribute.seal, value != nil {
            DaemonTestHooks.asked(key)
            switch try fs.seals.seal(projectId: node.projectId, includingInterrupted: true) {
            case .sealed, .empty: return
            case .busy: throw ArtifactError(.busy, "files are still open for writing")
            }
        }
        if let refusal = refusal(forChanging: key, isSymlink: node.isSymlink, removing: value == nil) { throw refusal }
        try changing { _ in
            try node.withFD { _, path in
                if let value {
                    _ = try value.withUnsafeBytes { raw in
                        try Syscalls.retrying { afs_setxattr_flags(path, key, raw.baseAddress?.assumingMemoryBound(to: CChar.self), value.count, flags) }
                    }
                } else {
                    _ = try Syscalls.retrying { afs_removexattr(path, key) }
                }
            }
        }
    }
}

extension StagedTree {
    /// Makes `name` in a staged folder with `make(folder descriptor, name)` (mkdirat, mknodat,
    /// symlinkat) and gives it to the caller as the kernel's own create would: the caller's uid,
    /// and gid unless the folder is set-group-ID.
    fileprivate func make(_ name: PathBytes, for who: Caller,
                          _ make: (Int32, UnsafePointer<CChar>) -> Int32) throws {
        try changing { _ in
            try node.withFD { dir, _ in
                _ = try name.withCString { c in try Syscalls.retrying { make(dir, c) } }
                let gid = fs.isSetGID(node) ? gid_t.max : who.gid
                _ = name.withCString { fchownat(dir, $0, who.uid, gid, AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    /// unlink or rmdir of `name` in a staged folder; the object the kernel knew there loses
    /// its name (an open file stays readable through its descriptor).
    fileprivate func unlinkAt(_ name: PathBytes, flags: Int32) throws {
        let known = fs.knownStaged(parent: node, name: name)
        _ = try node.withFD { dir, _ in try name.withCString { c in try Syscalls.retrying { unlinkat(dir, c, flags) } } }
        if let known, known.path == node.path?.appending(name) { known.path = nil }
    }

    /// rename(2) in incoming/, with renameat2's flags; the objects the kernel knows follow.
    fileprivate func renameAt(_ fromName: PathBytes, to b: StagedObject, _ toName: PathBytes, flags: UInt32) throws {
        let a = node
        guard let fromDir = a.path, let toDir = b.path else { throw Errno.noSuchFileOrDirectory }
        let from = fromDir.appending(fromName), to = toDir.appending(toName)
        let moving = fs.knownStaged(parent: a, name: fromName), replaced = fs.knownStaged(parent: b, name: toName)
        let movingIsDirectory = (try? fs.stagedStat(parent: a, name: fromName)).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
        let replacedIsDirectory = (try? fs.stagedStat(parent: b, name: toName)).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
        try a.withFD { da, _ in try b.withFD { db, _ in try Syscalls.renameat2(da, fromName, db, toName, flags: flags) } }
        let exchange = flags & 2 != 0  // RENAME_EXCHANGE
        if let replaced, replaced !== moving { replaced.path = exchange ? from : nil }
        moving?.path = to
        if movingIsDirectory || (exchange && replacedIsDirectory) {
            fs.inodes.renameStagedFolder(projectId: a.projectId, from: from, to: to, exchange: exchange)
        }
    }

    fileprivate func openFile(flags: Int32, writable: Bool) throws -> Int32 {
        let s = node
        guard !s.isDirectory else { throw ArtifactError(.isDirectory, "is a folder", path: s.path ?? .empty) }
        if !writable { return try s.withFD { _, path in try Syscalls.open(path, flags: flags) } }
        return try changing { change in
            let fd = try s.withFD { _, path in try Syscalls.open(path, flags: flags) }
            let size = (try? Syscalls.fstat(fd).st_size) ?? 1
            change.beginWriting(s.writes, fd: fd, truncated: size == 0)
            return fd
        }
    }
}

// MARK: @branch/

/// A node of a branch's working tree: the core's `Worktrees` keeps the tree and its changes;
/// written bytes live in upper files that descriptors here point at.
struct WorkingTree: WritableTree {
    let fs: ArtifactFileSystem
    let branch: RefID
    /// This node's path in the working tree ("" is `@branch` itself).
    let path: PathBytes
    let inode: Inode

    private var worktrees: Worktrees { fs.worktrees }

    private func entry(_ name: PathBytes) throws -> fuse_entry_param {
        try fs.entry(for: .worktree(branch: branch, path: path.appending(name)), parent: .worktree(branch: branch, path: path))
    }

    func mkdir(_ name: PathBytes, mode: mode_t, by who: Caller) throws -> fuse_entry_param {
        _ = try worktrees.mkdir(branch: branch, path: path.appending(name), mode: Int64(mode & 0o7777), uid: Int64(who.uid), gid: Int64(who.gid))
        return try entry(name)
    }

    func mknod(_ name: PathBytes, mode: mode_t, rdev: dev_t, by who: Caller) throws -> fuse_entry_param {
        if (mode & S_IFMT) == S_IFREG {
            let (e, fd, _) = try createFile(name, mode: mode, flags: O_WRONLY | O_CREAT | O_EXCL, by: who, writer: false)
            close(fd)
            return e
        }
        guard let kind = FileKind(mode: UInt32(mode)) else { throw Errno.invalidArgument }
        try worktrees.mknod(branch: branch, path: path.appending(name), kind: kind, mode: Int64(mode & 0o7777), rdev: Int64(rdev),
                            uid: Int64(who.uid), gid: Int64(who.gid))
        return try entry(name)
    }

    func symlink(_ name: PathBytes, target: PathBytes, by who: Caller) throws -> fuse_entry_param {
        try worktrees.symlink(branch: branch, path: path.appending(name), target: target, uid: Int64(who.uid), gid: Int64(who.gid))
        return try entry(name)
    }

    func link(_ source: Inode, as name: PathBytes) throws -> fuse_entry_param {
        guard case .virtual(.worktree(let sb, let from)) = source.kind, sb == branch else { throw Errno.improperLink }
        let target = path.appending(name)
        if let handle = source.anonymousHandle {
            // linkat of an O_TMPFILE file: its upper file gets the name.
            let upper = try worktrees.linkOpenFile(branch: branch, descriptor: handle.fd, to: target)
            handle.named(upper) { worktrees.beginWriting(upperPath: upper, fd: handle.fd) }
            fs.inodes.nameAnonymous(source.ino, as: .worktree(branch: branch, path: target))
            return try entry(name)
        }
        try worktrees.link(branch: branch, from: from, to: target)
        // Both names are one inode to the kernel (see `NodeAttributes.linkIdentity`).
        if let identity = try fs.namespace.attributes(.worktree(branch: branch, path: target)).linkIdentity {
            fs.inodes.registerLink(identity, ino: source.ino)
        }
        return try entry(name)
    }

    func remove(_ name: PathBytes, directory: Bool, by who: Caller) throws {
        let target = path.appending(name)
        if directory { try worktrees.rmdir(branch: branch, path: target, by: who.uid) } else { try worktrees.unlink(branch: branch, path: target, by: who.uid) }
        fs.inodes.detachWorktree(branch: branch, path: target)
    }

    func rename(_ name: PathBytes, to target: any WritableTree, as newName: PathBytes, flags: UInt32) throws {
        guard let target = target as? WorkingTree, target.branch == branch else { throw Errno.improperLink }
        try renameFile(name, toDir: target.path, as: newName, flags: flags)
    }

    func open(flags: Int32, writable: Bool) throws -> (FileHandle, directIO: Bool) {
        // Each open reads what it opened, even in the page cache's face: no shared cache.
        (try openFile(flags: flags, wantsWrite: writable), !writable)
    }

    func create(_ name: PathBytes, mode: mode_t, flags: Int32, by who: Caller) throws -> (fuse_entry_param, FileHandle) {
        let (e, fd, upper) = try createFile(name, mode: mode, flags: flags, by: who, writer: true)
        return (e, FileHandle(fd: fd, staged: nil, writable: true, branch: branch, upperPath: upper))
    }

    func createAnonymous(mode: mode_t, flags: Int32, by who: Caller) throws -> (FileHandle, Inode) {
        let fd = try worktrees.openAnonymous(branch: branch, dir: path, mode: Int64(mode), flags: flags,
                                             uid: Int64(who.uid), gid: Int64(who.gid))
        let handle = FileHandle(fd: fd, staged: nil, writable: true, branch: branch)
        // A node no name reaches (no file name holds a NUL): its attributes come from the
        // descriptor, as an unlinked open file's do.
        let unnamed = Node.worktree(branch: branch, path: path.appending(PathBytes([0] + Array("tmpfile".utf8))))
        return (handle, fs.inodes.insertAnonymous(.virtual(unnamed), handle: handle))
    }

    func setattr(_ attr: stat, toSet: Int32, handle: FileHandle?) throws -> (stat, Double) {
        do {
            try setAttributes(attr, toSet: toSet)
            return try fs.attributes(of: inode)
        } catch {
            // ftruncate, fchmod, fchown or futimens of a file removed (or never named, O_TMPFILE)
            // while open for writing: through its descriptor.
            guard let fd = handle?.writable == true ? handle?.fd : inode.anyWritableDescriptor,
                  (try? worktrees.item(branch: branch, path: path)) == nil else { throw error }
            try Operations.setattr(fd: fd, attr: attr, toSet: toSet)
            guard let st = Operations.unlinkedOpenFile(handle, inode: inode) else { throw error }
            return (st, 0)
        }
    }

    func setxattr(_ key: String, value: [UInt8]?, flags: Int32, by who: Caller) throws {
        if path.isEmpty, value != nil, key == ControlAttribute.imported {
            fs.importedVersion(branch: branch)
            return
        }
        if path.isEmpty, let value, key == ControlAttribute.seal || key == ControlAttribute.commit {
            // `user.artifactfs.commit` (value: the message) or `.seal` on `@branch`.
            let message = key == ControlAttribute.commit && !value.isEmpty ? String(decoding: value, as: UTF8.self) : nil
            DaemonTestHooks.asked(key)
            switch try fs.committer.commit(branch: branch, message: message, author: Int64(who.uid), includingInterrupted: true) {
            case .committed, .unchanged: return
            case .busy: throw ArtifactError(.busy, "files are open for writing")
            }
        }
        let isSymlink = value != nil && (try? worktrees.item(branch: branch, path: path))??.kind == .symlink
        if let refusal = refusal(forChanging: key, isSymlink: isSymlink, removing: value == nil) { throw refusal }
        try worktrees.setXattr(branch: branch, path: path, name: key, value: value, flags: flags)
    }
}

extension WorkingTree {
    /// Creates (or opens) a working-tree file and returns its entry and descriptor. With
    /// `writer` the descriptor counts as an open writer of the branch until `endWriting`.
    fileprivate func createFile(_ name: PathBytes, mode: mode_t, flags: Int32, by who: Caller, writer: Bool) throws -> (fuse_entry_param, Int32, String) {
        let target = path.appending(name)
        let upper = try worktrees.create(branch: branch, path: target, mode: Int64(mode & 0o7777), uid: Int64(who.uid), gid: Int64(who.gid),
                                         exclusive: flags & O_EXCL != 0, truncate: flags & O_TRUNC != 0, writer: writer)
        var fd: Int32 = -1
        do {
            fd = try Syscalls.open(upper, flags: flags & backingOpenMask)
            let e = try entry(name)
            if writer { worktrees.beginWriting(upperPath: upper, fd: fd) }
            return (e, fd, upper)
        } catch {
            if fd >= 0 { close(fd) }
            if writer { worktrees.endWriting(branch: branch) }
            throw error
        }
    }

    /// Opens a working-tree file. Writers get the upper copy; readers get a descriptor fixed at
    /// open (a blob, or the upper file as it is), so a commit never changes what they read.
    fileprivate func openFile(flags: Int32, wantsWrite: Bool) throws -> FileHandle {
        if wantsWrite {
            let upper = try worktrees.openForWrite(branch: branch, path: path, truncate: flags & O_TRUNC != 0, writer: true)
            do {
                let fd = try Syscalls.open(upper, flags: flags & backingOpenMask)
                let handle = FileHandle(fd: fd, staged: nil, writable: true, branch: branch, upperPath: upper)
                worktrees.beginWriting(upperPath: upper, fd: fd)
                return handle
            } catch {
                worktrees.endWriting(branch: branch)
                throw error
            }
        }
        switch try fs.namespace.content(.worktree(branch: branch, path: path)) {
        case .blob(let hash, let size):
            return try fs.openBlob(hash, size: size)
        case .staged(let upper):
            return FileHandle(fd: try Syscalls.open(upper, flags: O_RDONLY), staged: nil, writable: false)
        case .bytes:
            throw Errno.invalidArgument
        }
    }

    fileprivate func setAttributes(_ attr: stat, toSet: Int32) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        var mtime: Int64?, atime: Int64?
        if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
            mtime = now
        } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
            mtime = Int64(attr.st_mtim.tv_sec) * 1_000_000_000 + Int64(attr.st_mtim.tv_nsec)
        }
        if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
            atime = now
        } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
            atime = Int64(attr.st_atim.tv_sec) * 1_000_000_000 + Int64(attr.st_atim.tv_nsec)
        }
        try worktrees.setAttributes(
            branch: branch, path: path,
            mode: toSet & FUSE_SET_ATTR_MODE != 0 ? Int64(attr.st_mode & 0o7777) : nil,
            uid: toSet & FUSE_SET_ATTR_UID != 0 ? Int64(attr.st_uid) : nil,
            gid: toSet & FUSE_SET_ATTR_GID != 0 ? Int64(attr.st_gid) : nil,
            size: toSet & FUSE_SET_ATTR_SIZE != 0 ? Int64(attr.st_size) : nil,
            mtimeNs: mtime, atimeNs: atime)
    }

    fileprivate func renameFile(_ name: PathBytes, toDir: PathBytes, as newName: PathBytes, flags: UInt32) throws {
        // renameat2 flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
        let from = path.appending(name), to = toDir.appending(newName)
        let exchange = flags & 2 != 0
        let isDirectory = try worktrees.item(branch: branch, path: from)?.isDirectory ?? false
        let targetIsDirectory = try worktrees.item(branch: branch, path: to)?.isDirectory ?? false
        try worktrees.rename(branch: branch, from: from, to: to, noReplace: flags & 1 != 0, exchange: exchange)
        if exchange {
            fs.inodes.exchangeWorktree(branch: branch, a: from, b: to, aIsDirectory: isDirectory, bIsDirectory: targetIsDirectory)
        } else {
            fs.inodes.renameWorktree(branch: branch, from: from, to: to, isDirectory: isDirectory)
        }
    }
}

/// A hidden hook for the integration tests: with `ARTIFACTFS_TEST_DIE_ON=seal` (or `commit`)
/// in its environment, the daemon kills itself when a seal (or commit) is asked through a
/// control attribute, while the CLI waits for the answer, as a crash then would: the CLI must
/// say the outcome is unknown, never "failed". (Not after the seal: its invalidations of
/// incoming/ entries then wait, uninterruptibly, for the very lock the asking CLI holds, and a
/// process with such a thread cannot finish dying: the mount hangs until
/// `/sys/fs/fuse/connections/N/abort`.)
enum DaemonTestHooks {
    private static let dieOn = ProcessInfo.processInfo.environment["ARTIFACTFS_TEST_DIE_ON"]

    static func asked(_ key: String) {
        if let dieOn, key == ControlAttribute.prefix + dieOn { raise(SIGKILL) }
    }
}
