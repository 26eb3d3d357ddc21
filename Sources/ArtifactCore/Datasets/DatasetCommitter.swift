import Foundation
import TabularSchemas
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// One uncommitted change of a `@branch/` working tree, as `artifactfs status` lists it.
public struct WorkingTreeChange: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case added, changed, deleted }
    public var path: PathBytes
    public var kind: Kind
    /// What the path is in the branch's head version (nil: added).
    public var head: TreeItem?
    /// What the next commit would record there (nil: deleted); a written file's `blob` is the
    /// hash of its bytes now.
    public var next: TreeItem?
    /// The file was open for writing when the daemon stopped (`StagingMark.interrupted`): the
    /// quiet-period commit leaves it out, an explicit commit takes it.
    public var interrupted: Bool
}

/// Turns a branch's working-tree changes into one new version, atomically.
///
/// Work is proportional to the changed paths: it reads the branch's change rows, compares each
/// with the head's entry for that path, stores written files as blobs (fsync, hard link into
/// `objects/`, folder fsync), and then, in one transaction, adds the version and its entries,
/// moves the branch (only if it still points at the head it started from) and clears the
/// changes. A crash before that transaction leaves the changes staged; after it, the version is
/// whole and leftover upper files are removed at the next start.
///
/// A commit never changes the bytes or modes `@branch/` shows (head plus changes before, the new
/// head after; only an mtime-only change falls back to the committed mtime), and only a commit
/// moves a head, so there is no kernel entry to invalidate. Open readers hold their own
/// descriptor (see `Worktrees`).
public final class DatasetCommitter: Sendable {
    public let worktrees: Worktrees
    var store: ArtifactStore { worktrees.store }
    var catalog: Catalog { store.catalog }
    var trees: VersionTrees { worktrees.trees }
    let logger: Logger

    public enum Outcome: Sendable, Equatable {
        case committed(VersionRecord)
        /// The working tree equals the head: no version was made.
        case unchanged
        /// A file is open for writing on the branch.
        case busy
    }

    public init(worktrees: Worktrees, logger: Logger = Logger(label: "artifactfs.commit")) {
        self.worktrees = worktrees
        self.logger = logger
    }

    /// Commits every branch that has been quiet for `quietPeriod` with no writer open.
    public func commitQuietBranches(quietPeriod: UInt64) {
        let now = monotonicNanoseconds()
        let ready = worktrees.allStates().filter { _, s in
            s.lock.withLock { s in s.pending && s.openWriters == 0 && now >= s.lastChange + quietPeriod && now >= s.retryAfter }
        }.map(\.0)
        for id in ready.sorted() {
            do {
                _ = try commit(branch: id, message: nil, author: nil, includingInterrupted: false)
            } catch {
                let s = worktrees.state(id)
                s.lock.withLock { $0.retryAfter = monotonicNanoseconds() + max(quietPeriod, 1_000_000_000) * 5 }
                logger.error("commit of branch \(id) failed: \(error)")
            }
        }
    }

    /// Commits the branch now. `message` nil: a generated one; `author` nil: the uid of the
    /// last changed file. Files a crash cut short (`StagingMark.interrupted` on their upper
    /// file) stay uncommitted unless `includingInterrupted` (an explicit `artifactfs commit`
    /// or `seal`).
    @discardableResult
    public func commit(branch branchId: RefID, message: String?, author: Int64?, includingInterrupted: Bool = true,
                       now: Date = Date()) throws -> Outcome {
        let state = worktrees.state(branchId)
        // Hashing and schema inference run without the branch lock, as the seal's do, so a
        // large commit never stalls the working tree; the lock is taken, and the branch found
        // unchanged since, before the commit changes anything. A branch that changed in
        // between is planned again (a few times, then it is busy).
        for _ in 0..<Self.attempts {
            guard let generation = state.lock.withLock({ $0.openWriters == 0 ? $0.generation : nil }) else { return .busy }
            let plan: Plan?
            do {
                plan = try self.plan(branchId, includingInterrupted: includingInterrupted)
            } catch where state.lock.withLock({ $0.generation != generation }) {
                continue  // planning met a change under way (an upper file removed as it was read)
            }
            // From here to the end of the commit, the branch lock is held.
            let outcome: Outcome? = try state.lock.withLock { fields in
                guard fields.openWriters == 0, fields.generation == generation else { return nil }
                let outcome = try plan.map { try commitPlanned($0, branchId, message: message, author: author, now: now) } ?? .unchanged
                fields.pending = false
                return outcome
            }
            guard let outcome else { continue }
            return outcome
        }
        return .busy
    }

