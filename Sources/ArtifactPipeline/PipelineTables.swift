@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB

// The pipeline's own tables in the catalog: `job` (the durable queue), `memo`, `pipeline` and
// `pipeline_version`. Only this module reads and writes them (JobQueue, and the reads below
// that the tree shows through the core's `PipelineState`). Their schema was created by the
// catalog's shipped migrations v2 and v4, which are never edited.

/// One stage applied to one input of one run: the unit of the durable queue.
public struct JobRecord: Codable, FetchableRecord, MutablePersistableRecord, Sendable, Equatable {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
    public static let databaseTableName = "job"
    public var id: JobID?
    public var runId: RunID
    public var stage: String
    public var stageHash: String
    /// Memoization key: `stageHash` plus the input name, run or project when the command uses them.
    public var memoKey: String
    /// The input's path in the run's tree, e.g. `raw_source/a.txt` or `words/a.count`.
    public var inputPath: PathBytes
    /// The input's content (nil: the stage had no input and was skipped).
    public var inputBlob: BlobHash?
    public var status: JobStatus
    public var attempts: Int64
    public var maxAttempts: Int64
    public var timeout: Double
    public var notBefore: Double
    public var startedAt: Double?
    public var endedAt: Double?
    public var error: String?
    public var memoized: Bool

    public init(runId: RunID, stage: String, stageHash: String, memoKey: String? = nil, inputPath: PathBytes, inputBlob: BlobHash?,
                status: JobStatus, maxAttempts: Int64, timeout: Double) {
        self.runId = runId; self.stage = stage; self.stageHash = stageHash; self.memoKey = memoKey ?? stageHash; self.inputPath = inputPath
        self.inputBlob = inputBlob; self.status = status; self.attempts = 0; self.maxAttempts = maxAttempts
        self.timeout = timeout; self.notBefore = 0; self.memoized = false
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = JobID(inserted.rowID) }
}

extension JobRecord {
    /// What the run report shows of it.
    public var stageJob: StageJob {
        StageJob(stage: stage, inputPath: inputPath, status: status, attempts: attempts, startedAt: startedAt, endedAt: endedAt,
                 error: error, memoized: memoized)
    }
}

extension JobQueue: PipelineState {
    public func definitionSource(projectId: ProjectID) throws -> String? {
        try catalog.ownerRead { try String.fetchOne($0, sql: "SELECT source FROM pipeline WHERE project_id = ?", arguments: [projectId]) }
    }

    public func stages(runId: RunID) throws -> [String] {
        try catalog.ownerRead { try String.fetchAll($0, sql: "SELECT DISTINCT stage FROM job WHERE run_id = ? ORDER BY stage", arguments: [runId]) }
    }

    public func jobs(runId: RunID) throws -> [StageJob] {
        try jobRecords(runId: runId).map(\.stageJob)
    }

    /// A run's job rows, by stage then input path.
    public func jobRecords(runId: RunID) throws -> [JobRecord] {
        try catalog.ownerRead { try JobRecord.filter(Column("run_id") == runId).order(Column("stage"), Column("input_path")).fetchAll($0) }
    }
}
