import Foundation
import GRDB

/// The catalog's read and write helpers, and the read queries the namespace and the CLI make.
extension Catalog {
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch let e as ArtifactError { throw e } catch let e as RowDecodingError {
            throw ArtifactError(.corrupt, "a catalog row does not decode: \(e)", cause: e)
        } catch {
            throw ArtifactError(.io, "catalog read failed: \(error)", cause: error)
        }
    }

    /// One durable write transaction (synchronous = FULL: on disk when it returns).
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try mappingWriteErrors { try pool.write(body) }
    }

    /// One write transaction that does not wait for the disk: for staging in working trees,
    /// which, like unsynced writes to any filesystem, may lose its last moments on power loss
    /// (a kill -9 loses nothing; WAL keeps the catalog consistent either way). The next durable
    /// write syncs the log, and with it everything staged before.
    func writeStaging<T>(_ body: (Database) throws -> T) throws -> T {
        try mappingWriteErrors {
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// `what`: the change that did not happen, for the message ("the run was not registered").
    private func mappingWriteErrors<T>(_ what: String? = nil, _ body: () throws -> T) throws -> T {
        let outcome = what.map { "; \($0)" } ?? ""
        do { return try body() } catch let e as ArtifactError { throw e } catch let e as RowDecodingError {
            throw ArtifactError(.corrupt, "a catalog row does not decode\(outcome): \(e)", cause: e)
        } catch let e as DatabaseError where e.resultCode == .SQLITE_FULL {
            throw ArtifactError(.noSpace, "catalog is out of disk space\(outcome)", cause: e)
        } catch {
            throw ArtifactError(.io, "catalog write failed\(outcome): \(error)", cause: error)
        }
    }

    /// One read for a module that owns tables in the catalog (the pipeline), and tests.
    @_spi(CatalogTables) public func ownerRead<T>(_ body: (Database) throws -> T) throws -> T { try read(body) }

    /// One durable write transaction for a module that owns tables in the catalog (the
    /// pipeline), and tests. `PipelineDefinitionError`s and other non-catalog errors pass
    /// through as they are.
    @_spi(CatalogTables) public func ownerWrite<T>(_ body: (Database) throws -> T) throws -> T { try write(body) }

    /// `write`, with the change that did not happen named in its errors.
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try mappingWriteErrors(what) { try pool.write(body) }
    }

    // MARK: seal cleanup

    /// Staged files (path, inode) that committed runs hold and a crash left in incoming/.
    func sealCleanup() throws -> [(path: PathBytes, ino: UInt64)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT staged_path, ino FROM seal_cleanup").map { row in
                (row["staged_path"], UInt64(bitPattern: row["ino"]))
            }
        }
    }

    /// Forgets the staged files of one project's seal (nil: of every project) once removed.
    func clearSealCleanup(projectId: ProjectID?) throws {
        try write { db in
            if let projectId {
                try db.execute(sql: "DELETE FROM seal_cleanup WHERE project_id = ?", arguments: [projectId])
            } else {
                try db.execute(sql: "DELETE FROM seal_cleanup")
            }
        }
    }

    public func projects() throws -> [ProjectRecord] {
        try read { try ProjectRecord.order(Column("name")).fetchAll($0) }
    }

    public func project(named name: String) throws -> ProjectRecord? {
        try read { try ProjectRecord.filter(Column("name") == name).fetchOne($0) }
    }

    public func project(id: ProjectID) throws -> ProjectRecord? {
        try read { try ProjectRecord.fetchOne($0, key: id) }
    }

    /// Creates a project after checking its name (SPEC §7); user `uid` is its admin.
    public func createProject(name: String, uid: Int64) throws -> ProjectRecord {
        try NameRules.validate(name, kind: "project")
        return try write("the project was not created") { db in
            if try ProjectRecord.filter(Column("name") == name).fetchOne(db) != nil {
                throw ArtifactError(.alreadyExists, "project already exists", path: name)
            }
            var p = ProjectRecord(id: nil, name: name, ownerUid: uid, createdAt: Date().timeIntervalSince1970)
            try p.insert(db)
            // Its creator administers it (SPEC §6).
            try Self.setGrant(db, .admin, to: .user(uid_t(truncatingIfNeeded: uid)), on: .project(p.id!))
            return p
        }
    }

    public func runs(projectId: ProjectID) throws -> [RunRecord] {
        try read {
            try RunRecord.filter(Column("project_id") == projectId)
                .order(Column("timestamp"), Column("seq")).fetchAll($0)
        }
    }

    /// A project's newest run (nil: none yet): one row by the `run_by_project_time` index, so
    /// `user.artifactfs.last_run` costs the same at 10 runs or 10,000.
    public func lastRun(projectId: ProjectID) throws -> RunRecord? {
        try read {
            try RunRecord.filter(Column("project_id") == projectId)
                .order(Column("timestamp").desc, Column("seq").desc).limit(1).fetchOne($0)
        }
    }

    public func run(projectId: ProjectID, name: String) throws -> RunRecord? {
        try read {
            try RunRecord.filter(Column("project_id") == projectId && Column("name") == name).fetchOne($0)
        }
    }

    public func run(id: RunID) throws -> RunRecord? {
        try read { try RunRecord.fetchOne($0, key: id) }
    }

    public func file(id: FileID) throws -> FileRecord? {
        try read { try FileRecord.fetchOne($0, key: id) }
    }

    public func files(runId: RunID) throws -> [FileRecord] {
        try read { try FileRecord.filter(Column("run_id") == runId).fetchAll($0) }.sorted { $0.path < $1.path }
    }

    // MARK: runs/<run>/raw_source/

    public func runSubdirectories(runId: RunID, parent: PathBytes) throws -> [FolderRecord] {
        try read {
            try FolderRecord.fetchAll($0, sql: "SELECT name, mode, uid, gid, mtime_ns, xattrs FROM dir WHERE run_id = ? AND parent = ? ORDER BY name",
                                      arguments: [runId, parent])
        }
    }

    /// How many folders folder `parent` of a run holds (its link count is 2 + that).
    public func runSubdirectoryCount(runId: RunID, parent: PathBytes) throws -> Int {
        try read {
            let statement = try $0.cachedStatement(sql: "SELECT COUNT(*) FROM dir WHERE run_id = ? AND parent = ?")
            return try Int.fetchOne(statement, arguments: [runId, parent]) ?? 0
        }
    }

    /// A folder of a run with its metadata, or (no run) the newest run's for latest/.
    public func folder(projectId: ProjectID, runId: RunID?, path: PathBytes) throws -> FolderRecord? {
        try read {
            if let runId {
                return try FolderRecord.fetchOne($0, sql: """
                    SELECT name, mode, uid, gid, mtime_ns, xattrs FROM dir WHERE run_id = ? AND parent = ? AND name = ?
                    """, arguments: [runId, path.parent, path.lastComponent])
            }
            return try FolderRecord.fetchOne($0, sql: """
                SELECT name, mode, uid, gid, mtime_ns, xattrs FROM dir WHERE project_id = ? AND parent = ? AND name = ?
                ORDER BY run_id DESC LIMIT 1
                """, arguments: [projectId, path.parent, path.lastComponent])
        }
    }

    public func runFiles(runId: RunID, dir: PathBytes) throws -> [FileRecord] {
        try read {
            try FileRecord.filter(Column("run_id") == runId && Column("dir") == dir).order(Column("name")).fetchAll($0)
        }
    }

    public func runHasDirectory(runId: RunID, parent: PathBytes, name: PathBytes) throws -> Bool {
        try read {
            try Bool.fetchOne($0, sql: "SELECT 1 FROM dir WHERE run_id = ? AND parent = ? AND name = ?",
                              arguments: [runId, parent, name]) ?? false
        }
    }

    public func runFile(runId: RunID, dir: PathBytes, name: PathBytes) throws -> FileRecord? {
        try read {
            try FileRecord.filter(Column("run_id") == runId && Column("dir") == dir && Column("name") == name).fetchOne($0)
        }
    }

    // MARK: latest/ and history/ (every path ever registered has exactly one current version)

    /// The folders of latest/ in `parent`, each with the metadata its newest run recorded.
    public func latestSubdirectories(projectId: ProjectID, parent: PathBytes) throws -> [FolderRecord] {
        try read {
            try FolderRecord.fetchAll($0, sql: """
                SELECT name, mode, uid, gid, mtime_ns, xattrs, MAX(run_id) FROM dir WHERE project_id = ? AND parent = ?
                GROUP BY name ORDER BY name
                """, arguments: [projectId, parent])
        }
    }

    public func latestFiles(projectId: ProjectID, dir: PathBytes) throws -> [FileRecord] {
        try read {
            try FileRecord.fetchAll($0, sql: """
                SELECT * FROM file WHERE project_id = ? AND dir = ? AND superseded_by IS NULL ORDER BY name
                """, arguments: [projectId, dir])
        }
    }

    public func latestHasDirectory(projectId: ProjectID, parent: PathBytes, name: PathBytes) throws -> Bool {
        try read {
            try Bool.fetchOne($0, sql: "SELECT 1 FROM dir WHERE project_id = ? AND parent = ? AND name = ? LIMIT 1",
                              arguments: [projectId, parent, name]) ?? false
        }
    }

    public func latestFile(projectId: ProjectID, dir: PathBytes, name: PathBytes) throws -> FileRecord? {
        try read {
            try FileRecord.fetchOne($0, sql: """
                SELECT * FROM file WHERE project_id = ? AND dir = ? AND name = ? AND superseded_by IS NULL
                """, arguments: [projectId, dir, name])
        }
    }

    /// Every version of one path, oldest first, with the id of the run that registered it.
    public func history(projectId: ProjectID, path: PathBytes) throws -> [(run: String, file: FileRecord)] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT file.*, run.name AS run_name FROM file JOIN run ON run.id = file.run_id
                WHERE file.project_id = ? AND file.dir = ? AND file.name = ? ORDER BY run.timestamp, run.seq
                """, arguments: [projectId, path.parent, path.lastComponent])
            return try rows.map { (run: $0["run_name"], file: try FileRecord(row: $0)) }
        }
    }

    public func historyVersion(projectId: ProjectID, path: PathBytes, runName: String) throws -> FileRecord? {
        try read {
            try FileRecord.fetchOne($0, sql: """
                SELECT file.* FROM file JOIN run ON run.id = file.run_id
                WHERE file.project_id = ? AND file.dir = ? AND file.name = ? AND run.name = ?
                """, arguments: [projectId, path.parent, path.lastComponent, runName])
        }
    }

    // MARK: blobs

    /// Every blob row whose name is a SHA-256 (see `malformedBlobNames` for the others).
    public func blobs() throws -> [BlobRecord] {
        try read { try BlobRecord.fetchAll($0, sql: "SELECT * FROM blob WHERE \(BlobHash.wellFormed("hash")) ORDER BY hash") }
    }

    /// The names of blob rows that are not a SHA-256 (damage `verify` reports), sorted.
    public func malformedBlobNames() throws -> [String] {
        try read {
            try DatabaseValue.fetchAll($0, sql: "SELECT hash FROM blob WHERE NOT \(BlobHash.wellFormed("hash"))")
        }.map(BlobHash.catalogName).sorted()
    }

    public func blob(_ hash: BlobHash) throws -> BlobRecord? {
        try read { try BlobRecord.fetchOne($0, key: hash) }
    }

    /// References per blob, counted from the rows that hold them, by the name as stored
    /// (`BlobHash.catalogName`: the hex of a well-formed name; a damaged row may hold anything).
    public func countedReferences() throws -> [String: Int64] {
        try read { db in
            var out: [String: Int64] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT blob, COUNT(*) AS n FROM (
                    SELECT blob FROM file UNION ALL SELECT blob FROM output
                    UNION ALL SELECT blob FROM entry WHERE kind IN ('file', 'symlink') AND blob IS NOT NULL
                ) GROUP BY blob
                """)
            while let row = try rows.next() { out[BlobHash.catalogName(row["blob"])] = row["n"] }
            return out
        }
    }

    public func runName(id: RunID) throws -> String? {
        try read { try String.fetchOne($0, sql: "SELECT name FROM run WHERE id = ?", arguments: [id]) }
    }

    /// The run that registered the file that superseded `file`, if any.
    public func supersedingRunName(of file: FileRecord) throws -> String? {
        guard let next = file.supersededBy else { return nil }
        return try read {
            try String.fetchOne($0, sql: "SELECT run.name FROM file JOIN run ON run.id = file.run_id WHERE file.id = ?",
                                arguments: [next])
        }
    }
}

