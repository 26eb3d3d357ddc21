import ArtifactCore
import CFuse3
import CSystemShims
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A staged file or folder under some incoming/, known by its path below incoming/ and its
/// (device, inode) on disk.
///
/// No descriptor is held between requests (SPEC §2: staging holds no per-file resource; a
/// descriptor per file the kernel has looked up capped `cp -r` at the descriptor limit).
/// Each request opens an O_PATH descriptor by path and checks that it is still the same
/// inode, so a path that now names another file answers ENOENT, never the wrong file.
/// Renames through the mount move the path (`InodeTable.renameStaged`).
final class StagedObject: Sendable {
    /// The incoming/ folder on disk, absolute.
    let base: PathBytes
    let dev: UInt64
    let realIno: UInt64
    let projectId: ProjectID
    let isDirectory: Bool
    /// A symbolic link: its attributes are its own, never its target's.
    let isSymlink: Bool
    /// Its writers and streaming hash, which the core keeps (`IncomingChanges`).
    let writes: StagedFileWrites

    /// Below incoming/ ("" for incoming/ itself); nil once the name is gone (unlinked, sealed).
    private let _path: Mutex<PathBytes?>

    init(base: PathBytes, path: PathBytes?, dev: UInt64, realIno: UInt64, projectId: ProjectID, isDirectory: Bool,
         isSymlink: Bool = false) {
        self.base = base; self._path = Mutex(path); self.dev = dev; self.realIno = realIno
        self.projectId = projectId; self.isDirectory = isDirectory; self.isSymlink = isSymlink
        self.writes = StagedFileWrites(projectId: projectId, ino: realIno)
    }

    var path: PathBytes? {
        get { _path.withLock { $0 } }
        set { _path.withLock { $0 = newValue } }
    }

    /// Runs `body` with an O_PATH descriptor of this very inode (and its /proc path, to reopen
    /// it or to reach it with calls that take a path); ENOENT when its name is gone.
    func withFD<T>(_ body: (_ fd: Int32, _ procPath: String) throws -> T) throws -> T {
        guard let path else { throw Errno.noSuchFileOrDirectory }
        let fd = try Syscalls.open(base.appending(path), flags: O_PATH | O_NOFOLLOW)
        defer { close(fd) }
        let st = try Syscalls.fstat(fd)
        guard UInt64(st.st_ino) == realIno, UInt64(st.st_dev) == dev else { throw Errno.noSuchFileOrDirectory }
        return try body(fd, "/proc/self/fd/\(fd)")
    }

    /// lstat of this very inode (one call, no descriptor: getattr is the hottest request);
    /// ENOENT when its name is gone or names another file now.
    func stat() throws -> Glibc.stat {
        guard let path else { throw Errno.noSuchFileOrDirectory }
        let st = try Syscalls.lstat(base.appending(path))
        guard UInt64(st.st_ino) == realIno, UInt64(st.st_dev) == dev else { throw Errno.noSuchFileOrDirectory }
        return st
    }

    /// A file a seal has moved into the blob store: later calls answer ENOENT.
    func releaseSealed() {
        guard !isDirectory else { return }
        writes.ifNoWriters { path = nil }
    }
}

/// One inode the kernel knows, with its lookup count.
final class Inode: Sendable {
    enum Kind {
        case virtual(Node)
        case staged(StagedObject)
    }

    let ino: UInt64
    private let state: Mutex<State>
    /// Changed only with the `InodeTable`'s lock held, which orders every access; atomic so
    /// that the inode itself needs no lock for it.
    private let _lookups = Atomic<UInt64>(0)
    var lookups: UInt64 {
        get { _lookups.load(ordering: .relaxed) }
        set { _lookups.store(newValue, ordering: .relaxed) }
    }

    private struct State {
        var kind: Kind
        /// Descriptors of the working-tree files open on this inode: what `fstat` reads once
        /// the name is gone (an unlinked open file stays usable, as on any POSIX filesystem).
        /// One per open file, never per staged file.
        var openDescriptors: [(fd: Int32, writable: Bool)] = []
        weak var anonymousHandle: FileHandle?
    }

    /// A working-tree inode follows its file through renames, so its node can change.
    var kind: Kind {
        get { state.withLock { $0.kind } }
        set { state.withLock { $0.kind = newValue } }
    }

    init(ino: UInt64, kind: Kind) { self.ino = ino; self.state = Mutex(State(kind: kind)) }

