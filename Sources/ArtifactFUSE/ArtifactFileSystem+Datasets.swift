import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// datasets/: creating datasets and branches, and the `@branch` working trees.
extension ArtifactFileSystem {
    var worktrees: Worktrees { namespace.worktrees }

    /// mkdir under datasets/ (a dataset), in a dataset folder (`@NAME` forks a branch from main's
    /// head) or in a working tree.
    func mkdirDataset(req: fuse_req_t, parent: Node, name: PathBytes, mode: mode_t) throws -> fuse_entry_param {
        let who = caller(req)
        // Datasets and branches have text names; a folder in a working tree may be any bytes.
        let text = name.validUTF8
        switch parent {
        case .datasets:
            guard let text else { throw ArtifactError(.invalidName, "a dataset name must be UTF-8 text", path: name) }
            let ds = try store.catalog.createDataset(name: text, uid: Int64(who.uid), gid: Int64(who.gid))
            return try entry(for: .dataset(ds.id!), parent: parent)
        case .dataset(let d):
            guard name.hasPrefix("@") else {
                throw ArtifactError(.readOnly, "only @BRANCH folders can be made in a dataset folder", path: name)
            }
            guard let text else { throw ArtifactError(.invalidName, "a branch name must be UTF-8 text", path: name) }
            let main = try store.catalog.ref(datasetId: d, kind: .branch, name: "main")
            let branch = try store.catalog.createBranch(datasetId: d, name: String(text.dropFirst()), at: main?.versionId)
            return try entry(for: .worktree(branch: branch.id!, path: .empty), parent: parent)
        case .worktree(let b, let dir):
            let path = dir.appending(name)
            _ = try worktrees.mkdir(branch: b, path: path, mode: Int64(mode & 0o7777), uid: Int64(who.uid), gid: Int64(who.gid))
            return try entry(for: .worktree(branch: b, path: path), parent: parent)
        default:
            throw ArtifactError(.readOnly, "read-only")
        }
    }

    /// Creates (or opens) a working-tree file and returns its entry and descriptor. With
    /// `writer` the descriptor counts as an open writer of the branch until `endWriting`.
    func createInWorktree(req: fuse_req_t, branch: RefID, dir: PathBytes, name: PathBytes, mode: mode_t, flags: Int32,
                          writer: Bool) throws -> (fuse_entry_param, Int32, String) {
        let who = caller(req)
        let path = dir.appending(name)
        let upper = try worktrees.create(branch: branch, path: path, mode: Int64(mode & 0o7777), uid: Int64(who.uid), gid: Int64(who.gid),
                                         exclusive: flags & O_EXCL != 0, truncate: flags & O_TRUNC != 0, writer: writer)
        var fd: Int32 = -1
        do {
            fd = try Syscalls.open(upper, flags: flags & backingOpenMask)
            let e = try entry(for: .worktree(branch: branch, path: path), parent: .worktree(branch: branch, path: dir))
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
    func openWorktree(branch: RefID, path: PathBytes, flags: Int32, wantsWrite: Bool) throws -> FileHandle {
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
        switch try namespace.content(.worktree(branch: branch, path: path)) {
        case .blob(let hash, let size):
            return FileHandle(fd: try openBlob(hash, size: size), staged: nil, writable: false)
        case .staged(let upper):
            return FileHandle(fd: try Syscalls.open(upper, flags: O_RDONLY), staged: nil, writable: false)
        case .bytes:
            throw Errno.invalidArgument
        }
    }

    func setattrWorktree(branch: RefID, path: PathBytes, attr: stat, toSet: Int32) throws {
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

    func unlinkWorktree(branch: RefID, dir: PathBytes, name: PathBytes, directory: Bool) throws {
        let path = dir.appending(name)
        if directory { try worktrees.rmdir(branch: branch, path: path) } else { try worktrees.unlink(branch: branch, path: path) }
        inodes.detachWorktree(branch: branch, path: path)
    }

    func renameWorktree(branch: RefID, fromDir: PathBytes, fromName: PathBytes, toBranch: RefID, toDir: PathBytes, toName: PathBytes, flags: UInt32) throws {
        guard branch == toBranch else { throw Errno.improperLink }
        // renameat2 flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
        let from = fromDir.appending(fromName), to = toDir.appending(toName)
        let exchange = flags & 2 != 0
        let isDirectory = try worktrees.item(branch: branch, path: from)?.isDirectory ?? false
        let targetIsDirectory = try worktrees.item(branch: branch, path: to)?.isDirectory ?? false
        try worktrees.rename(branch: branch, from: from, to: to, noReplace: flags & 1 != 0, exchange: exchange)
        if exchange {
            inodes.exchangeWorktree(branch: branch, a: from, b: to, aIsDirectory: isDirectory, bIsDirectory: targetIsDirectory)
        } else {
            inodes.renameWorktree(branch: branch, from: from, to: to, isDirectory: isDirectory)
        }
    }

    /// setxattr on `@branch`: `user.artifactfs.commit` (value: the message) or `.seal`.
    func commitFromAttribute(req: fuse_req_t, branch: RefID, message: String?) throws {
        let who = caller(req)
        switch try committer.commit(branch: branch, message: message, author: Int64(who.uid), includingInterrupted: true) {
        case .committed, .unchanged: return
        case .busy: throw ArtifactError(.busy, "files are open for writing")
        }
    }
}
