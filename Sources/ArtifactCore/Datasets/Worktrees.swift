import Foundation
import CSystemShims
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The writable `@branch/` trees: each is its branch head plus a table of uncommitted changes
/// (`worktree_change`), with written bytes in upper files under `staging/worktrees/<branch>/`.
///
/// An overlay rather than a checked-out folder: forking a branch writes one row, a commit reads
/// only the changed rows, and committed blobs are never linked where a write could reach them
/// (a write to a committed file first copies it up). Readers take a catalog snapshot and no
/// lock; every change holds the branch's lock.
public final class Worktrees: Sendable {
    public let store: ArtifactStore
    public let trees: VersionTrees
    public let root: String
    var catalog: Catalog { store.catalog }
    private let states = Mutex<[RefID: IncomingState]>([:])

    public init(store: ArtifactStore, trees: VersionTrees) {
        self.store = store
        self.trees = trees
        self.root = Self.upperRoot(of: store)
    }

    /// The change lock, writer count and quiet-period clock of one branch.
    public func state(_ branchId: RefID) -> IncomingState {
        states.withLock { states in
            if let s = states[branchId] { return s }
            let s = IncomingState()
            states[branchId] = s
            return s
        }
    }

    func allStates() -> [(RefID, IncomingState)] { states.withLock { $0.map { ($0.key, $0.value) } } }

    /// `staging/worktrees/` of `store`: one folder of upper files per branch id.
    public static func upperRoot(of store: ArtifactStore) -> String { "\(store.root)/staging/worktrees" }
    public func upperDirectory(_ branchId: RefID) -> String { "\(root)/\(branchId)" }
    public func upperPath(_ branchId: RefID, _ upper: String) -> String { "\(root)/\(branchId)/\(upper)" }

    // MARK: reading

    /// The branch's head version inside a snapshot.
    func head(_ tx: CatalogTransaction, _ branchId: RefID) throws -> (RefRecord, DatasetRecord) {
        guard let found = try tx.branch(id: branchId) else { throw ArtifactError(.notFound, "no such branch") }
        return found
    }

    /// What `path` is in the working tree, or nil. Upper files carry their on-disk metadata.
    public func item(branch branchId: RefID, path: PathBytes) throws -> TreeItem? {
        try catalog.reading { tx in try item(tx, branchId, path) }
    }

    func item(_ tx: CatalogTransaction, _ branchId: RefID, _ path: PathBytes) throws -> TreeItem? {
        let row = try tx.worktreeChange(branch: branchId, path: path)
        if path.isEmpty {
            // The branch folder itself: its times once something changed in it (a row), else the dataset's.
            if let row { return TreeItem(row) }
            let (_, ds) = try head(tx, branchId)
            return TreeItem(path: .empty, kind: .dir, mode: 0o755, mtimeNs: Int64(ds.createdAt * 1e9), uid: ds.ownerUid, gid: ds.ownerGid)
        }
        if let c = row { return c.kind == .deleted ? nil : try withDiskMetadata(tx, TreeItem(c), branchId) }
        return try trees.item(tx, version: try tx.headVersion(branch: branchId), path: path)
    }

    /// The working tree's entries in folder `dir`, sorted by name.
    public func children(branch branchId: RefID, dir: PathBytes) throws -> [TreeItem] {
        try catalog.reading { tx in try children(tx, branchId, dir) }
    }

    func children(_ tx: CatalogTransaction, _ branchId: RefID, _ dir: PathBytes) throws -> [TreeItem] {
        let (ref, _) = try head(tx, branchId)
        var byName = try trees.children(tx, version: ref.versionId, dir: dir)
        for c in try tx.worktreeChanges(branch: branchId, dir: dir) where !c.path.isEmpty {
            byName[c.name] = c.kind == .deleted ? nil : try withDiskMetadata(tx, TreeItem(c), branchId)
        }
        return byName.values.sorted { $0.name < $1.name }
    }

    /// A folder's link count in the working tree: 2 + the folders directly in it (committed
    /// ones not removed or replaced, and new ones), as on ext4.
    public func folderLinkCount(branch branchId: RefID, path: PathBytes) throws -> UInt32 {
        try catalog.reading { tx in
            var folders = try trees.subfolders(tx, version: try tx.headVersion(branch: branchId), dir: path)
            for p in folders {
                if let change = try tx.worktreeChange(branch: branchId, path: p), change.kind != .dir { folders.remove(p) }
            }
            for p in try tx.worktreeFolderPaths(branch: branchId, dir: path) where !p.isEmpty { folders.insert(p) }
            return UInt32(2 + folders.count)
        }
    }