    func attach(_ fd: Int32, writable: Bool) { state.withLock { $0.openDescriptors.append((fd, writable)) } }
    func detach(_ fd: Int32) { state.withLock { $0.openDescriptors.removeAll { $0.fd == fd } } }
    /// Any descriptor open on this inode: what fstat reads.
    var anyOpenDescriptor: Int32? { state.withLock { $0.openDescriptors.last?.fd } }
    /// A descriptor open for writing: what fchmod, fchown and futimens of a file whose name is
    /// gone change (the kernel sends them without a handle). Never a reader's, which may be a
    /// blob's descriptor.
    var anyWritableDescriptor: Int32? { state.withLock { $0.openDescriptors.last(where: \.writable)?.fd } }

    /// The file an open(…, O_TMPFILE) made: it has no name until `linkat` gives it one, and
    /// is reached only through the descriptor of `anonymousHandle` until then.
    var isAnonymous: Bool {
        get { state.withLock { $0.anonymousHandle != nil } }
    }
    var anonymousHandle: FileHandle? {
        get { state.withLock { $0.anonymousHandle } }
        set { state.withLock { $0.anonymousHandle = newValue } }
    }

    var node: Node? { if case .virtual(let n) = kind { return n } else { return nil } }
    var staged: StagedObject? { if case .staged(let s) = kind { return s } else { return nil } }
}

/// Inode numbers derived from catalog row ids, for the nodes a store has millions of and that
/// the row names for good: a run's file, a stage's output, a version's file, and the
/// history/<path>/ folder of a file (named by one of its versions). Like restic's mount, which
/// derives its inode numbers from node ids, the table keeps nothing for them: the kernel may
/// hold millions after a `find`, and each kept entry cost about 140 bytes of daemon memory
/// (Benchmarks/scale.sh). A derived number is `tag << 44 | row id`; numbers the table hands out
/// stay below 2^44.
enum DerivedInode {
    static let shift: UInt64 = 44
    static let idMask: UInt64 = (1 << 44) - 1

    /// The number of `node`, when it is one of those kinds and its row id fits.
    static func number(for node: Node) -> UInt64? {
        let (tag, id): (UInt64, Int64)
        switch node {
        case .file(let f): (tag, id) = (1, f.rawValue)
        case .output(let o): (tag, id) = (2, o.rawValue)
        case .versionFile(let e): (tag, id) = (3, e.rawValue)
        case .historyOfFile(let f): (tag, id) = (4, f.rawValue)
        default: return nil
        }
        guard id > 0, UInt64(id) <= idMask else { return nil }
        return tag << shift | UInt64(id)
    }

    /// The node numbered `ino`, when `ino` is a derived number.
    static func node(for ino: UInt64) -> Node? {
        let id = Int64(ino & idMask)
        switch ino >> shift {
        case 1: return .file(FileID(id))
        case 2: return .output(OutputID(id))
        case 3: return .versionFile(entry: EntryID(id))
        case 4: return .historyOfFile(FileID(id))
        default: return nil
        }
    }
}

/// Every inode the kernel holds, by number, by virtual node and by the staged file's
/// (device, inode). Numbers are handed out in order and dropped at `forget`; the nodes of
/// `DerivedInode` get theirs from their row ids and are not kept.
final class InodeTable: Sendable {
    private let tables: Mutex<Tables>

    private struct Tables {
        var byIno: [UInt64: Inode] = [:]
        var byNode: [Node: UInt64] = [:]
        var byReal: [RealKey: UInt64] = [:]
        /// Working-tree files with several names, by `NodeAttributes.linkIdentity`.
        var byLink: [String: UInt64] = [:]
        var next: UInt64 = 2

        /// The inode numbered `ino`, with one more lookup.
        func referenced(_ ino: UInt64?) -> Inode? {
            guard let ino, let inode = byIno[ino] else { return nil }
            inode.lookups += 1
            return inode
        }

        /// A new inode with one lookup.
        mutating func insert(_ kind: Inode.Kind) -> Inode {
            let inode = Inode(ino: next, kind: kind)
            next += 1
            inode.lookups = 1
            byIno[inode.ino] = inode
            return inode
        }
    }

    struct RealKey: Hashable { let dev: UInt64; let ino: UInt64 }

    init() {
        var tables = Tables()
        let root = Inode(ino: 1, kind: .virtual(.root))
        root.lookups = 1
        tables.byIno[1] = root
        tables.byNode[.root] = 1
        self.tables = Mutex(tables)
    }

    func get(_ ino: UInt64) -> Inode? {
        if let node = DerivedInode.node(for: ino) { return Inode(ino: ino, kind: .virtual(node)) }
        return tables.withLock { $0.byIno[ino] }
    }

    /// The inode number the kernel holds for `node`, if it holds one.
    func known(_ node: Node) -> UInt64? {
        if let ino = DerivedInode.number(for: node) { return ino }
        return tables.withLock { t in t.byNode[node].flatMap { t.byIno[$0]?.ino } }
    }

