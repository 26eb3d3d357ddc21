import Foundation
import GRDB

/// A run's files, handed to `insertRun` one at a time inside its transaction, so that a run
/// of a million files (an import streams them from its journal) is never held in memory
/// whole. Called twice: once for hard-link counts (unless the caller knows them), once to insert.
typealias StagedEntryFeed = (CatalogTransaction, (StagedEntry) throws -> Void) throws -> Void

/// A run's rows (`run`, `file`, `dir`, `seal_cleanup`), written by `RunRegistrar`.
extension CatalogTransaction {
    /// Inserts a run with the next chronological id of its project, all of `entries` (each
    /// new, a duplicate of the current file at its path, or superseding it), their folders and
    /// their ancestors, and `cleanup` rows; counts one reference per entry's blob. `error`: why
    /// some files are missing from the run (it then ends `completed_with_errors`). Memory:
    /// the run's folder paths and hard-linked files, not its files.
    func insertRun(projectId: ProjectID, entries: StagedEntryFeed, directories: [StagedDirectory],
                   linkCounts knownLinks: [UInt64: Int64]? = nil, uid: Int64, action: String, completed: Bool, error: String? = nil,
                   cleanup: [(path: PathBytes, ino: UInt64)], now: Date) throws -> RunRecord {
        let nowSeconds = now.timeIntervalSince1970
        let id = try ChronologicalID.next(db, table: "run", ownerColumn: "project_id", ownerId: projectId.rawValue, now: now)
        var run = RunRecord(id: nil, projectId: projectId, name: id.name,
                            timestamp: id.timestamp, seq: id.seq, action: action,
                            status: completed ? (error == nil ? .completed : .completedWithErrors) : .inProgress, uid: uid,
                            createdAt: nowSeconds, completedAt: completed ? nowSeconds : nil, error: error,
                            filesNew: 0, filesSuperseded: 0, filesDuplicate: 0, bytes: 0)
        try run.insert(db)
        let runId = run.id!

        let current = try db.cachedStatement(sql: """
            SELECT id, blob, kind FROM file WHERE project_id = ? AND dir = ? AND name = ? AND superseded_by IS NULL
            """)
        let supersede = try db.cachedStatement(sql: "UPDATE file SET status = 'superseded', superseded_by = ? WHERE id = ?")
        let insertFile = try db.cachedStatement(sql: """
            INSERT INTO file (project_id, run_id, dir, name, blob, size, mode, mtime_ns, uid, gid, status, created_at,
                              kind, xattrs, link_group, nlink, rdev, atime_ns)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let insertDir = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO dir (project_id, run_id, parent, name, mode, uid, gid, mtime_ns, xattrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)

        // Folders with what the staging area saw of them; ancestors it did not list get none.
        let known = Dictionary(directories.map { ($0.relativePath, $0) }, uniquingKeysWith: { a, _ in a })
        var dirs = Set<PathBytes>()
        func addDirAndAncestors(_ dir: PathBytes) throws {
            for d in dir.folderAndAncestors {
                guard dirs.insert(d).inserted else { return }  // and so are the folders above it
                let m = known[d]
                try insertDir.execute(arguments: [projectId, runId, d.parent, d.lastComponent, m?.mode, m?.uid, m?.gid, m?.mtimeNs,
                                                  m?.xattrs.encoded.map { Data($0) }])
            }
        }
        var linkCounts: [UInt64: Int64] = knownLinks ?? [:]
        if knownLinks == nil { try entries(self) { e in if let k = e.linkKey { linkCounts[k, default: 0] += 1 } } }
        var linkLeaders: [UInt64: Int64] = [:]

        try entries(self) { entry in
            let dir = entry.path.parent, name = entry.path.lastComponent
            try addDirAndAncestors(dir)
            var status = FileStatus.new
            let previous = try Row.fetchOne(current, arguments: [projectId, dir, name])
            if let previous {
                let previousBlob: DatabaseValue = previous["blob"], previousKind: String = previous["kind"]
                if previousBlob == entry.hash.databaseValue && previousKind == entry.kind.rawValue {
                    status = .duplicate; run.filesDuplicate += 1
                } else {
                    run.filesSuperseded += 1
                }
            } else {
                run.filesNew += 1
            }
            let group = entry.linkKey.flatMap { linkCounts[$0, default: 1] > 1 ? $0 : nil }
            try BlobReferences.add(db, entry.hash, size: entry.size, now: nowSeconds, blocks: entry.blocks, packed: entry.packed)
            try insertFile.execute(arguments: [projectId, runId, dir, name, entry.hash, entry.size,
                                               entry.mode, entry.mtimeNs, entry.uid, entry.gid, status.rawValue, nowSeconds,
                                               entry.kind.rawValue, entry.xattrs.encoded.map { Data($0) },
                                               group.flatMap { linkLeaders[$0] }, group.map { linkCounts[$0]! } ?? 1,
                                               entry.rdev, entry.atimeNs])
            let fileId = db.lastInsertedRowID
            if let group, linkLeaders[group] == nil {
                linkLeaders[group] = fileId
                try db.execute(sql: "UPDATE file SET link_group = ? WHERE id = ?", arguments: [fileId, fileId])
            }
            if let previous {
                let previousId: Int64 = previous["id"]
                try supersede.execute(arguments: [fileId, previousId])
            }
            run.bytes += entry.size
        }
        for d in directories { try addDirAndAncestors(d.relativePath) }

        let insertCleanup = try db.cachedStatement(sql: "INSERT INTO seal_cleanup (project_id, staged_path, ino) VALUES (?, ?, ?)")
        for item in cleanup {
            try insertCleanup.execute(arguments: [projectId, item.path, Int64(bitPattern: item.ino)])
        }
        try run.update(db)
        return run
    }
}