    /// How often a commit plans again when the branch changed while it was hashing.
    static let attempts = 3

    private struct Planned {
        var entry: EntryRecord
        var upper: String?
        /// The block checksums of a written file, read while hashing it.
        var blocks: BlockSums? = nil
        /// What the path is in the head version (nil: the change adds it).
        var head: TreeItem?
        /// The upper file was open for writing when the daemon stopped.
        var interrupted = false
    }

    /// The changes the next commit (`artifactfs commit`) would record, sorted by path: what
    /// `git status` is to `git commit`. Written files are hashed as the commit hashes them, but
    /// nothing is stored, no lock is taken and the branch does not change. Throws what reading
    /// the catalog or an upper file throws (a file removed while it is read: `.notFound`).
    public func pendingChanges(branch branchId: RefID) throws -> [WorkingTreeChange] {
        guard let plan = try plan(branchId, includingInterrupted: true) else { return [] }
        return plan.planned.flatMap { p -> [WorkingTreeChange] in
            let next = p.entry.kind == .deleted ? nil : TreeItem(p.entry)
            // A file that became a folder (or the other way) is one thing gone and another new.
            if let head = p.head, let next, head.isDirectory != next.isDirectory {
                return [WorkingTreeChange(path: p.entry.path, kind: .deleted, head: head, next: nil, interrupted: false),
                        WorkingTreeChange(path: p.entry.path, kind: .added, head: nil, next: next, interrupted: p.interrupted)]
            }
            let kind: WorkingTreeChange.Kind = next == nil ? .deleted : p.head == nil ? .added : .changed
            return [WorkingTreeChange(path: p.entry.path, kind: kind, head: p.head, next: next, interrupted: p.interrupted)]
        }.sorted { ($0.path, $0.kind == .deleted ? 0 : 1) < ($1.path, $1.kind == .deleted ? 0 : 1) }
    }

    /// What `plan` found, for `commitPlanned`.
    private struct Plan {
        var ref: RefRecord
        var dataset: DatasetRecord
        var rows: [WorktreeChangeRecord]
        var keptUppers: Set<String>
        var unmark: [String]
        var planned: [Planned]
        var counts: (added: Int, changed: Int, deleted: Int)
        var uppers: [String]
        var clearCommittedRows: (CatalogTransaction) throws -> Void
    }