    /// The virtual nodes the kernel holds that `matching` picks, with their inode numbers.
    func known(matching: (Node) -> Bool) -> [(node: Node, ino: UInt64)] {
        tables.withLock { t in t.byNode.compactMap { matching($0.key) ? ($0.key, $0.value) : nil } }
    }

    /// The inode for a virtual node, created if needed, with one more lookup.
    func lookupVirtual(_ node: Node, linkIdentity: String? = nil) -> Inode {
        if linkIdentity == nil, let ino = DerivedInode.number(for: node) { return Inode(ino: ino, kind: .virtual(node)) }
        return tables.withLock { t in
            if let inode = t.referenced(t.byNode[node]) { return inode }
            // Another name of a file the kernel knows: the same inode, reached by this name now.
            if let linkIdentity, let ino = t.byLink[linkIdentity], let inode = t.referenced(ino) {
                inode.kind = .virtual(node)
                t.byNode[node] = ino
                return inode
            }
            let inode = t.insert(.virtual(node))
            t.byNode[node] = inode.ino
            if let linkIdentity { t.byLink[linkIdentity] = inode.ino }
            return inode
        }
    }

    /// The inode for a staged object found by `st`; `open` makes its O_PATH descriptor only
    /// when the table does not know it yet.
    func lookupStaged(dev: UInt64, ino realIno: UInt64, path: PathBytes, node: Node?, open: () throws -> StagedObject) throws -> Inode {
        let key = RealKey(dev: dev, ino: realIno)
        if let existing = tables.withLock({ t in t.referenced(t.byReal[key]) }) {
            // The kernel just found it under `path`: the name to reach it by from now on.
            existing.staged?.path = path
            existing.anonymousHandle = nil  // an O_TMPFILE file that `linkat` just named
            return existing
        }
        let object = try open()
        return tables.withLock { t in
            if let inode = t.referenced(t.byReal[key]) { return inode }  // another thread won the race
            let inode = t.insert(.staged(object))
            t.byReal[key] = inode.ino
            if let node { t.byNode[node] = inode.ino }
            return inode
        }
    }

    /// A new inode for a file made by open(…, O_TMPFILE), held open by `handle`, with one
    /// lookup (the kernel counts the create reply as one). A staged one is found by its
    /// (device, inode) once `linkat` names it; a working-tree one is named by `nameAnonymous`.
    func insertAnonymous(_ kind: Inode.Kind, handle: FileHandle) -> Inode {
        tables.withLock { t in
            let inode = t.insert(kind)
            inode.anonymousHandle = handle
            if case .staged(let s) = kind { t.byReal[RealKey(dev: s.dev, ino: s.realIno)] = inode.ino }
            return inode
        }
    }

    /// An O_TMPFILE file of a working tree got the name `node` through `linkat`: inode `ino`
    /// stands for it there from now on.
    func nameAnonymous(_ ino: UInt64, as node: Node) {
        tables.withLock { t in
            guard let inode = t.byIno[ino] else { return }
            inode.anonymousHandle = nil
            inode.kind = .virtual(node)
            t.byNode[node] = ino
        }
    }

    /// After a seal: closes the descriptors of the files it took (inode numbers `realInos`) and
    /// forgets their (device, inode) keys, since the filesystem may reuse those numbers for
    /// new files. The inodes themselves stay until the kernel forgets them.
    ///
    /// Returns the kernel's entries for those files, as (the folder's inode, the name): the
    /// kernel keeps them, and with them these inodes, until told to drop them
    /// (`ArtifactFileSystem.dropSealedEntries`).
    func releaseSealed(projectId: ProjectID, realInos: Set<UInt64>) -> [(parent: UInt64, name: PathBytes)] {
        let (released, folders): ([StagedObject], [PathBytes: UInt64]) = tables.withLock { t in
            var out: [StagedObject] = []
            var folders: [PathBytes: UInt64] = [:]
            for inode in t.byIno.values {
                guard let s = inode.staged, s.projectId == projectId else { continue }
                if s.isDirectory {
                    if let path = s.path { folders[path] = inode.ino }
                    continue
                }
                guard realInos.contains(s.realIno) else { continue }
                let key = RealKey(dev: s.dev, ino: s.realIno)
                if t.byReal[key] == inode.ino { t.byReal[key] = nil }
                out.append(s)
            }
            return (out, folders)
        }
        var entries: [(parent: UInt64, name: PathBytes)] = []
        for s in released {
            guard let path = s.path else { continue }
            s.releaseSealed()
            if let parent = folders[path.parent] { entries.append((parent, path.lastComponent)) }
        }
        return entries
    }

    /// How many inodes the kernel holds of this mount (what the daemon's memory grows with).
    var count: Int { tables.withLock { $0.byIno.count } }

