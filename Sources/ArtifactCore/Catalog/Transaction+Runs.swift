import Foundation
import GRDB

/// A run's files, handed to `insertRun` one at a time inside its transaction.
typealias StagedEntryFeed = (CatalogTransaction, (StagedEntry) throws -> Void) throws -> Void

/// Where `insertRun` takes a run's files from.
enum RunFiles {
    /// Handed over one at a time (a seal).
    case entries(StagedEntryFeed)
    /// The rows of an import's journal from attempt `pass` (folders aside), which SQLite
    /// copies itself: no row of a million-file import passes through Swift one by one.
    case importJournal(ImportKey, pass: Int64)
}

/// A run's rows (`run`, `file`, `dir`, `seal_cleanup`), written by `RunRegistrar`.
///
/// The files are first put into the connection's temp table `run_entry` (one row per file,
/// in order), and every row of the run is then written by a few statements over it: a file
/// row each (new, or a duplicate of the current file at its path), the current files they
/// replace marked superseded, one reference per file counted on its blob. Set-wise rather
/// than file by file: a 100,000-file import registered in about a third of the time
/// (BENCHMARKS.md). Memory: the run's folder paths and hard-linked files, not its files.
extension CatalogTransaction {
    /// Inserts a run with the next chronological id of its project, all of `files` (each
    /// new, a duplicate of the current file at its path, or superseding it), their folders and
    /// their ancestors, and `cleanup` rows; counts one reference per file's blob. `error`: why
    /// some files are missing from the run (it then ends `completed_with_errors`). Files with
    /// the same link key are hard links of one file: they share a link group.
    func insertRun(projectId: ProjectID, files: RunFiles, directories: [StagedDirectory],
                   uid: Int64, action: String, completed: Bool, error: String? = nil,
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

        try stageRunEntries(files)
        defer { try? db.execute(sql: "DELETE FROM temp.run_entry") }

        // One file row each; a duplicate when the current file at its path has the same
        // content and kind. A hard-linked file's rows count their names in `nlink`.
        try db.execute(sql: RunRegistrationSQL.fileRows, arguments: [projectId, runId, nowSeconds])

        // Hard links: each group led by its first file row.
        var leaders: [[Int64]: Int64] = [:]
        for row in try Row.fetchAll(db, sql: RunRegistrationSQL.linkedFiles, arguments: [runId]) {
            let fileId: Int64 = row[0], key: [Int64] = [row[1], row[2]]
            let leader = leaders[key] ?? fileId
            leaders[key] = leader
            try db.execute(sql: "UPDATE file SET link_group = ? WHERE id = ?", arguments: [leader, fileId])
        }

        // The current files these replace.
        try db.execute(sql: RunRegistrationSQL.supersede, arguments: [projectId, runId])
        let replaced = db.changesCount

        try BlobReferences.addRunEntries(db, now: nowSeconds)

        let counts = try Row.fetchOne(db, sql: """
            SELECT COUNT(*), COALESCE(SUM(status = 'duplicate'), 0), COALESCE(SUM(size), 0) FROM file WHERE run_id = ?
            """, arguments: [runId])!
        let total: Int64 = counts[0], duplicates: Int64 = counts[1]
        run.filesDuplicate = duplicates
        run.filesSuperseded = Int64(replaced) - duplicates
        run.filesNew = total - Int64(replaced)
        run.bytes = counts[2]

        // Folders with what the staging area saw of them; ancestors it did not list get none.
        let insertDir = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO dir (project_id, run_id, parent, name, mode, uid, gid, mtime_ns, xattrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
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
        for dir in try PathBytes.fetchAll(db, sql: "SELECT DISTINCT dir FROM temp.run_entry ORDER BY dir") { try addDirAndAncestors(dir) }
        for d in directories { try addDirAndAncestors(d.relativePath) }

        let insertCleanup = try db.cachedStatement(sql: "INSERT INTO seal_cleanup (project_id, staged_path, ino) VALUES (?, ?, ?)")
        for item in cleanup {
            try insertCleanup.execute(arguments: [projectId, item.path, Int64(bitPattern: item.ino)])
        }
        try run.update(db)
        return run
    }

    /// Fills the temp table `run_entry` with the run's files, in order: (dir, name, kind, blob,
    /// size, mode, mtime_ns, uid, gid, xattrs, link_ino, link_dev, rdev, atime_ns, blocks, pack,
    /// pack_offset). Files with the same (link_ino, link_dev) are names of one file: a feed's
    /// link key and 0, or a journal row's inode and device.
    /// `blocks` is set only where a new blob row keeps it (`BlobReferences.keptBlocks`).
    private func stageRunEntries(_ files: RunFiles) throws {
        try db.execute(sql: """
            CREATE TEMP TABLE IF NOT EXISTS run_entry (
                dir BLOB NOT NULL, name BLOB NOT NULL, kind TEXT NOT NULL, blob BLOB NOT NULL, size INTEGER NOT NULL,
                mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, xattrs BLOB,
                link_ino INTEGER, link_dev INTEGER, rdev INTEGER NOT NULL, atime_ns INTEGER, blocks BLOB, pack INTEGER, pack_offset INTEGER
            );
            DELETE FROM temp.run_entry;
            """)
        switch files {
        case .entries(let feed):
            let insert = try db.cachedStatement(sql: """
                INSERT INTO temp.run_entry (dir, name, kind, blob, size, mode, mtime_ns, uid, gid, xattrs, link_ino, link_dev, rdev, atime_ns,
                                            blocks, pack, pack_offset)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            try feed(self) { e in
                try insert.execute(arguments: [e.path.parent, e.path.lastComponent, e.kind.rawValue, e.hash, e.size, e.mode, e.mtimeNs,
                                               e.uid, e.gid, e.xattrs.encoded.map { Data($0) }, e.linkKey.map { Int64(bitPattern: $0) }, e.linkKey.map { _ in 0 },
                                               e.rdev, e.atimeNs, BlobReferences.keptBlocks(e.blocks, size: e.size),
                                               e.packed?.pack, e.packed?.offset])
            }
        case .importJournal(let key, let pass):
            try db.execute(sql: """
                INSERT INTO temp.run_entry (dir, name, kind, blob, size, mode, mtime_ns, uid, gid, xattrs, link_ino, link_dev, rdev, atime_ns,
                                            blocks, pack, pack_offset)
                SELECT afs_dir(j.path), afs_name(j.path), j.kind, COALESCE(j.blob, ?4), j.size, j.mode, j.mtime_ns, j.uid, j.gid, j.xattrs,
                       CASE WHEN j.kind = 'file' AND j.nlink > 1 THEN j.ino END, CASE WHEN j.kind = 'file' AND j.nlink > 1 THEN j.dev END,
                       j.rdev, j.atime_ns, j.blocks, j.pack, j.pack_offset
                FROM import_journal j
                WHERE j.target = ?1 AND j.source = ?2 AND j.kind != 'dir' AND j.pass = ?3
                ORDER BY j.path
                """, arguments: [key.target, key.source, pass, ImportJournalRow.emptyContent])
        }
    }
}

/// The statements `insertRun` registers a run's files with, over its temp table `run_entry`
/// (SPI for the test that checks their query plans).
@_spi(CatalogTables) public enum RunRegistrationSQL {
    /// The run's file rows from `run_entry` (?1 project, ?2 run, ?3 creation time). The current
    /// file at each path is looked up by its path (`file_current`).
    public static let fileRows = """
        INSERT INTO file (project_id, run_id, dir, name, blob, size, mode, mtime_ns, uid, gid, status, created_at,
                          kind, xattrs, link_group, nlink, rdev, atime_ns)
        SELECT ?1, ?2, e.dir, e.name, e.blob, e.size, e.mode, e.mtime_ns, e.uid, e.gid,
               CASE WHEN EXISTS (SELECT 1 FROM file c WHERE c.project_id = ?1 AND c.dir = e.dir AND c.name = e.name
                                   AND c.superseded_by IS NULL AND c.blob = e.blob AND c.kind = e.kind)
                    THEN 'duplicate' ELSE 'new' END,
               ?3, e.kind, e.xattrs, NULL, COALESCE(l.n, 1), e.rdev, e.atime_ns
        FROM temp.run_entry e
        LEFT JOIN (SELECT link_ino, link_dev, COUNT(*) AS n FROM temp.run_entry WHERE link_ino IS NOT NULL
                   GROUP BY link_ino, link_dev HAVING n > 1) l
               ON l.link_ino = e.link_ino AND l.link_dev = e.link_dev
        ORDER BY e.rowid
        """

    /// The run's hard-linked file rows (?1 run) with their link key, in row order.
    public static let linkedFiles = """
        SELECT f.id, e.link_ino, e.link_dev FROM temp.run_entry e JOIN file f ON f.run_id = ?1 AND f.dir = e.dir AND f.name = e.name
        WHERE e.link_ino IS NOT NULL AND f.nlink > 1 ORDER BY f.id
        """

    /// Marks the current files that run ?2 replaces in project ?1 superseded. Driven by the
    /// run's rows (`file_by_run`; CROSS JOIN keeps that order), each current file found by its
    /// path: a small run into a big project costs its own size, not the project's.
    public static let supersede = """
        UPDATE file SET status = 'superseded',
            superseded_by = (SELECT n.id FROM file n WHERE n.run_id = ?2 AND n.dir = file.dir AND n.name = file.name)
        WHERE id IN (SELECT c.id FROM file n CROSS JOIN file c
                     ON c.project_id = ?1 AND c.dir = n.dir AND c.name = n.name AND c.superseded_by IS NULL AND c.run_id != ?2
                     WHERE n.run_id = ?2)
        """
}