    func subtree(_ tx: CatalogTransaction, _ branchId: RefID, _ dir: PathBytes) throws -> [TreeItem] {
        var out: [TreeItem] = []
        for item in try children(tx, branchId, dir) {
            out.append(item)
            if item.isDirectory { out += try subtree(tx, branchId, item.path) }
        }
        return out
    }

    /// An item with an upper file shows that file's size, mode, owner and times, and as many
    /// links as rows share it (hard links in the working tree).
    func withDiskMetadata(_ tx: CatalogTransaction, _ item: TreeItem, _ branchId: RefID) throws -> TreeItem {
        guard let upper = item.upper, let st = try? Syscalls.lstat(upperPath(branchId, upper)) else { return item }
        var out = item
        out.size = Int64(st.st_size)
        out.mode = Int64(st.st_mode & 0o7777)
        out.mtimeNs = st.st_mtim.nanoseconds
        out.atimeNs = st.st_atim.nanoseconds
        out.ctimeNs = st.st_ctim.nanoseconds
        out.uid = Int64(st.st_uid)
        out.gid = Int64(st.st_gid)
        out.blocks = Int64(st.st_blocks)
        // Only an upper file that a link shared needs its names counted: getattr is hot.
        if mayBeShared(upper: upper) {
            out.nlink = max(1, try tx.worktreeNames(branch: branchId, upper: upper))
        }
        return out
    }

    /// The rules of the branch's `.artifactfsignore` (none when it has no such file).
    public func ignoreRules(branch branchId: RefID) throws -> IgnoreRules {
        guard let file = try item(branch: branchId, path: IgnoreRules.fileName), file.kind == .file else { return IgnoreRules(file: []) }
        if let upper = file.upper {
            return IgnoreRules(file: Array(FileManager.default.contents(atPath: upperPath(branchId, upper)) ?? Data()))
        }
        guard let hash = file.blob else { return IgnoreRules(file: []) }
        return IgnoreRules(file: try store.blobs.read(hash))
    }

    /// Whether the branch has uncommitted changes.
    /// Changes the next commit would take: neither the branch folder's own times nor what
    /// `.artifactfsignore` names count.
    public func hasChanges(branch branchId: RefID) throws -> Bool {
        let ignore = try ignoreRules(branch: branchId)
        return try catalog.reading { tx in
            var changed = false
            try tx.forEachChangedPath(branch: branchId) { path, kind in
                changed = !ignore.ignores(path.bytes, isDirectory: kind == .dir)
                return !changed
            }
            return changed
        }
    }

    // MARK: changing

    /// Runs one change under the branch lock and notes it for the quiet period. With
    /// `addingWriter`, a successful change also counts one open writer before the lock is let
    /// go, so no commit can take the upper file it returns into the blob store before the
    /// caller has opened it (the caller ends it with `endWriting`).
    func changing<T: Sendable>(_ branchId: RefID, addingWriter: Bool = false, _ body: (CatalogTransaction) throws -> T) throws -> T {
        try state(branchId).lock.withLock { fields in
            defer { fields.noteChange() }
            let result = try catalog.staging(body)
            if addingWriter { fields.openWriters += 1 }
            return result
        }
    }

    @discardableResult
    private func requireDirectory(_ tx: CatalogTransaction, _ branchId: RefID, _ dir: PathBytes) throws -> TreeItem {
        guard let parent = try item(tx, branchId, dir) else { throw ArtifactError(.notFound, "no such folder", path: dir) }
        guard parent.isDirectory else { throw ArtifactError(.notDirectory, "not a folder", path: dir) }
        return parent
    }

    /// What is made in a set-group-ID folder takes the folder's group, and a folder made there
    /// is set-group-ID too (as on ext4).
    private func inherited(from parent: TreeItem, mode: Int64, gid: Int64, isDirectory: Bool) -> (mode: Int64, gid: Int64) {
        guard parent.mode & 0o2000 != 0 else { return (mode, gid) }  // S_ISGID
        return (isDirectory ? mode | 0o2000 : mode, parent.gid)
    }

    private func put(_ tx: CatalogTransaction, _ branchId: RefID, _ item: TreeItem) throws {
        let c = WorktreeChangeRecord(id: nil, branchId: branchId, path: item.path, dir: item.path.parent, name: item.name,
                                     kind: item.kind, blob: item.blob, upper: item.upper, size: item.size, mode: item.mode,
                                     mtimeNs: item.mtimeNs, uid: item.uid, gid: item.gid,
                                     xattrs: item.xattrs.map { Data($0) }, rdev: item.rdev, atimeNs: item.atimeNs, ctimeNs: item.ctimeNs)
        try tx.putWorktreeChange(c)
    }

