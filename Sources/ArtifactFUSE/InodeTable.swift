import ArtifactCore
import CFuse3
import CSystemShims
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
final class StagedObject: @unchecked Sendable {
    /// The incoming/ folder on disk, absolute.
    let base: PathBytes
    let dev: UInt64
    let realIno: UInt64
    let projectId: Int64
    let isDirectory: Bool
    /// A symbolic link: its attributes are its own, never its target's.
    var isSymlink = false
    /// Its writers and streaming hash, which the core keeps (`IncomingChanges`).
    let writes: StagedFileWrites

    private let pathLock = PthreadMutex()
    /// Below incoming/ ("" for incoming/ itself); nil once the name is gone (unlinked, sealed).
    private var _path: PathBytes?

    init(base: PathBytes, path: PathBytes?, dev: UInt64, realIno: UInt64, projectId: Int64, isDirectory: Bool) {
        self.base = base; self._path = path; self.dev = dev; self.realIno = realIno
        self.projectId = projectId; self.isDirectory = isDirectory
        self.writes = StagedFileWrites(projectId: projectId, ino: realIno)
    }

    var path: PathBytes? {
        get { pathLock.withLock { _path } }
        set { pathLock.withLock { _path = newValue } }
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
final class Inode: @unchecked Sendable {
    enum Kind {
        case virtual(Node)
        case staged(StagedObject)
    }

    let ino: UInt64
    private var _kind: Kind
    private let kindLock = PthreadMutex()
    var lookups: UInt64 = 0

    /// A working-tree inode follows its file through renames, so its node can change.
    var kind: Kind {
        get { kindLock.withLock { _kind } }
        set { kindLock.withLock { _kind = newValue } }
    }

    init(ino: UInt64, kind: Kind) { self.ino = ino; self._kind = kind }

    /// Descriptors of the working-tree files open on this inode: what `fstat` reads once the
    /// name is gone (an unlinked open file stays usable, as on any POSIX filesystem). One per
    /// open file, never per staged file.
    private var openDescriptors: [(fd: Int32, writable: Bool)] = []

    func attach(_ fd: Int32, writable: Bool) { kindLock.withLock { openDescriptors.append((fd, writable)) } }
    func detach(_ fd: Int32) { kindLock.withLock { openDescriptors.removeAll { $0.fd == fd } } }
    /// Any descriptor open on this inode: what fstat reads.
    var anyOpenDescriptor: Int32? { kindLock.withLock { openDescriptors.last?.fd } }
    /// A descriptor open for writing: what fchmod, fchown and futimens of a file whose name is
    /// gone change (the kernel sends them without a handle). Never a reader's, which may be a
    /// blob's descriptor.
    var anyWritableDescriptor: Int32? { kindLock.withLock { openDescriptors.last(where: \.writable)?.fd } }

    /// The file an open(…, O_TMPFILE) made: it has no name until `linkat` gives it one, and
    /// is reached only through the descriptor of `anonymousHandle` until then.
    var isAnonymous: Bool {
        get { kindLock.withLock { _anonymousHandle != nil } }
    }
    private weak var _anonymousHandle: FileHandle?
    var anonymousHandle: FileHandle? {
        get { kindLock.withLock { _anonymousHandle } }
        set { kindLock.withLock { _anonymousHandle = newValue } }
    }

    var node: Node? { if case .virtual(let n) = kind { return n } else { return nil } }
    var staged: StagedObject? { if case .staged(let s) = kind { return s } else { return nil } }
}

/// Every inode the kernel holds, by number, by virtual node and by the staged file's
/// (device, inode). Numbers are handed out in order and dropped at `forget`.
final class InodeTable: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var byIno: [UInt64: Inode] = [:]
    private var byNode: [Node: UInt64] = [:]
    private var byReal: [RealKey: UInt64] = [:]
    /// Working-tree files with several names, by `NodeAttributes.linkIdentity`.
    private var byLink: [String: UInt64] = [:]
    private var next: UInt64 = 2

    struct RealKey: Hashable { let dev: UInt64; let ino: UInt64 }

    init() {
        let root = Inode(ino: 1, kind: .virtual(.root))
        root.lookups = 1
        byIno[1] = root
        byNode[.root] = 1
    }

    func get(_ ino: UInt64) -> Inode? { lock.withLock { byIno[ino] } }

    /// The inode for a virtual node, created if needed, with one more lookup.
    func lookupVirtual(_ node: Node, linkIdentity: String? = nil) -> Inode {
        lock.withLock {
            if let inode = referenced(byNode[node]) { return inode }
            // Another name of a file the kernel knows: the same inode, reached by this name now.
            if let linkIdentity, let ino = byLink[linkIdentity], let inode = referenced(ino) {
                inode.kind = .virtual(node)
                byNode[node] = ino
                return inode
            }
            let inode = insert(.virtual(node))
            byNode[node] = inode.ino
            if let linkIdentity { byLink[linkIdentity] = inode.ino }
            return inode
        }
    }

    /// Call with `lock` held: the inode numbered `ino`, with one more lookup.
    private func referenced(_ ino: UInt64?) -> Inode? {
        guard let ino, let inode = byIno[ino] else { return nil }
        inode.lookups += 1
        return inode
    }

    /// Call with `lock` held: a new inode with one lookup.
    private func insert(_ kind: Inode.Kind) -> Inode {
        let inode = Inode(ino: next, kind: kind)
        next += 1
        inode.lookups = 1
        byIno[inode.ino] = inode
        return inode
    }

    /// The inode for a staged object found by `st`; `open` makes its O_PATH descriptor only
    /// when the table does not know it yet.
    func lookupStaged(dev: UInt64, ino realIno: UInt64, path: PathBytes, node: Node?, open: () throws -> StagedObject) throws -> Inode {
        let key = RealKey(dev: dev, ino: realIno)
        if let existing = lock.withLock({ referenced(byReal[key]) }) {
            // The kernel just found it under `path`: the name to reach it by from now on.
            existing.staged?.path = path
            existing.anonymousHandle = nil  // an O_TMPFILE file that `linkat` just named
            return existing
        }
        let object = try open()
        return lock.withLock {
            if let inode = referenced(byReal[key]) { return inode }  // another thread won the race
            let inode = insert(.staged(object))
            byReal[key] = inode.ino
            if let node { byNode[node] = inode.ino }
            return inode
        }
    }

    /// A new inode for a file made by open(…, O_TMPFILE), held open by `handle`, with one
    /// lookup (the kernel counts the create reply as one). A staged one is found by its
    /// (device, inode) once `linkat` names it; a working-tree one is named by `nameAnonymous`.
    func insertAnonymous(_ kind: Inode.Kind, handle: FileHandle) -> Inode {
        lock.withLock {
            let inode = insert(kind)
            inode.anonymousHandle = handle
            if case .staged(let s) = kind { byReal[RealKey(dev: s.dev, ino: s.realIno)] = inode.ino }
            return inode
        }
    }

    /// An O_TMPFILE file of a working tree got the name `node` through `linkat`: inode `ino`
    /// stands for it there from now on.
    func nameAnonymous(_ ino: UInt64, as node: Node) {
        lock.withLock {
            guard let inode = byIno[ino] else { return }
            inode.anonymousHandle = nil
            inode.kind = .virtual(node)
            byNode[node] = ino
        }
    }

    /// After a seal: closes the descriptors of the files it took (inode numbers `realInos`) and
    /// forgets their (device, inode) keys, since the filesystem may reuse those numbers for
    /// new files. The inodes themselves stay until the kernel forgets them.
    func releaseSealed(projectId: Int64, realInos: Set<UInt64>) {
        let released: [StagedObject] = lock.withLock {
            var out: [StagedObject] = []
            for inode in byIno.values {
                guard let s = inode.staged, s.projectId == projectId, !s.isDirectory, realInos.contains(s.realIno) else { continue }
                let key = RealKey(dev: s.dev, ino: s.realIno)
                if byReal[key] == inode.ino { byReal[key] = nil }
                out.append(s)
            }
            return out
        }
        released.forEach { $0.releaseSealed() }
    }

    /// The staged object the kernel knows for a file on disk, if any.
    func staged(dev: UInt64, ino: UInt64) -> StagedObject? {
        lock.withLock { byReal[RealKey(dev: dev, ino: ino)].flatMap { byIno[$0]?.staged } }
    }

    /// After a folder's rename in incoming/ (`from` and `to` below incoming/): the objects
    /// below it move with it (with `exchange`, those below `to` move to `from`). Scans the
    /// project's objects, so only folder renames call it; a file's rename moves one path.
    func renameStagedFolder(projectId: Int64, from: PathBytes, to: PathBytes, exchange: Bool) {
        let objects: [StagedObject] = lock.withLock {
            byIno.values.compactMap { inode in
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
    func detachWorktree(branch: Int64, path: PathBytes) {
        lock.withLock { byNode[.worktree(branch: branch, path: path)] = nil }
    }

    /// After a rename in a working tree: inodes of `from` and, for a folder, everything below it
    /// now stand for the same files at `to`; one that stood at `to` is detached. A file's rename
    /// (rsync makes one per file) moves one entry; only a folder's scans the table.
    func renameWorktree(branch: Int64, from: PathBytes, to: PathBytes, isDirectory: Bool, keepTarget: Bool = false) {
        lock.withLock {
            if !keepTarget { byNode[.worktree(branch: branch, path: to)] = nil }
            guard isDirectory else {
                let old = Node.worktree(branch: branch, path: from), new = Node.worktree(branch: branch, path: to)
                if let ino = byNode.removeValue(forKey: old) {
                    byNode[new] = ino
                    byIno[ino]?.kind = .virtual(new)
                }
                return
            }
            let moved = byNode.compactMap { node, ino -> (Node, UInt64, PathBytes)? in
                guard case .worktree(let b, let p) = node, b == branch, p.isWithin(from) else { return nil }
                return (node, ino, p.replacingPrefix(from, with: to))
            }
            for (node, _, _) in moved { byNode[node] = nil }
            for (_, ino, newPath) in moved {
                let newNode = Node.worktree(branch: branch, path: newPath)
                byNode[newNode] = ino
                byIno[ino]?.kind = .virtual(newNode)
            }
        }
    }

    /// Names of the file with `identity` are inode `ino` from now on.
    func registerLink(_ identity: String, ino: UInt64) {
        lock.withLock { if byIno[ino] != nil { byLink[identity] = ino } }
    }

    /// After RENAME_EXCHANGE in a working tree: the inodes at `a` and `b` (and below them)
    /// swap paths.
    func exchangeWorktree(branch: Int64, a: PathBytes, b: PathBytes, aIsDirectory: Bool, bIsDirectory: Bool) {
        let swap = PathBytes("\u{0}exchange")  // a name no path can have (NUL)
        renameWorktree(branch: branch, from: a, to: swap, isDirectory: aIsDirectory, keepTarget: true)
        renameWorktree(branch: branch, from: b, to: a, isDirectory: bIsDirectory, keepTarget: true)
        renameWorktree(branch: branch, from: swap, to: b, isDirectory: aIsDirectory, keepTarget: true)
    }

    func forget(_ ino: UInt64, _ count: UInt64) {
        lock.withLock {
            guard ino != 1, let inode = byIno[ino] else { return }
            inode.lookups = inode.lookups > count ? inode.lookups - count : 0
            guard inode.lookups == 0 else { return }
            byIno[ino] = nil
            switch inode.kind {
            case .virtual(let node):
                if byNode[node] == ino { byNode[node] = nil }
                for (k, i) in byLink where i == ino { byLink[k] = nil }
            case .staged(let s):
                let key = RealKey(dev: s.dev, ino: s.realIno)
                if byReal[key] == ino { byReal[key] = nil }
                for (n, i) in byNode where i == ino { byNode[n] = nil }
            }
        }
    }
}
