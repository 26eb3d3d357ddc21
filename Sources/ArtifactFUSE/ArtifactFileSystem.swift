import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import Synchronization
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The FUSE adapter's state: the namespace and seal coordinator it serves, its inode table,
/// and the settings of this mount. Callbacks reach it through the session's user data.
public final class ArtifactFileSystem: Sendable {
    public let store: ArtifactStore
    public let namespace: Namespace
    public let seals: SealCoordinator
    /// Commits `@branch` working trees (at the quiet period, `commit` and `seal`).
    public let committer: DatasetCommitter
    /// The change protocol of incoming/ (the core's; this adapter only calls it).
    let incoming: IncomingChanges
    let inodes = InodeTable()
    let logger: Logger
    /// Who may do what (grants on a shared mount; everything on a private one).
    public let access: AccessPolicy
    /// What control requests mean (`user.artifactfs.request`); nil: none are taken.
    let controlHandler: (any ControlRequestHandler)?
    /// Who has which inode open (on a shared mount).
    let openers: OpenerTable
    /// Outcomes of control requests waiting for their reader, by `uid:id`.
    let outcomes = Mutex<[String: PendingOutcome]>([:])

    /// Content that cannot change is cached by the kernel for this long.
    let immutableTimeout: Double = 3600
    /// The libfuse session (`OpaquePointer` bits; 0 before the mount and after it ends), for
    /// cache invalidations that are not replies.
    let session = Atomic<Int>(0)
    let mutableTimeout: Double = 1
    /// Where the kernel is told to drop entries that must not be dropped from inside a request
    /// (`dropSealedEntries`), one at a time.
    let invalidations = DispatchQueue(label: "artifactfs-invalidations")
    static let blockSize: Int = 1 << 20

    public init(store: ArtifactStore, seals: SealCoordinator, pipeline: (any PipelineState)?, access: AccessPolicy? = nil,
                control: (any ControlRequestHandler)? = nil, logger: Logger) {
        self.store = store
        self.controlHandler = control
        self.access = access ?? AccessPolicy(catalog: store.catalog, shared: false, rootIsAdmin: false)
        self.openers = OpenerTable(enabled: self.access.shared)
        self.namespace = Namespace(store: store, pipeline: pipeline)
        self.seals = seals
        self.incoming = IncomingChanges(seals: seals)
        self.logger = logger
        self.committer = DatasetCommitter(worktrees: namespace.worktrees, logger: logger)
        seals.onSealed = { [weak self] projectId, removed, run in
            guard let self else { return }
            let sealed = inodes.releaseSealed(projectId: projectId, realInos: removed)
            invalidateLatest(projectId: projectId, run: run)
            dropSealedEntries(sealed)
        }
    }