    /// Plans the commit from the working tree's rows (reading and hashing files), without the
    /// branch lock. nil: no row to commit.
    private func plan(_ branchId: RefID, includingInterrupted: Bool) throws -> Plan? {
        let (ref, dataset, allRows, heads) = try catalog.reading { tx -> (RefRecord, DatasetRecord, [WorktreeChangeRecord], [PathBytes: TreeItem]) in
            let (ref, ds) = try worktrees.head(tx, branchId)
            let rows = try tx.worktreeChanges(branch: branchId)
            var heads: [PathBytes: TreeItem] = [:]
            for r in rows { heads[r.path] = try trees.item(tx, version: ref.versionId, path: r.path) }
            return (ref, ds, rows, heads)
        }
        // Paths `.artifactfsignore` names are never committed: they stay uncommitted changes
        // of the working tree, as the branch folder's own times do.
        let ignore = try worktrees.ignoreRules(branch: branchId)
        func interrupted(_ row: WorktreeChangeRecord) -> Bool {
            guard let upper = row.upper else { return false }
            return StagingMark.has(StagingMark.interrupted, at: PathBytes(worktrees.upperPath(branchId, upper)))
        }
        let kept = allRows.filter {
            $0.path.isEmpty || ignore.ignores($0.path.bytes, isDirectory: $0.kind == .dir) || (!includingInterrupted && interrupted($0))
        }
        // Committed on purpose: the upper file becomes a blob, which carries no mark (removed
        // once the branch is locked and found as planned).
        let unmark = allRows.filter { includingInterrupted && interrupted($0) }.map { worktrees.upperPath(branchId, $0.upper!) }
        let keptIds = Set(kept.compactMap(\.id))
        let rows = allRows.filter { !keptIds.contains($0.id!) }
        if rows.isEmpty { return nil }  // (nothing interrupted is taken either)
        /// Removes the committed rows and keeps the others.
        func clearCommittedRows(_ tx: CatalogTransaction) throws {
            try tx.replaceWorktreeChanges(branch: branchId, with: kept)
        }
        let keptUppers = Set(kept.compactMap(\.upper))

        var planned: [Planned] = []
        var counts = (added: 0, changed: 0, deleted: 0)
        // Names that share an upper file are one hard-link group, recorded together: a name
        // whose bytes equal its head (the committed file `ln` linked to) is still part of it.
        var namesPerUpper: [String: Int] = [:]
        for r in rows where r.kind != .deleted { if let u = r.upper { namesPerUpper[u, default: 0] += 1 } }
        // The branch folder's own times are the working tree's, not part of a version.
        for row in rows where !row.path.isEmpty {
            let head = heads[row.path]
            var written: BlockSums?
            var e = EntryRecord(id: nil, datasetId: dataset.id!, versionId: VersionID(0), path: row.path, dir: row.dir, name: row.name,
                                kind: row.kind, blob: row.blob, size: row.size, mode: row.mode, mtimeNs: row.mtimeNs,
                                uid: row.uid, gid: row.gid, schema: nil, xattrs: row.xattrs, rdev: row.rdev, atimeNs: row.atimeNs)
            // What a version records besides bytes: kind, mode, owner, user attributes (and a
            // folder's mtime, so `rsync -a` finds folders as it left them after a commit).
            func sameMetadata(_ head: TreeItem) -> Bool {
                head.kind == e.kind && head.mode == e.mode && head.uid == e.uid && head.gid == e.gid
                    && UserXattrs(encoded: head.xattrs) == UserXattrs(encoded: e.xattrs.map { Array($0) }) && head.rdev == e.rdev
            }
            switch row.kind {
            case .deleted:
                guard head != nil else { continue }
                e.size = 0; e.mode = 0; e.blob = nil; e.xattrs = nil
                counts.deleted += 1
            case .dir:
                if let head, sameMetadata(head), head.mtimeNs == row.mtimeNs { continue }
                if head == nil { counts.added += 1 } else { counts.changed += 1 }
            case .fifo, .socket, .chardev, .blockdev:
                e.blob = nil; e.size = 0
                if let head, sameMetadata(head) { continue }
                if head == nil { counts.added += 1 } else { counts.changed += 1 }
            case .file, .symlink:
                var source: String
                if let upper = row.upper {
                    source = worktrees.upperPath(branchId, upper)
                    let st: stat
                    do { st = try Syscalls.lstat(source) } catch let err as Errno {
                        throw ArtifactError.system(err, "staged file is missing", path: source)
                    }
                    let digest = try BlobStore.digest(fileAt: PathBytes(source))
                    e.blob = digest.hash; e.size = digest.size
                    written = digest.blocks
                    e.mode = Int64(st.st_mode & 0o7777)
                    e.mtimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
                    e.uid = Int64(st.st_uid); e.gid = Int64(st.st_gid)
                } else {
                    guard let hash = row.blob else { continue }
                    source = store.blobs.path(of: hash)
                }
                if row.kind == .symlink { e.mode = 0o777 }
                // Like git, content and mode (not a new mtime alone) make a file changed; so
                // does becoming one file with another name (a hard link).
                let linked = row.upper.map { namesPerUpper[$0, default: 0] > 1 } ?? false
                if let head, head.blob == e.blob, sameMetadata(head), !linked { continue }
                if head?.kind == .file, head?.blob == e.blob {
                    e.schema = head?.schema
                } else if row.kind == .file, let schema = inferSchema(path: source, blob: e.blob, name: row.name.description) {
                    e.schema = String(decoding: try JSONEncoder().encode(schema), as: UTF8.self)
                }
                if head == nil { counts.added += 1 } else { counts.changed += 1 }
            }
            planned.append(Planned(entry: e, upper: e.kind.hasBytes ? row.upper : nil, blocks: written, head: head,
                                   interrupted: interrupted(row)))
        }

        let uppers = rows.compactMap(\.upper).filter { !keptUppers.contains($0) }
        return Plan(ref: ref, dataset: dataset, rows: rows, keptUppers: keptUppers, unmark: unmark, planned: planned,
                    counts: counts, uppers: uppers, clearCommittedRows: clearCommittedRows)
    }