    /// A folder's mtime and ctime move when an entry is made, removed or renamed in it.
    private func touchFolder(_ tx: CatalogTransaction, _ branchId: RefID, _ dir: PathBytes) throws {
        let now = nowNs()
        // Most changes land in a folder that already has its row (a copy fills one folder):
        // one cached UPDATE; otherwise the folder's row is written from what it shows.
        if try tx.touchWorktreeFolder(branch: branchId, dir: dir, now: now) { return }
        guard var folder = try item(tx, branchId, dir), folder.isDirectory else { return }
        folder.mtimeNs = now
        folder.ctimeNs = now
        try put(tx, branchId, folder)
    }

    /// A change of metadata moves ctime: the upper file's own (a chmod to the same mode does
    /// that, and every name of a hard-linked file shows it), or the row's.
    private func touchCtime(_ item: inout TreeItem, _ branchId: RefID) {
        if let upper = item.upper {
            _ = chmod(upperPath(branchId, upper), mode_t(item.mode & 0o7777))
        } else {
            item.ctimeNs = nowNs()
        }
    }

    /// Whether another row still uses `upper` (a hard link), so its file must stay.
    private func isShared(_ tx: CatalogTransaction, _ branchId: RefID, _ upper: String?) throws -> Bool {
        guard let upper else { return false }
        return try tx.worktreeNames(branch: branchId, upper: upper) > 0
    }

    /// Removes `path` from the working tree: a deletion row when the head has it, else no row.
    /// The row names who deleted it (`uid`), so that a commit of deletions alone has an
    /// author. Returns the upper file that no row refers to any more.
    private func remove(_ tx: CatalogTransaction, _ branchId: RefID, _ path: PathBytes, by uid: uid_t = 0) throws -> String? {
        let head = try tx.headVersion(branch: branchId)
        let old = try tx.worktreeChange(branch: branchId, path: path)
        if try trees.item(tx, version: head, path: path) != nil {
            try put(tx, branchId, TreeItem(path: path, kind: .deleted, mode: 0, mtimeNs: 0, uid: Int64(uid), gid: 0))
        } else if let old {
            try tx.deleteWorktreeChange(old)
        }
        return try isShared(tx, branchId, old?.upper) ? nil : old?.upper
    }

    private func newUpper(_ branchId: RefID) throws -> (name: String, path: String) {
        let dir = upperDirectory(branchId)
        do { _ = try Syscalls.mkdirs(dir) } catch let e as Errno { throw ArtifactError.system(e, "cannot create upper folder", path: dir) }
        let name = String(UInt64.random(in: 0...UInt64.max), radix: 16) + "-" + String(monotonicNanoseconds(), radix: 16)
        return (name, "\(dir)/\(name)")
    }

    private func discardUpper(_ branchId: RefID, _ upper: String?) {
        if let upper { try? Syscalls.unlink(upperPath(branchId, upper)) }
    }

    public func mkdir(branch branchId: RefID, path: PathBytes, mode: Int64, uid: Int64, gid: Int64) throws -> TreeItem {
        try NameRules.validateEntry(path.lastComponent)
        return try changing(branchId) { tx in
            let parent = try requireDirectory(tx, branchId, path.parent)
            if try item(tx, branchId, path) != nil { throw ArtifactError(.alreadyExists, "already exists", path: path) }
            let (mode, gid) = inherited(from: parent, mode: mode & 0o7777, gid: gid, isDirectory: true)
            let item = TreeItem(path: path, kind: .dir, mode: mode, mtimeNs: nowNs(), uid: uid, gid: gid)
            try put(tx, branchId, item)
            try touchFolder(tx, branchId, path.parent)
            return item
        }
    }

