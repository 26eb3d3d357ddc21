import Foundation
import GRDB

/// The core's run, file and project tables as the pipeline reaches them, inside its own
/// transactions (`Catalog.ownerWrite`): which pipeline processes a run, reopening and closing
/// it, and the run's raw files a stage may take as inputs. The pipeline never writes these
/// tables itself.
@_spi(CatalogTables) public enum RunTable {
    /// The run, read in the caller's transaction.
    public static func run(_ db: Database, _ runId: RunID) throws -> RunRecord? {
        try RunRecord.fetchOne(db, key: runId)
    }

    /// Runs not finished yet (a restart resumes their stages).
    public static func inProgress(_ db: Database) throws -> [RunRecord] {
        try RunRecord.filter(Column("status") == RunStatus.inProgress.rawValue).fetchAll(db)
    }

    /// Hands the run to the pipeline definition `hash` ("" when the project has none).
    public static func setPipeline(_ db: Database, _ runId: RunID, hash: String) throws {
        try db.execute(sql: "UPDATE run SET pipeline_hash = ? WHERE id = ?", arguments: [hash, runId])
    }

    /// Processes the run again with definition `hash`: in progress, not completed.
    public static func reopen(_ db: Database, _ runId: RunID, pipeline hash: String) throws {
        try db.execute(sql: "UPDATE run SET pipeline_hash = ?, status = ?, completed_at = NULL WHERE id = ?",
                       arguments: [hash, RunStatus.inProgress.rawValue, runId])
    }

    /// Every stage finished: completed, or completed with errors when some input failed or the
    /// run was registered with an error (an import that could not read some files);
    /// `now` in seconds since 1970.
    public static func close(_ db: Database, _ runId: RunID, failed: Bool, now: Double = Date().timeIntervalSince1970) throws {
        try db.execute(sql: "UPDATE run SET status = CASE WHEN ? OR error IS NOT NULL THEN ? ELSE ? END, completed_at = ? WHERE id = ?",
                       arguments: [failed, RunStatus.completedWithErrors.rawValue, RunStatus.completed.rawValue, now, runId])
    }

    /// The run's regular files (paths below raw_source/) and their blobs, by path.
    public static func rawFiles(_ db: Database, _ runId: RunID) throws -> [(path: PathBytes, blob: BlobHash)] {
        try Row.fetchAll(db, sql: "SELECT dir, name, blob FROM file WHERE run_id = ? AND kind = ?",
                         arguments: [runId, FileKind.regular.rawValue])
            .map { row -> (path: PathBytes, blob: BlobHash) in
                let dir: PathBytes = row["dir"]
                return (dir.appending(row["name"] as PathBytes), try row.decode(BlobHash.self, forColumn: "blob"))
            }
            .sorted { $0.path < $1.path }
    }

    /// The name of a project (what `{project}` in a stage command becomes).
    public static func projectName(_ db: Database, _ projectId: ProjectID) throws -> String? {
        try String.fetchOne(db, sql: "SELECT name FROM project WHERE id = ?", arguments: [projectId])
    }
}

/// A run's stage outputs (`output`, `output_dir`): the core shows them as the run's
/// `<stage>/` folders; the pipeline records and removes them through here, inside its own
/// transactions, and never writes these tables itself.
@_spi(CatalogTables) public enum StageOutputTable {
    /// One file a stage wrote: its path inside the stage's folder, its blob (already durable
    /// in the store), size in bytes and mode.
    public struct File: Sendable {
        public var path: PathBytes
        public var hash: BlobHash
        public var size: Int64
        public var mode: Int64
        /// Block checksums read while hashing it (none for a memoized output already stored).
        public var blocks: BlockSums?
        public init(path: PathBytes, hash: BlobHash, size: Int64, mode: Int64, blocks: BlockSums? = nil) {
            self.path = path; self.hash = hash; self.size = size; self.mode = mode; self.blocks = blocks
        }
    }

    /// Records what one job wrote for input `inputPath`, the folders above each file, and one
    /// blob reference per file; `now` in seconds since 1970.
    /// - Throws: `.alreadyExists` when another input of the stage already wrote one of the paths.
    public static func record(_ db: Database, runId: RunID, stage: String, files: [File], inputPath: PathBytes,
                              jobId: JobID?, now: Double) throws {
        for f in files {
            if let other = try PathBytes.fetchOne(db, sql: "SELECT input_path FROM output WHERE run_id = ? AND stage = ? AND path = ?",
                                                  arguments: [runId, stage, f.path]) {
                throw ArtifactError(.alreadyExists, "output \(f.path.quoted) was already written for input \(other.quoted)")
            }
        }
        for f in files {
            try BlobReferences.add(db, f.hash, size: f.size, now: now, blocks: f.blocks)
            var record = OutputRecord(id: nil, runId: runId, stage: stage, path: f.path, dir: f.path.parent,
                                      name: f.path.lastComponent, blob: f.hash, size: f.size, mode: f.mode,
                                      mtimeNs: Int64(now * 1e9), inputPath: inputPath, jobId: jobId)
            try record.insert(db)
            for d in f.path.parent.folderAndAncestors {
                try db.execute(sql: "INSERT OR IGNORE INTO output_dir (run_id, stage, parent, name) VALUES (?, ?, ?, ?)",
                               arguments: [runId, stage, d.parent, d.lastComponent])
            }
        }
    }

    /// Removes every output of one stage of a run and releases their blob references.
    public static func remove(_ db: Database, runId: RunID, stage: String) throws {
        let released = try Row.fetchAll(db, sql: "SELECT blob FROM output WHERE run_id = ? AND stage = ?", arguments: [runId, stage])
        try BlobReferences.remove(db, try released.map { try $0.decode(BlobHash.self, forColumn: "blob") })
        try db.execute(sql: "DELETE FROM output WHERE run_id = ? AND stage = ?", arguments: [runId, stage])
        try db.execute(sql: "DELETE FROM output_dir WHERE run_id = ? AND stage = ?", arguments: [runId, stage])
    }

    /// One stage's files of a run (paths inside the stage's folder) and their blobs, by path.
    public static func files(_ db: Database, runId: RunID, stage: String) throws -> [(path: PathBytes, blob: BlobHash)] {
        try Row.fetchAll(db, sql: "SELECT path, blob FROM output WHERE run_id = ? AND stage = ? ORDER BY path", arguments: [runId, stage])
            .map { ($0["path"], try $0.decode(BlobHash.self, forColumn: "blob")) }
    }
}
