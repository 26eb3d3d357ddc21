import Foundation
import GRDB

/// The rows behind working trees (`ref` for heads, `worktree_change`) and a commit's writes
/// (`version`, `entry`), as `Worktrees` and `DatasetCommitter` read and write them.
extension CatalogTransaction {
    // MARK: branches

    /// A branch and its dataset; nil when `branchId` is not a branch.
    func branch(id branchId: RefID) throws -> (RefRecord, DatasetRecord)? {
        guard let ref = try RefRecord.fetchOne(db, key: branchId), ref.kind == .branch,
              let ds = try DatasetRecord.fetchOne(db, key: ref.datasetId) else { return nil }
        return (ref, ds)
    }

    /// The head version of a branch (nil: no commit yet). Every lookup, create and getattr in a
    /// working tree asks, so it is one cached statement, not a record request.
    /// - Throws: `.notFound` when `branchId` is not a branch.
    func headVersion(branch branchId: RefID) throws -> VersionID? {
        let statement = try db.cachedStatement(sql: "SELECT version_id FROM ref WHERE id = ? AND kind = 'branch'")
        guard let row = try Row.fetchOne(statement, arguments: [branchId]) else { throw ArtifactError(.notFound, "no such branch") }
        return row[0]
    }

    /// Points a branch at `versionId`.
    func moveBranch(_ branchId: RefID, to versionId: VersionID) throws {
        try db.execute(sql: "UPDATE ref SET version_id = ? WHERE id = ?", arguments: [versionId, branchId])
    }

    // MARK: working-tree changes

    /// The change recorded for `path` (the branch folder itself for the empty path).
    func worktreeChange(branch branchId: RefID, path: PathBytes) throws -> WorktreeChangeRecord? {
        let statement = try db.cachedStatement(sql: "SELECT * FROM worktree_change WHERE branch_id = ? AND path = ?")
        return try WorktreeChangeRecord.fetchOne(statement, arguments: [branchId, path])
    }

    /// The changes recorded directly in folder `dir`.
    func worktreeChanges(branch branchId: RefID, dir: PathBytes) throws -> [WorktreeChangeRecord] {
        try WorktreeChangeRecord.filter(Column("branch_id") == branchId && Column("dir") == dir).fetchAll(db)
    }

    /// Every change of a branch, by path.
    func worktreeChanges(branch branchId: RefID) throws -> [WorktreeChangeRecord] {
        try WorktreeChangeRecord.filter(Column("branch_id") == branchId).order(Column("path")).fetchAll(db)
    }

    /// Every change of every branch that has an upper file.
    func worktreeChangesWithUpperFiles() throws -> [WorktreeChangeRecord] {
        try WorktreeChangeRecord.filter(Column("upper") != nil).fetchAll(db)
    }

    /// The branches with changes recorded.
    func branchesWithChanges() throws -> [RefID] {
        try RefID.fetchAll(db, sql: "SELECT DISTINCT branch_id FROM worktree_change")
    }

    /// Calls `each` with the path and kind of every change but the branch folder's own, until
    /// it returns false.
    func forEachChangedPath(branch branchId: RefID, _ each: (PathBytes, EntryKind?) throws -> Bool) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT path, kind FROM worktree_change WHERE branch_id = ? AND path != x''",
                                       arguments: [branchId])
        while let row = try rows.next() {
            let kind: String = row["kind"]
            if try !each(row["path"], EntryKind(rawValue: kind)) { return }
        }
    }

    /// The paths of folders made (or replaced) directly in `dir`, partial index `worktree_change_folders`.
    func worktreeFolderPaths(branch branchId: RefID, dir: PathBytes) throws -> [PathBytes] {
        let statement = try db.cachedStatement(sql: "SELECT path FROM worktree_change WHERE branch_id = ? AND dir = ? AND kind = 'dir'")
        return try PathBytes.fetchAll(statement, arguments: [branchId, dir])
    }

    /// How many rows share upper file `upper`: the names of a hard-linked file.
    func worktreeNames(branch branchId: RefID, upper: String) throws -> Int64 {
        let statement = try db.cachedStatement(sql: "SELECT COUNT(*) FROM worktree_change WHERE branch_id = ? AND upper = ?")
        return try Int64.fetchOne(statement, arguments: [branchId, upper]) ?? 0
    }

    /// Records `change`, replacing the row of its path.
    func putWorktreeChange(_ change: WorktreeChangeRecord) throws {
        var c = change
        try c.insert(db, onConflict: .replace)
    }

    /// Moves the times of folder `dir`'s row; false when it has no folder row.
    func touchWorktreeFolder(branch branchId: RefID, dir: PathBytes, now: Int64) throws -> Bool {
        let update = try db.cachedStatement(sql: """
            UPDATE worktree_change SET mtime_ns = ?, ctime_ns = ? WHERE branch_id = ? AND path = ? AND kind = 'dir'
            """)
        try update.execute(arguments: [now, now, branchId, dir])
        return db.changesCount > 0
    }

    func deleteWorktreeChange(_ change: WorktreeChangeRecord) throws {
        _ = try change.delete(db)
    }

    /// Replaces all of a branch's changes with `kept` (after a commit took the others).
    func replaceWorktreeChanges(branch branchId: RefID, with kept: [WorktreeChangeRecord]) throws {
        _ = try WorktreeChangeRecord.filter(Column("branch_id") == branchId).deleteAll(db)
        for var row in kept { row.id = nil; try row.insert(db) }
    }

    // MARK: versions

    /// The paths of the names of committed hard-link group `group` (the id of its first entry).
    func linkGroupPaths(group: EntryID) throws -> [PathBytes] {
        try PathBytes.fetchAll(db, sql: """
            SELECT path FROM entry WHERE version_id = (SELECT version_id FROM entry WHERE id = ?) AND link_group = ?
            """, arguments: [group, group])
    }

    /// Inserts a version with the next chronological id of its dataset, one deeper than its parent.
    func insertVersion(datasetId: DatasetID, parent: VersionID?, branch: String, uid: Int64,
                       message: String, changes: Int64, now: Date) throws -> VersionRecord {
        let id = try ChronologicalID.next(db, table: "version", ownerColumn: "dataset_id", ownerId: datasetId.rawValue, now: now)
        let depth = try parent.flatMap { try versionDepth(id: $0) }.map { $0 + 1 } ?? 0
        var v = VersionRecord(id: nil, datasetId: datasetId, name: id.name,
                              timestamp: id.timestamp, seq: id.seq, parentId: parent, depth: depth, branch: branch,
                              authorUid: uid, message: message, createdAt: now.timeIntervalSince1970, changes: changes)
        try v.insert(db)
        return v
    }

    /// Inserts an entry of a version; it gets its id. The caller counts the blob's reference.
    func insertEntry(_ entry: inout EntryRecord) throws {
        try entry.insert(db)
    }

    /// Makes an entry the first of its own hard-link group.
    func leadLinkGroup(entryId: EntryID) throws {
        try db.execute(sql: "UPDATE entry SET link_group = id WHERE id = ?", arguments: [entryId])
    }

    /// Counts one more reference to a blob (see `BlobReferences.add`).
    func addReference(_ hash: BlobHash, size: Int64, now: Double, blocks: BlockSums? = nil, packed: PackPlace? = nil) throws {
        try BlobReferences.add(db, hash, size: size, now: now, blocks: blocks, packed: packed)
    }
}
