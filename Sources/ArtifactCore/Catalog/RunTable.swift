import Foundation
import GRDB

/// The core's run and file tables as the pipeline reaches them, inside its own transactions
/// (`Catalog.ownerWrite`): which pipeline processes a run, reopening and closing it, and the
/// run's raw files a stage may take as inputs. The pipeline never writes these tables itself.
@_spi(CatalogTables) public enum RunTable {
    /// The run, read in the caller's transaction.
    public static func run(_ db: Database, _ runId: Int64) throws -> RunRecord? {
        try RunRecord.fetchOne(db, key: runId)
    }

    /// Runs not finished yet (a restart resumes their stages).
    public static func inProgress(_ db: Database) throws -> [RunRecord] {
        try RunRecord.filter(Column("status") == RunStatus.inProgress.rawValue).fetchAll(db)
    }

    /// Hands the run to the pipeline definition `hash` ("" when the project has none).
    public static func setPipeline(_ db: Database, _ runId: Int64, hash: String) throws {
        try db.execute(sql: "UPDATE run SET pipeline_hash = ? WHERE id = ?", arguments: [hash, runId])
    }

    /// Processes the run again with definition `hash`: in progress, not completed.
    public static func reopen(_ db: Database, _ runId: Int64, pipeline hash: String) throws {
        try db.execute(sql: "UPDATE run SET pipeline_hash = ?, status = ?, completed_at = NULL WHERE id = ?",
                       arguments: [hash, RunStatus.inProgress.rawValue, runId])
    }

    /// Every stage finished: completed, or completed with errors when some input failed;
    /// `now` in seconds since 1970.
    public static func close(_ db: Database, _ runId: Int64, failed: Bool, now: Double = Date().timeIntervalSince1970) throws {
        try db.execute(sql: "UPDATE run SET status = ?, completed_at = ? WHERE id = ?",
                       arguments: [(failed ? RunStatus.completedWithErrors : .completed).rawValue, now, runId])
    }

    /// The run's regular files (paths below raw_source/) and their blobs, by path.
    public static func rawFiles(_ db: Database, _ runId: Int64) throws -> [(path: PathBytes, blob: String)] {
        try Row.fetchAll(db, sql: "SELECT path, blob FROM file WHERE run_id = ? AND kind = ? ORDER BY path",
                         arguments: [runId, FileKind.regular.rawValue])
            .map { ($0["path"], $0["blob"]) }
    }
}