    /// Creates a file (or, without `exclusive`, opens an existing one for writing) and returns
    /// the upper file to open. With `writer`, one open writer is counted (see `changing`).
    public func create(branch branchId: RefID, path: PathBytes, mode: Int64, uid: Int64, gid: Int64,
                       exclusive: Bool, truncate: Bool, writer: Bool = false) throws -> String {
        try NameRules.validateEntry(path.lastComponent)
        return try changing(branchId, addingWriter: writer) { tx in
            let parent = try requireDirectory(tx, branchId, path.parent)
            if let existing = try item(tx, branchId, path) {
                if existing.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: path) }
                if exclusive { throw ArtifactError(.alreadyExists, "already exists", path: path) }
                return try copyUp(tx, branchId, existing, truncate: truncate)
            }
            let (mode, gid) = inherited(from: parent, mode: mode & 0o7777, gid: gid, isDirectory: false)
            let (name, full) = try newUpper(branchId)
            do {
                let fd = try Syscalls.open(full, flags: O_CREAT | O_EXCL | O_WRONLY, mode: mode_t(mode))
                Syscalls.giveToCaller(fd, uid: uid_t(uid), gid: gid_t(gid), mode: mode_t(mode), parentIsSetGID: false)
                close(fd)
            } catch let e as Errno { throw ArtifactError.system(e, "cannot create file", path: path) }
            do {
                try put(tx, branchId, TreeItem(path: path, kind: .file, upper: name, mode: mode & 0o7777, mtimeNs: nowNs(), uid: uid, gid: gid))
                try touchFolder(tx, branchId, path.parent)
            } catch { discardUpper(branchId, name); throw error }
            return full
        }
    }

    /// The upper file behind `path`, copied up from its blob first if it has none. With
    /// `writer`, one open writer is counted (see `changing`).
    public func openForWrite(branch branchId: RefID, path: PathBytes, truncate: Bool, writer: Bool = false) throws -> String {
        try changing(branchId, addingWriter: writer) { tx in
            guard let existing = try item(tx, branchId, path) else { throw ArtifactError(.notFound, "no such file", path: path) }
            if existing.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: path) }
            return try copyUp(tx, branchId, existing, truncate: truncate)
        }
    }

    /// Gives a file an upper copy of its committed bytes, so that writing never touches a blob.
    private func copyUp(_ tx: CatalogTransaction, _ branchId: RefID, _ item: TreeItem, truncate: Bool) throws -> String {
        if let upper = item.upper { return upperPath(branchId, upper) }
        guard let hash = item.blob else { throw ArtifactError(.corrupt, "file has no content", path: item.path) }
        let (name, full) = try newUpper(branchId)
        do {
            let out = try Syscalls.open(full, flags: O_CREAT | O_EXCL | O_WRONLY, mode: mode_t(item.mode & 0o7777))
            defer { close(out) }
            // Checked as it is copied: a damaged blob must not become a working tree's file,
            // which the next commit would record as new, good content.
            if !truncate { try store.blobs.copyChecked(hash, to: out) }
            Syscalls.giveToCaller(out, uid: uid_t(item.uid), gid: gid_t(item.gid), mode: mode_t(item.mode & 0o7777), parentIsSetGID: false)
            let ts = timespec(tv_sec: Int(item.mtimeNs / 1_000_000_000), tv_nsec: Int(item.mtimeNs % 1_000_000_000))
            _ = futimens(out, [ts, ts])
        } catch let e as Errno {
            discardUpper(branchId, name)
            throw ArtifactError.system(e, "cannot copy file for writing", path: item.path)
        } catch {
            discardUpper(branchId, name)
            throw error
        }
        var changed = item
        changed.upper = name
        changed.blob = nil
        do {
            try put(tx, branchId, changed)
            // A committed hard link stays one file: every name of its group that still shows
            // that committed entry shares the new upper file, so a write through any name is
            // seen through all (the kernel holds them as one inode).
            for var other in try linkGroupMembers(tx, branchId, item) where other.path != item.path {
                other.upper = name
                markShared(upper: name)
                other.blob = nil
                try put(tx, branchId, other)
            }
        } catch { discardUpper(branchId, name); throw error }
        return full
    }

    /// The other names of a committed hard link that the working tree still shows unchanged.
    private func linkGroupMembers(_ tx: CatalogTransaction, _ branchId: RefID, _ item: TreeItem) throws -> [TreeItem] {
        guard let group = item.linkGroup, item.nlink > 1 else { return [] }
        return try tx.linkGroupPaths(group: group).compactMap { path in
            guard let current = try self.item(tx, branchId, path), current.upper == nil, current.linkGroup == group else { return nil }
            return current
        }
    }

    /// Deletes the file at `path`, for user `uid` (the deletion's author).
    public func unlink(branch branchId: RefID, path: PathBytes, by uid: uid_t = 0) throws {
        func removeRow() throws -> String? {
            try changing(branchId) { tx in
                guard let existing = try item(tx, branchId, path) else { throw ArtifactError(.notFound, "no such file", path: path) }
                if existing.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: path) }
                let upper = try remove(tx, branchId, path, by: uid)
                try touchFolder(tx, branchId, path.parent)
                return upper
            }
        }
        let upper: String?
        do {
            upper = try removeRow()
        } catch let e as ArtifactError where e.code == .noSpace {
            // On a full disk the catalog needs room to record the removal. `rm` is how a user
            // makes room, so first give back the bytes of the file being removed, then retry.
            guard let doomed = try item(branch: branchId, path: path), let bytes = doomed.upper, doomed.nlink <= 1,
                  Glibc.truncate(upperPath(branchId, bytes), 0) == 0 else { throw e }
            upper = try removeRow()
        }
        discardUpper(branchId, upper)
    }

    /// Deletes the empty folder at `path`, for user `uid`.
    public func rmdir(branch branchId: RefID, path: PathBytes, by uid: uid_t = 0) throws {
        try changing(branchId) { tx in
            guard let existing = try item(tx, branchId, path) else { throw ArtifactError(.notFound, "no such folder", path: path) }
            guard existing.isDirectory else { throw ArtifactError(.notDirectory, "not a folder", path: path) }
            if try !children(tx, branchId, path).isEmpty { throw ArtifactError(.notEmpty, "folder not empty", path: path) }
            _ = try remove(tx, branchId, path, by: uid)
            try touchFolder(tx, branchId, path.parent)
        }
    }

    /// Moves a file or a folder with everything in it. Only rows change; upper files keep their
    /// names. With `exchange` (renameat2's RENAME_EXCHANGE) both must exist and swap places.
    public func rename(branch branchId: RefID, from: PathBytes, to: PathBytes, noReplace: Bool, exchange: Bool = false) throws {
        try NameRules.validateEntry(to.lastComponent)
        let discarded: String? = try changing(branchId) { tx in
            guard let source = try item(tx, branchId, from) else { throw ArtifactError(.notFound, "no such file", path: from) }
            if from == to { return nil }
            if to.isBelow(from) || (exchange && from.isBelow(to)) {
                throw ArtifactError(.invalidArgument, "cannot move a folder into itself", path: to)
            }
            try requireDirectory(tx, branchId, to.parent)
            let target = try item(tx, branchId, to)
            if exchange {
                guard let target else { throw ArtifactError(.notFound, "no such file", path: to) }
                let a = [source] + (source.isDirectory ? try subtree(tx, branchId, from) : [])
                let b = [target] + (target.isDirectory ? try subtree(tx, branchId, to) : [])
                for item in a.reversed() + b.reversed() { _ = try remove(tx, branchId, item.path) }
                for (items, old, new) in [(a, from, to), (b, to, from)] {
                    for item in items {
                        var moved = item
                        moved.path = item.path.replacingPrefix(old, with: new)
                        if item.path == old { touchCtime(&moved, branchId) }
                        try put(tx, branchId, moved)
                    }
                }
                try touchFolder(tx, branchId, from.parent)
                if to.parent != from.parent { try touchFolder(tx, branchId, to.parent) }
                return nil
            }
            var discarded: String?
            if let target {
                if noReplace { throw ArtifactError(.alreadyExists, "already exists", path: to) }
                if source.isDirectory && !target.isDirectory { throw ArtifactError(.notDirectory, "not a folder", path: to) }
                if !source.isDirectory && target.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: to) }
                if target.isDirectory, try !children(tx, branchId, to).isEmpty { throw ArtifactError(.notEmpty, "folder not empty", path: to) }
                // Two names of one file: rename(2) does nothing.
                if let u = source.upper, u == target.upper { return nil }
                discarded = target.upper
            }
            let moving = [source] + (source.isDirectory ? try subtree(tx, branchId, from) : [])
            for item in moving {
                var moved = item
                moved.path = item.path.replacingPrefix(from, with: to)
                if item.path == from { touchCtime(&moved, branchId) }
                try put(tx, branchId, moved)
            }
            for item in moving.reversed() { _ = try remove(tx, branchId, item.path) }
            try touchFolder(tx, branchId, from.parent)
            if to.parent != from.parent { try touchFolder(tx, branchId, to.parent) }
            return try isShared(tx, branchId, discarded) ? nil : discarded
        }
        discardUpper(branchId, discarded)
    }

    /// chmod, chown, truncate and utimens (nil: unchanged). Metadata of unwritten files is kept
    /// in the row, so a chmod never copies bytes; every change moves ctime, as on ext4.
    public func setAttributes(branch branchId: RefID, path: PathBytes, mode: Int64?, uid: Int64?, gid: Int64?,
                              size: Int64?, mtimeNs: Int64?, atimeNs: Int64? = nil) throws {
        try changing(branchId) { tx in
            guard var current = try item(tx, branchId, path) else { throw ArtifactError(.notFound, "no such file", path: path) }
            if let size {
                if current.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: path) }
                let upper = try copyUp(tx, branchId, current, truncate: size == 0)
                if Glibc.truncate(upper, off_t(size)) != 0 { throw ArtifactError.system(Errno(rawValue: errno), "cannot truncate", path: path) }
                current = try item(tx, branchId, path)!
            }
            if let upper = current.upper {
                let p = upperPath(branchId, upper)
                if let mode, chmod(p, mode_t(mode & 0o7777)) != 0 { throw ArtifactError.system(Errno(rawValue: errno), "cannot chmod", path: path) }
                if uid != nil || gid != nil, lchown(p, uid.map { uid_t($0) } ?? uid_t.max, gid.map { gid_t($0) } ?? gid_t.max) != 0 {
                    throw ArtifactError.system(Errno(rawValue: errno), "cannot chown", path: path)
                }
                if mtimeNs != nil || atimeNs != nil {
                    let omit = timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)
                    let times = [atimeNs.map { timeSpec(nanoseconds: $0) } ?? omit, mtimeNs.map { timeSpec(nanoseconds: $0) } ?? omit]
                    if utimensat(AT_FDCWD, p, times, 0) != 0 {
                        throw ArtifactError.system(Errno(rawValue: errno), "cannot set times", path: path)
                    }
                }
                return
            }
            if let mode { current.mode = mode & 0o7777 }
            if let uid { current.uid = uid }
            if let gid { current.gid = gid }
            if let mtimeNs { current.mtimeNs = mtimeNs }
            if let atimeNs { current.atimeNs = atimeNs }
            current.ctimeNs = nowNs()
            try put(tx, branchId, current)
        }
    }

    /// A symbolic link at `path` whose target is `target`, byte for byte. Its target lives in
    /// an upper file until the commit makes it a blob, as a file's bytes do.
    public func symlink(branch branchId: RefID, path: PathBytes, target: PathBytes, uid: Int64, gid: Int64) throws {
        try NameRules.validateEntry(path.lastComponent)
        try changing(branchId) { tx in
            try requireDirectory(tx, branchId, path.parent)
            if try item(tx, branchId, path) != nil { throw ArtifactError(.alreadyExists, "already exists", path: path) }
            let (name, full) = try newUpper(branchId)
            do {
                let fd = try Syscalls.open(full, flags: O_CREAT | O_EXCL | O_WRONLY, mode: 0o777)
                defer { close(fd) }
                try target.bytes.withUnsafeBytes { raw in
                    if raw.count > 0, Glibc.write(fd, raw.baseAddress!, raw.count) != raw.count { throw Errno(rawValue: errno) }
                }
                _ = fchown(fd, uid_t(uid), gid_t(gid))
                _ = fchmod(fd, 0o777)
            } catch let e as Errno { discardUpper(branchId, name); throw ArtifactError.system(e, "cannot create link", path: path) }
            do {
                try put(tx, branchId, TreeItem(path: path, kind: .symlink, upper: name, size: Int64(target.count), mode: 0o777,
                                               mtimeNs: nowNs(), uid: uid, gid: gid))
                try touchFolder(tx, branchId, path.parent)
            } catch { discardUpper(branchId, name); throw error }
        }
    }

    /// A FIFO, socket or device node: metadata only.
    public func mknod(branch branchId: RefID, path: PathBytes, kind: FileKind, mode: Int64, rdev: Int64, uid: Int64, gid: Int64) throws {
        try NameRules.validateEntry(path.lastComponent)
        try changing(branchId) { tx in
            let parent = try requireDirectory(tx, branchId, path.parent)
            if try item(tx, branchId, path) != nil { throw ArtifactError(.alreadyExists, "already exists", path: path) }
            let (mode, gid) = inherited(from: parent, mode: mode & 0o7777, gid: gid, isDirectory: false)
            var node = TreeItem(path: path, kind: EntryKind(kind), mode: mode, mtimeNs: nowNs(), uid: uid, gid: gid)
            node.rdev = rdev
            try put(tx, branchId, node)
            try touchFolder(tx, branchId, path.parent)
        }
    }

    /// A second name for a file: both rows share one upper file (copied up first), so a write
    /// through either shows through both until the commit.
    public func link(branch branchId: RefID, from: PathBytes, to: PathBytes) throws {
        try NameRules.validateEntry(to.lastComponent)
        try changing(branchId) { tx in
            guard let source = try item(tx, branchId, from) else { throw ArtifactError(.notFound, "no such file", path: from) }
            if source.isDirectory { throw ArtifactError(.notPermitted, "cannot link a folder", path: from) }
            try requireDirectory(tx, branchId, to.parent)
            if try item(tx, branchId, to) != nil { throw ArtifactError(.alreadyExists, "already exists", path: to) }
            var linked = source
            if source.kind.hasBytes {
                _ = try copyUp(tx, branchId, source, truncate: false)
                linked = try item(tx, branchId, from)!
            }
            touchCtime(&linked, branchId)
            linked.path = to
            linked.entryId = nil
            if let upper = linked.upper { markShared(upper: upper) }
            try put(tx, branchId, linked)
            try touchFolder(tx, branchId, to.parent)
        }
    }

    /// open(…, O_TMPFILE) in the folder `dir`: an unnamed upper file, open read-write (`flags`:
    /// the access mode and O_EXCL of the call), owned by the caller. No row names it until
    /// `linkOpenFile`; if the descriptor closes first, it is gone. One open writer is counted
    /// (see `changing`). Throws notFound/notDirectory for `dir`, and the open's errno.
    public func openAnonymous(branch branchId: RefID, dir: PathBytes, mode: Int64, flags: Int32, uid: Int64, gid: Int64) throws -> Int32 {
        try changing(branchId, addingWriter: true) { tx in
            let parent = try requireDirectory(tx, branchId, dir)
            let (mode, gid) = inherited(from: parent, mode: mode & 0o7777, gid: gid, isDirectory: false)
            let upperDir = upperDirectory(branchId)
            do {
                _ = try Syscalls.mkdirs(upperDir)
                let fd = try Syscalls.open(upperDir, flags: (flags & (O_ACCMODE | O_EXCL)) | afs_o_tmpfile(), mode: mode_t(mode))
                Syscalls.giveToCaller(fd, uid: uid_t(uid), gid: gid_t(gid), mode: mode_t(mode), parentIsSetGID: false)
                return fd
            } catch let e as Errno { throw ArtifactError.system(e, "cannot create an unnamed file", path: dir) }
        }
    }

    /// linkat of an O_TMPFILE file (open as `descriptor`, from `openAnonymous`) to `path`: it
    /// becomes the upper file of a new row there, with its own mode, owner and times. Throws
    /// alreadyExists, notFound for the folder, and linkat's errno (ENOENT for a file opened
    /// with O_EXCL, which may never be named).
    public func linkOpenFile(branch branchId: RefID, descriptor: Int32, to path: PathBytes) throws -> String {
        try NameRules.validateEntry(path.lastComponent)
        return try changing(branchId) { tx in
            try requireDirectory(tx, branchId, path.parent)
            if try item(tx, branchId, path) != nil { throw ArtifactError(.alreadyExists, "already exists", path: path) }
            let (name, full) = try newUpper(branchId)
            do {
                _ = try Syscalls.retrying { afs_linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, full, AT_SYMLINK_FOLLOW) }
            } catch let e as Errno { throw ArtifactError.system(e, "cannot name the unnamed file", path: path) }
            do {
                let st = try Syscalls.lstat(full)
                try put(tx, branchId, TreeItem(path: path, kind: .file, upper: name, size: Int64(st.st_size), mode: Int64(st.st_mode & 0o7777),
                                               mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                                               uid: Int64(st.st_uid), gid: Int64(st.st_gid)))
                try touchFolder(tx, branchId, path.parent)
            } catch { discardUpper(branchId, name); throw error }
            return full
        }
    }

    /// The target of a symbolic link in the working tree.
    public func linkTarget(branch branchId: RefID, path: PathBytes) throws -> PathBytes {
        guard let link = try item(branch: branchId, path: path), link.kind == .symlink else {
            throw ArtifactError(.invalidArgument, "not a symbolic link", path: path)
        }
        if let upper = link.upper {
            guard let data = FileManager.default.contents(atPath: upperPath(branchId, upper)) else {
                throw ArtifactError(.corrupt, "link target is missing", path: path)
            }
            return PathBytes(Array(data))
        }
        guard let hash = link.blob else { throw ArtifactError(.corrupt, "link has no target", path: path) }
        return PathBytes(try store.blobs.read(hash))
    }

    /// Sets (`value`) or removes (nil) one user attribute of `path`, with setxattr's flags
    /// (XATTR_CREATE 1, XATTR_REPLACE 2). Kept in the row until the commit.
    public func setXattr(branch branchId: RefID, path: PathBytes, name: String, value: [UInt8]?, flags: Int32 = 0) throws {
        try changing(branchId) { tx in
            guard var current = try item(tx, branchId, path) else { throw ArtifactError(.notFound, "no such file", path: path) }
            var xattrs = UserXattrs(encoded: current.xattrs)
            let exists = xattrs.value(name) != nil
            if value == nil || flags & 2 != 0, !exists { throw ArtifactError(.noAttribute, "no such attribute", path: path) }
            if flags & 1 != 0, exists { throw ArtifactError(.alreadyExists, "attribute exists", path: path) }
            xattrs = UserXattrs(xattrs.entries.filter { $0.name != name } + (value.map { [UserXattrs.Entry(name: name, value: $0)] } ?? []))
            current.xattrs = xattrs.encoded
            touchCtime(&current, branchId)
            try put(tx, branchId, current)
        }
    }

    // MARK: hard links

    /// Upper files that `link` (or a copy-up of a committed hard link) gave several names.
    /// A name removed later leaves its upper here: that costs one count, never a wrong one.
    private let sharedUppers = Mutex(Set<String>())

    private func markShared(upper: String) { sharedUppers.withLock { _ = $0.insert(upper) } }
    private func mayBeShared(upper: String) -> Bool { sharedUppers.withLock { $0.contains(upper) } }

    // MARK: writers

    private let upperWriters = Mutex<[String: Int]>([:])

    /// A writer opened `upperPath` (descriptor `fd`): the first one marks it on disk as being
    /// written (`StagingMark`), so that a crash before the last one closes leaves it
    /// interrupted rather than committed as if complete.
    public func beginWriting(upperPath: String, fd: Int32) {
        upperWriters.withLock { upperWriters in
            if upperWriters[upperPath, default: 0] == 0 { StagingMark.beginWriting(fd: fd) }
            upperWriters[upperPath, default: 0] += 1
        }
    }

    /// The writer of `beginWriting` closed; the last one removes the mark.
    public func endWriting(upperPath: String, fd: Int32) {
        upperWriters.withLock { upperWriters in
            let left = upperWriters[upperPath, default: 1] - 1
            upperWriters[upperPath] = left > 0 ? left : nil
            if left <= 0 { StagingMark.endWriting(fd: fd) }
        }
    }

    /// Ends a writer counted by `create` or `openForWrite` with `writer`; no commit runs while
    /// one is open.
    public func endWriting(branch branchId: RefID) {
        state(branchId).lock.withLock { $0.openWriters -= 1; $0.noteChange() }
    }

    /// Removes upper files no change refers to (left by a crash between a commit and its cleanup,
    /// or between creating a file and recording it), drops changes whose upper file is gone (a
    /// power loss took an unsynced create: the head's version shows again, as an unsynced write
    /// to any filesystem would be lost), and marks branches with changes pending.
    public func recover() throws {
        var rows = try catalog.reading { try $0.worktreeChangesWithUpperFiles() }
        var seen = Set<String>()
        for row in rows where !seen.insert(row.upper!).inserted { markShared(upper: row.upper!) }
        // A file open for writing when the daemon died may be a truncated copy.
        for row in rows { StagingMark.recover(at: PathBytes(upperPath(row.branchId, row.upper!))) }
        let lost = rows.filter { (try? Syscalls.lstat(upperPath($0.branchId, $0.upper!))) == nil }
        if !lost.isEmpty {
            try catalog.writing { tx in for row in lost { try tx.deleteWorktreeChange(row) } }
            rows.removeAll { row in lost.contains { $0.id == row.id } }
        }
        var live = Set(rows.map { "\($0.branchId)/\($0.upper!)" })
        for (branch, _) in (try? Syscalls.listDirectory(root)) ?? [] {
            for (name, _) in (try? Syscalls.listDirectory("\(root)/\(branch)")) ?? [] where !live.contains("\(branch)/\(name)") {
                try? Syscalls.unlink("\(root)/\(branch)/\(name)")
            }
        }
        live.removeAll()
        let pending = try catalog.reading { try $0.branchesWithChanges() }
        for b in pending { state(b).lock.withLock { $0.noteChange() } }
    }
}

func nowNs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }

extension NameRules {
    /// A file or folder name inside a working tree: what POSIX allows, within our length.
    static func validateEntry(_ name: PathBytes) throws {
        if name.count > maxBytes { throw ArtifactError(.nameTooLong, "name is longer than \(maxBytes) bytes", path: name) }
        if name.isEmpty || name == "." || name == ".." || name.contains(byte: 0x2F) {
            throw ArtifactError(.invalidName, "not a valid file name", path: name)
        }
    }
}
