/// What the tree shows of a project's pipeline and a run's stages: `pipeline.toml`, the stage
/// folders of a run and the stage part of `.run.json`. The pipeline module owns those tables
/// (definitions, jobs, memo) and answers through this; the executable wires it in, as it
/// does `RunSealedSink`. Without one, projects show no pipeline and runs no stages.
public protocol PipelineState: AnyObject, Sendable {
    /// The pipeline definition (TOML text) of a project, nil when it has none.
    func definitionSource(projectId: ProjectID) throws -> String?
    /// The stages that have jobs for a run, by name.
    func stages(runId: RunID) throws -> [String]
    /// A run's jobs, by stage then input path.
    func jobs(runId: RunID) throws -> [StageJob]
}

/// State of one stage job (SPEC §4).
public enum JobStatus: String, Codable, Sendable {
    case pending, inProgress = "in_progress", completed, failed, skipped
}

/// One stage applied to one input of a run, as the run report shows it.
public struct StageJob: Sendable, Equatable {
    public var stage: String
    /// The input's path in the run's tree, e.g. `raw_source/a.txt`; empty for a skipped stage.
    public var inputPath: PathBytes
    public var status: JobStatus
    public var attempts: Int64
    /// Seconds since 1970.
    public var startedAt: Double?
    public var endedAt: Double?
    public var error: String?
    public var memoized: Bool

    public init(stage: String, inputPath: PathBytes, status: JobStatus, attempts: Int64, startedAt: Double?, endedAt: Double?,
                error: String?, memoized: Bool) {
        self.stage = stage; self.inputPath = inputPath; self.status = status; self.attempts = attempts
        self.startedAt = startedAt; self.endedAt = endedAt; self.error = error; self.memoized = memoized
    }
}

/// A job's row id (the pipeline's `job` table; stage outputs name the job that wrote them).
public typealias JobID = RowID<StageJob>