    /// The staged object the kernel knows for a file on disk, if any.
    func staged(dev: UInt64, ino: UInt64) -> StagedObject? {
        tables.withLock { t in t.byReal[RealKey(dev: dev, ino: ino)].flatMap { t.byIno[$0]?.staged } }
    }

    /// After a folder's rename in incoming/ (`from` and `to` below incoming/): the objects
    /// below it move with it (with `exchange`, those below `to` move to `from`). Scans the
    /// project's objects, so only folder renames call it; a file's rename moves one path.
    func renameStagedFolder(projectId: ProjectID, from: PathBytes, to: PathBytes, exchange: Bool) {
        let objects: [StagedObject] = tables.withLock { t in
            t.byIno.values.compactMap { inode in
                guard let s = inode.staged, s.projectId == projectId else { return nil }
                return s
            }
        }
        for s in objects {
            guard let p = s.path else { continue }
            if p.isBelow(from) {
                s.path = p.replacingPrefix(from, with: to)
            } else if exchange, p.isBelow(to) {
                s.path = p.replacingPrefix(to, with: from)
            }
        }
    }

    /// After an unlink or rmdir in a working tree: the next file made at `path` gets a new inode.
    func detachWorktree(branch: RefID, path: PathBytes) {
        tables.withLock { t in t.byNode[.worktree(branch: branch, path: path)] = nil }
    }

    /// After a rename in a working tree: inodes of `from` and, for a folder, everything below it
    /// now stand for the same files at `to`; one that stood at `to` is detached. A file's rename
    /// (rsync makes one per file) moves one entry; only a folder's scans the table.
    func renameWorktree(branch: RefID, from: PathBytes, to: PathBytes, isDirectory: Bool, keepTarget: Bool = false) {
        tables.withLock { t in
            if !keepTarget { t.byNode[.worktree(branch: branch, path: to)] = nil }
            guard isDirectory else {
                let old = Node.worktree(branch: branch, path: from), new = Node.worktree(branch: branch, path: to)
                if let ino = t.byNode.removeValue(forKey: old) {
                    t.byNode[new] = ino
                    t.byIno[ino]?.kind = .virtual(new)
                }
                return
            }
            let moved = t.byNode.compactMap { node, ino -> (Node, UInt64, PathBytes)? in
                guard case .worktree(let b, let p) = node, b == branch, p.isWithin(from) else { return nil }
                return (node, ino, p.replacingPrefix(from, with: to))
            }
            for (node, _, _) in moved { t.byNode[node] = nil }
            for (_, ino, newPath) in moved {
                let newNode = Node.worktree(branch: branch, path: newPath)
                t.byNode[newNode] = ino
                t.byIno[ino]?.kind = .virtual(newNode)
            }
        }
    }

    /// Names of the file with `identity` are inode `ino` from now on.
    func registerLink(_ identity: String, ino: UInt64) {
        tables.withLock { t in if t.byIno[ino] != nil { t.byLink[identity] = ino } }
    }

    /// After RENAME_EXCHANGE in a working tree: the inodes at `a` and `b` (and below them)
    /// swap paths.
    func exchangeWorktree(branch: RefID, a: PathBytes, b: PathBytes, aIsDirectory: Bool, bIsDirectory: Bool) {
        let swap = PathBytes("\u{0}exchange")  // a name no path can have (NUL)
        renameWorktree(branch: branch, from: a, to: swap, isDirectory: aIsDirectory, keepTarget: true)
        renameWorktree(branch: branch, from: b, to: a, isDirectory: bIsDirectory, keepTarget: true)
        renameWorktree(branch: branch, from: swap, to: b, isDirectory: aIsDirectory, keepTarget: true)
    }

    func forget(_ ino: UInt64, _ count: UInt64) {
        tables.withLock { t in
            guard ino != 1, let inode = t.byIno[ino] else { return }
            inode.lookups = inode.lookups > count ? inode.lookups - count : 0
            guard inode.lookups == 0 else { return }
            t.byIno[ino] = nil
            switch inode.kind {
            case .virtual(let node):
                if t.byNode[node] == ino { t.byNode[node] = nil }
                for (k, i) in t.byLink where i == ino { t.byLink[k] = nil }
            case .staged(let s):
                let key = RealKey(dev: s.dev, ino: s.realIno)
                if t.byReal[key] == ino { t.byReal[key] = nil }
                // The only staged objects known by node are the incoming/ folders themselves
                // (`lookupStaged(node:)`); never a scan of every node per forget.
                if t.byNode[.incoming(s.projectId)] == ino { t.byNode[.incoming(s.projectId)] = nil }
            }
        }
    }
}