    /// Open files each hold a descriptor (staged files the kernel merely knows hold none): raise
    /// the soft limit to the hard one, as passthrough_hp does, for many files open at once.
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
        st.st_mode = mode_t(attrs.typeAndMode)
        st.st_nlink = UInt(attrs.nlink)
        st.st_rdev = UInt(attrs.rdev)
        st.st_size = Int(attrs.size)
        st.st_uid = attrs.uid
        st.st_gid = attrs.gid
        st.st_blksize = Self.blockSize
        st.st_blocks = Int(attrs.blocks ?? (attrs.size + 511) / 512)
        st.st_mtim = timeSpec(nanoseconds: attrs.mtimeNs)
        st.st_ctim = timeSpec(nanoseconds: attrs.ctimeNs ?? attrs.mtimeNs)
        st.st_atim = timeSpec(nanoseconds: attrs.atimeNs ?? attrs.mtimeNs)
        return st
    }

    func stagedStat(_ s: StagedObject, ino: UInt64) throws -> stat {
        var st = try s.stat()
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
        let inode = inodes.lookupVirtual(node, linkIdentity: attrs.linkIdentity)
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

    /// Names of immutable and virtual trees keep their node; latest/<name> points at a new
    /// version after a seal, which drops the kernel's entries for it (`invalidateLatest`).
    func entryTimeout(_ node: Node, parent: Node?) -> Double {
        if case .worktree = node { return mutableTimeout }
        return immutableTimeout
    }

    /// After a seal: every latest/ name the run wrote (its files and their folders) now stands
    /// for a new version. The kernel caches those entries; drop the ones under folders it
    /// knows, before the seal returns, so no one sees the older version afterwards
    /// (`fuse_lowlevel_notify_inval_entry`: never from a request on latest/ itself, and the
    /// seal runs in none).
    ///
    /// Not for incoming/: `artifactfs seal` is a setxattr on incoming/, which holds that
    /// folder's lock while the seal runs, and invalidating an entry in it takes the same lock
    /// (a deadlock, found by CrashTests). Its entries are simply never cached (timeout 0).
    func invalidateLatest(projectId: ProjectID, run: RunRecord) {
        guard let se = OpaquePointer(bitPattern: session.load(ordering: .acquiring)), let runId = run.id else { return }
        // The kernel knows no folder of latest/ unless it knows latest/ itself: then nothing is
        // cached there, and the run need not be read.
        guard inodes.known(.latest(project: projectId, dir: .empty)) != nil else { return }
        let files: [FileRecord]
        do { files = try store.catalog.files(runId: runId) } catch {
            logger.error("cannot list run \(run.name) to refresh latest/: \(error)")
            return
        }
        var paths = Set<PathBytes>()
        for f in files { paths.insert(f.path); paths.formUnion(f.path.parent.folderAndAncestors) }
        for path in paths {
            guard let parent = inodes.known(.latest(project: projectId, dir: path.parent)) else { continue }
            let name = path.lastComponent
            _ = name.withCString { fuse_lowlevel_notify_inval_entry(se, fuse_ino_t(parent), $0, name.count) }
        }
    }

    /// `artifactfs import` registered run `name` from its own process: as after a seal, the
    /// kernel's latest/ entries it replaces go, and the run is queued for the pipeline (once:
    /// starting a run twice does nothing).
    func importedRun(projectId: ProjectID, name: String) throws {
        guard let run = try store.catalog.run(projectId: projectId, name: name) else {
            throw ArtifactError(.notFound, "no such run", path: name)
        }
        invalidateLatest(projectId: projectId, run: run)
        seals.sink?.runSealed(run)
    }

    /// `artifactfs import` moved a branch's head from its own process: what the kernel keeps of
    /// the branch's working tree (attributes, pages, kept listings, names) describes the old
    /// head. Attributes, pages and listings go now (`notify_inval_inode` takes no folder lock);
    /// names go after the request is answered (`notify_inval_entry` takes the folder's lock,
    /// which the setxattr on `@branch/` holds; see `dropSealedEntries`).
    func importedVersion(branch: RefID) {
        guard let se = OpaquePointer(bitPattern: session.load(ordering: .acquiring)) else { return }
        let known = inodes.known { if case .worktree(let b, _) = $0 { return b == branch } else { return false } }
        for (_, ino) in known { _ = fuse_lowlevel_notify_inval_inode(se, fuse_ino_t(ino), 0, 0) }
        var names: [(parent: UInt64, name: PathBytes)] = []
        for (node, _) in known {
            guard case .worktree(_, let path) = node, !path.isEmpty,
                  let parent = inodes.known(.worktree(branch: branch, path: path.parent)) else { continue }
            names.append((parent, path.lastComponent))
        }
        dropSealedEntries(names)
    }

    /// After a seal: tells the kernel to drop its entries for the staged files the seal took,
    /// so that it forgets their inodes and the daemon lets go of them (a million staged files
    /// kept 1.1 GiB of daemon memory after their seal, Benchmarks/scale.sh).
    ///
    /// On `invalidations`, after the request that sealed has been answered: `artifactfs seal`
    /// is a setxattr on incoming/, which holds that folder's lock until it is answered, and
    /// dropping an entry in it takes the same lock (see `invalidateLatest`). The entries have a
    /// zero timeout, so nothing is ever shown stale meanwhile.
    func dropSealedEntries(_ entries: [(parent: UInt64, name: PathBytes)]) {
        guard !entries.isEmpty else { return }
        invalidations.async { [weak self] in
            for (parent, name) in entries {
                guard let self, let se = OpaquePointer(bitPattern: self.session.load(ordering: .acquiring)) else { return }
                _ = name.withCString { fuse_lowlevel_notify_inval_entry(se, fuse_ino_t(parent), $0, name.count) }
            }
        }
    }

    func incomingRootEntry(projectId: ProjectID) throws -> fuse_entry_param {
        let path = try store.staging.ensureIncoming(projectId: projectId)
        let st = try Syscalls.lstat(path)
        let inode = try inodes.lookupStaged(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), path: .empty, node: .incoming(projectId)) {
            StagedObject(base: PathBytes(path), path: .empty, dev: UInt64(st.st_dev), realIno: UInt64(st.st_ino),
                         projectId: projectId, isDirectory: true)
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
        try stagedEntry(parent: parent, name: name, stat: try stagedStat(parent: parent, name: name))
    }

    /// `stagedEntry(parent:name:)` for a name whose attributes the caller has (`st`, e.g. from
    /// fstat of the file it just created there).
    func stagedEntry(parent: StagedObject, name: PathBytes, stat st: stat) throws -> fuse_entry_param {
        guard let parentPath = parent.path else { throw Errno.noSuchFileOrDirectory }
        let isDir = (st.st_mode & S_IFMT) == S_IFDIR
        let path = parentPath.appending(name)
        let inode = try inodes.lookupStaged(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), path: path, node: nil) {
            StagedObject(base: parent.base, path: path, dev: UInt64(st.st_dev), realIno: UInt64(st.st_ino),
                         projectId: parent.projectId, isDirectory: isDir, isSymlink: st.st_mode & S_IFMT == S_IFLNK)
        }
        var e = fuse_entry_param()
        e.ino = inode.ino
        e.attr = st
        e.attr.st_ino = UInt(inode.ino)
        e.attr.st_blksize = Self.blockSize
        e.attr_timeout = mutableTimeout
        e.entry_timeout = 0  // a seal removes staged names behind the kernel's back (see `invalidateLatest`)
        return e
    }

    /// The answer for a name a staged folder does not hold: a negative entry (inode 0) that
    /// the kernel keeps for `mutableTimeout`, as libfuse's `fuse_reply_entry` allows. Only the
    /// kernel adds names to incoming/ (the daemon only removes them), and it replaces its
    /// negative entry when it does, so tools that probe for names (git, Python's imports) ask
    /// once. (`cp`'s create still looks again: the kernel revalidates a negative entry for
    /// O_EXCL, `fuse_dentry_revalidate`.)
    func stagedAbsentEntry() -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = 0
        e.entry_timeout = mutableTimeout
        return e
    }

    /// lstat of `name` in a staged folder.
    func stagedStat(parent: StagedObject, name: PathBytes) throws -> stat {
        try parent.withFD { fd, _ in
            var st = Glibc.stat()
            if name.withCString({ fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) != 0 { throw Errno(rawValue: afs_errno()) }
            return st
        }
    }

    /// The staged object the kernel knows at `name` in a staged folder, if any.
    func knownStaged(parent: StagedObject, name: PathBytes) -> StagedObject? {
        guard let st = try? stagedStat(parent: parent, name: name) else { return nil }
        return inodes.staged(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    // MARK: incoming/ changes




    /// Whether a staged folder is set-group-ID: what is made in it takes its group.
    func isSetGID(_ s: StagedObject) -> Bool {
        (try? s.stat()).map { $0.st_mode & S_ISGID != 0 } ?? false
    }

    /// Who sent `req`, as the kernel reports it: uid, gid, and (asked only when a group grant
    /// could matter, since libfuse reads them from /proc) the supplementary groups.
    func caller(_ req: fuse_req_t) -> Caller {
        guard let ctx = fuse_req_ctx(req) else { return Caller(uid: 0, gid: 0) }
        let request = Int(bitPattern: UnsafeRawPointer(req))
        return Caller(uid: ctx.pointee.uid, gid: ctx.pointee.gid) {
            guard let req = fuse_req_t(bitPattern: request) else { return [] }
            var groups = [gid_t](repeating: 0, count: 64)
            var n = fuse_req_getgroups(req, Int32(groups.count), &groups)
            if n > Int32(groups.count) {
                groups = [gid_t](repeating: 0, count: Int(n))
                n = fuse_req_getgroups(req, Int32(groups.count), &groups)
            }
            return n > 0 ? Array(groups.prefix(Int(min(n, Int32(groups.count))))) : []
        }
    }
}