    /// Stores the planned blobs and writes the version. Called with the branch lock held and
    /// the branch found as planned.
    private func commitPlanned(_ plan: Plan, _ branchId: RefID, message: String?, author: Int64?, now: Date) throws -> Outcome {
        let (ref, dataset, rows, keptUppers, unmark, planned, counts, uppers, clearCommittedRows) =
            (plan.ref, plan.dataset, plan.rows, plan.keptUppers, plan.unmark, plan.planned, plan.counts, plan.uppers, plan.clearCommittedRows)
        for path in unmark { StagingMark.remove(StagingMark.interrupted, at: PathBytes(path)) }
        if planned.isEmpty {
            try catalog.writing { tx in try clearCommittedRows(tx) }
            uppers.forEach { try? Syscalls.unlink(worktrees.upperPath(branchId, $0)) }
            logger.info("branch \(ref.name) of dataset \(dataset.name): nothing changed")
            return .unchanged
        }

        // Written files become blobs before any row refers to them. An upper file a kept
        // (ignored or interrupted) name still uses stays writable: store a copy of it.
        let adopted = try store.blobs.adopt(planned.compactMap { p -> BlobStore.Adoption? in
            guard let upper = p.upper, let hash = p.entry.blob else { return nil }
            return BlobStore.Adoption(path: PathBytes(worktrees.upperPath(branchId, upper)), hash: hash, size: p.entry.size,
                                      copying: keptUppers.contains(upper))
        }, referenced: catalog.referencedBlobs)

        let uid = author ?? rows.last(where: { $0.kind == .file })?.uid ?? rows.last?.uid ?? dataset.ownerUid
        let text = message ?? "quiet-period commit: \(counts.added) added, \(counts.changed) changed, \(counts.deleted) deleted"
        let version: VersionRecord
        do {
            version = try catalog.writing { tx in
                guard let (current, _) = try tx.branch(id: branchId), current.versionId == ref.versionId else {
                    throw ArtifactError(.busy, "branch moved during the commit", path: "@\(ref.name)")
                }
                var v = try tx.insertVersion(datasetId: dataset.id!, parent: ref.versionId, branch: ref.name, uid: uid,
                                             message: text, changes: Int64(planned.count), now: now)
                // Names that share an upper file are hard links: one group, its first entry's id.
                var linkCounts: [String: Int64] = [:]
                for p in planned { if let u = p.upper { linkCounts[u, default: 0] += 1 } }
                var leaders: [String: EntryID] = [:]
                for p in planned {
                    var e = p.entry
                    e.versionId = v.id!
                    if let u = p.upper, let n = linkCounts[u], n > 1 {
                        e.nlink = n
                        e.linkGroup = leaders[u]
                    }
                    if e.kind.hasBytes, let hash = e.blob {
                        try tx.addReference(hash, size: e.size, now: now.timeIntervalSince1970, blocks: p.blocks)
                    }
                    try tx.insertEntry(&e)
                    if let u = p.upper, let n = linkCounts[u], n > 1, leaders[u] == nil {
                        leaders[u] = e.id!
                        try tx.leadLinkGroup(entryId: e.id!)
                    }
                }
                try tx.moveBranch(branchId, to: v.id!)
                try clearCommittedRows(tx)
                v.changes = Int64(planned.count)
                return v
            }
        } catch {
            store.blobs.discard(adopted, referenced: catalog.referencedBlobs)
            throw error
        }
        store.blobs.release(adopted)
        uppers.forEach { try? Syscalls.unlink(worktrees.upperPath(branchId, $0)) }
        logger.info("committed version \(version.name) on \(dataset.name)@\(ref.name): \(planned.count) changes")
        return .committed(version)
    }
}

extension DatasetCommitter {
    /// The schema of a file whose content is at `path`, or, for a packed blob (no file of its
    /// own), of `blob`'s bytes.
    fileprivate func inferSchema(path: String, blob: BlobHash?, name: String) -> FileSchema? {
        if Syscalls.exists(path) || blob == nil { return SchemaInference.infer(path: path, name: name) }
        guard let blob, let format = SchemaInference.format(forName: name),
              let bytes = try? store.blobs.read(blob, limit: PackFile.sizeLimit) else { return nil }
        return SchemaInference.infer(bytes: bytes, format: format)
    }
}
