import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The FUSE adapter's state: the namespace and seal coordinator it serves, its inode table,
/// and the settings of this mount. Callbacks reach it through the session's user data.
public final class ArtifactFileSystem: @unchecked Sendable {
    public let store: ArtifactStore
    public let namespace: Namespace
    public let seals: SealCoordinator
    /// Commits `@branch` working trees (at the quiet period, `commit` and `seal`).
    public let committer: DatasetCommitter
    let inodes = InodeTable()
    let logger: Logger

    /// Content that cannot change is cached by the kernel for this long.
    let immutableTimeout: Double = 3600
    let mutableTimeout: Double = 1
    static let blockSize: Int = 1 << 20

    public init(store: ArtifactStore, seals: SealCoordinator, logger: Logger) {
        self.store = store
        self.namespace = Namespace(store: store)
        self.seals = seals
        self.logger = logger
        self.committer = DatasetCommitter(worktrees: namespace.worktrees, logger: logger)
        seals.onSealed = { [weak self] projectId, removed in
            self?.inodes.releaseSealed(projectId: projectId, realInos: removed)
        }
    }

    /// One O_PATH descriptor per staged file the kernel knows: raise the soft limit to the hard
    /// one, as passthrough_hp does, so a large `cp -r` never runs out.
    public static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    // MARK: attributes

    func stat(of attrs: NodeAttributes, ino: UInt64) -> stat {
        var st = Glibc.stat()
        st.st_ino = UInt(ino)
        st.st_mode = (attrs.isDirectory ? S_IFDIR : S_IFREG) | mode_t(attrs.mode)
        st.st_nlink = UInt(attrs.nlink)
        st.st_size = Int(attrs.size)
        st.st_uid = attrs.uid
        st.st_gid = attrs.gid
        st.st_blksize = Self.blockSize
        st.st_blocks = Int((attrs.size + 511) / 512)
        let ts = timespec(tv_sec: Int(attrs.mtimeNs / 1_000_000_000), tv_nsec: Int(attrs.mtimeNs % 1_000_000_000))
        st.st_mtim = ts
        st.st_ctim = ts
        st.st_atim = ts
        return st
    }

    func stagedStat(_ s: StagedObject, ino: UInt64) throws -> stat {
        var st = try s.withFD { fd, _ in try Syscalls.fstat(fd) }
        st.st_ino = UInt(ino)
        st.st_blksize = Self.blockSize
        return st
    }

    func attributes(of inode: Inode) throws -> (stat, Double) {
        switch inode.kind {
        case .staged(let s):
            return (try stagedStat(s, ino: inode.ino), mutableTimeout)
        case .virtual(let node):
            return (stat(of: try namespace.attributes(node), ino: inode.ino), attrTimeout(node))
        }
    }

    // MARK: entries

    /// Makes the entry reply for a virtual node (one more lookup on its inode).
    func entry(for node: Node, parent: Node?) throws -> fuse_entry_param {
        if case .incoming(let p) = node { return try incomingRootEntry(projectId: p) }
        let attrs = try namespace.attributes(node)
        let inode = inodes.lookupVirtual(node)
        return virtualEntry(node, attrs: attrs, ino: inode.ino, parent: parent)
    }

    func virtualEntry(_ node: Node, attrs: NodeAttributes, ino: UInt64, parent: Node?) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = ino
        e.attr = stat(of: attrs, ino: ino)
        e.attr_timeout = attrTimeout(node)
        e.entry_timeout = entryTimeout(node, parent: parent)
        return e
    }

    /// Registered files never change; `.run.json` changes while a run is processed.
    func attrTimeout(_ node: Node) -> Double {
        switch node {
        case .file, .output, .versionFile, .versionDir: return immutableTimeout
        case .runJSON, .pipelineDefinition, .datasetLog: return 0
        default: return mutableTimeout
        }
    }

    /// latest/<file> points at a new version after every seal; every other name keeps its node.
    func entryTimeout(_ node: Node, parent: Node?) -> Double {
        if case .latest = parent, case .file = node { return 0 }
        if case .worktree = node { return mutableTimeout }
        return immutableTimeout
    }

    func incomingRootEntry(projectId: Int64) throws -> fuse_entry_param {
        let path = try store.staging.ensureIncoming(projectId: projectId)
        let st = try Syscalls.lstat(path)
        let inode = try inodes.lookupStaged(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), node: .incoming(projectId)) {
            let fd = try Syscalls.open(path, flags: O_PATH | O_DIRECTORY)
            return StagedObject(fd: fd, dev: UInt64(st.st_dev), realIno: UInt64(st.st_ino), projectId: projectId, isDirectory: true)
        }
        var e = fuse_entry_param()
        e.ino = inode.ino
        e.attr = try stagedStat(inode.staged!, ino: inode.ino)
        e.attr_timeout = mutableTimeout
        e.entry_timeout = immutableTimeout
        return e
    }

    /// Looks up `name` in a staged folder; the inode gains one lookup.
    func stagedEntry(parent: StagedObject, name: PathBytes) throws -> fuse_entry_param {
        var st = Glibc.stat()
        if name.withCString({ fstatat(parent.fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) != 0 { throw Errno(rawValue: afs_errno()) }
        let isDir = (st.st_mode & S_IFMT) == S_IFDIR
        let inode = try inodes.lookupStaged(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), node: nil) {
            let fd = try Syscalls.openat(parent.fd, name, flags: O_PATH | O_NOFOLLOW)
            return StagedObject(fd: fd, dev: UInt64(st.st_dev), realIno: UInt64(st.st_ino),
                                projectId: parent.projectId, isDirectory: isDir)
        }
        var e = fuse_entry_param()
        e.ino = inode.ino
        e.attr = st
        e.attr.st_ino = UInt(inode.ino)
        e.attr.st_blksize = Self.blockSize
        e.attr_timeout = mutableTimeout
        e.entry_timeout = 0  // a seal removes staged names behind the kernel's back
        return e
    }

    // MARK: incoming/ changes

    /// Runs a change to a project's incoming/ under its lock and records it for the quiet period.
    func changingIncoming<T>(_ projectId: Int64, _ body: () throws -> T) rethrows -> T {
        let state = seals.state(projectId)
        state.lock.lock()
        defer {
            state.noteChange()
            state.lock.unlock()
        }
        return try body()
    }

    /// Whether a staged folder is set-group-ID: what is made in it takes its group.
    func isSetGID(_ s: StagedObject) -> Bool {
        (try? s.withFD { fd, _ in try Syscalls.fstat(fd) }).map { $0.st_mode & S_ISGID != 0 } ?? false
    }

    func caller(_ req: fuse_req_t) -> (uid: uid_t, gid: gid_t) {
        guard let ctx = fuse_req_ctx(req) else { return (0, 0) }
        return (ctx.pointee.uid, ctx.pointee.gid)
    }
}