/// A kind of row that points at nothing, as `verify` reports it.
public enum DanglingRows: String, CaseIterable, Sendable {
    /// A file row superseded by a row that does not exist.
    case supersededBy = "dangling_superseded_by"
    /// A branch or tag naming a version that is not of its dataset.
    case ref = "dangling_ref"
    /// A version whose parent is not of its dataset or not one level up.
    case parent = "dangling_parent"
    /// A committed file or symlink with no blob.
    case fileEntryWithoutBlob = "file_entry_without_blob"
    /// A working-tree row naming a blob the catalog does not list.
    case worktreeBlobUnknown = "worktree_blob_unknown"

    /// The report's text for `n` such rows.
    public func detail(_ n: Int) -> String {
        self == .supersededBy ? "\(n) rows are superseded by a row that does not exist" : "\(n) dataset rows fail this check"
    }

    var countSQL: String {
        switch self {
        case .supersededBy:
            "SELECT COUNT(*) FROM file WHERE superseded_by IS NOT NULL AND superseded_by NOT IN (SELECT id FROM file)"
        case .ref:
            "SELECT COUNT(*) FROM ref r WHERE r.version_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version v WHERE v.id = r.version_id AND v.dataset_id = r.dataset_id)"
        case .parent:
            "SELECT COUNT(*) FROM version c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version p WHERE p.id = c.parent_id AND p.dataset_id = c.dataset_id AND p.depth = c.depth - 1)"
        case .fileEntryWithoutBlob:
            "SELECT COUNT(*) FROM entry WHERE kind IN ('file', 'symlink') AND blob IS NULL"
        case .worktreeBlobUnknown:
            "SELECT COUNT(*) FROM worktree_change w WHERE w.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blob b WHERE b.hash = w.blob)"
        }
    }
}

extension Catalog {
    /// How many rows of each dangling kind the catalog holds, in one snapshot.
    public func danglingRows() throws -> [(DanglingRows, Int)] {
        try read { db in try DanglingRows.allCases.map { ($0, try Int.fetchOne(db, sql: $0.countSQL) ?? 0) } }
    }
}
