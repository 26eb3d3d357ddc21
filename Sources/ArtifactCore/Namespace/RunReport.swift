import Foundation

/// The metadata of one run as `.run.json` and `artifactfs status --json` show it (SPEC §2).
public struct RunReport: Codable, Sendable {
    public struct FileCounts: Codable, Sendable {
        public var new: Int64
        public var superseded: Int64
        public var duplicate: Int64
        public var total: Int64
    }

    public var id: String
    public var project: String
    public var action: String
    public var status: String
    public var createdAt: String
    public var completedAt: String?
    public var files: FileCounts
    public var bytes: Int64
    public var uid: Int64
    /// SHA-256 of the pipeline definition that processes this run, if any.
    public var pipeline: String?
    /// Per-stage status and per-input detail; empty when the project has no pipeline.
    public var stages: [String: StageReport]
    public var errors: [String]

    enum CodingKeys: String, CodingKey {
        case id, project, action, status, files, bytes, uid, pipeline, stages, errors
        case createdAt = "created_at", completedAt = "completed_at"
    }

    public init(run: RunRecord, project: ProjectRecord) {
        id = run.name
        self.project = project.name
        action = run.action
        status = run.status.rawValue
        createdAt = Self.iso(run.createdAt)
        completedAt = run.completedAt.map(Self.iso)
        files = FileCounts(new: run.filesNew, superseded: run.filesSuperseded, duplicate: run.filesDuplicate,
                           total: run.filesNew + run.filesSuperseded + run.filesDuplicate)
        bytes = run.bytes
        uid = run.uid
        pipeline = run.pipelineHash.flatMap { $0.isEmpty ? nil : $0 }
        stages = [:]
        errors = run.error.map { [$0] } ?? []
    }

    /// Adds stage and input status from the run's jobs.
    public init(run: RunRecord, project: ProjectRecord, jobs: [StageJob]) {
        self.init(run: run, project: project)
        for (stage, group) in Dictionary(grouping: jobs, by: \.stage) {
            stages[stage] = StageReport(jobs: group)
            for job in group where job.status == .failed {
                errors.append("\(stage) \(job.inputPath.quoted): \(job.error ?? "failed")")
            }
        }
        errors.sort()
    }

    /// Writes every key, `null` included, so scripts can rely on the shape.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(project, forKey: .project)
        try c.encode(action, forKey: .action)
        try c.encode(status, forKey: .status)
        try c.encode(createdAt, forKey: .createdAt)
        if let completedAt { try c.encode(completedAt, forKey: .completedAt) } else { try c.encodeNil(forKey: .completedAt) }
        try c.encode(files, forKey: .files)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(uid, forKey: .uid)
        try c.encode(pipeline, forKey: .pipeline)
        try c.encode(stages, forKey: .stages)
        try c.encode(errors, forKey: .errors)
    }

    /// The report of a run, with its stages when `pipeline` is given.
    public static func load(catalog: Catalog, pipeline: (any PipelineState)?, runId: RunID) throws -> RunReport? {
        guard let run = try catalog.run(id: runId), let project = try catalog.project(id: run.projectId) else { return nil }
        return RunReport(run: run, project: project, jobs: try pipeline?.jobs(runId: runId) ?? [])
    }

    static func iso(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let ms = Int((seconds - seconds.rounded(.down)) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                      Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), ms)
    }

    public func jsonData() -> Data {
        (try? NameKeyedJSON.encode(self)) ?? Data([0x0A])
    }
}

/// One stage of one run: an overall status and one entry per input.
public struct StageReport: Codable, Sendable {
    public struct Input: Codable, Sendable {
        public var status: String
        public var attempts: Int64
        public var startedAt: String?
        public var endedAt: String?
        public var error: String?
        public var memoized: Bool
        /// The input's exact path bytes, base64, when they are not valid UTF-8 (its key then
        /// is the quoted form, `PathBytes.jsonKey`): the reversible form of `PathBytes.jsonFields`.
        public var inputBytes: String? = nil

        enum CodingKeys: String, CodingKey {
            case status, attempts, error, memoized
            case startedAt = "started_at", endedAt = "ended_at", inputBytes = "input_bytes"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(status, forKey: .status)
            try c.encode(attempts, forKey: .attempts)
            try c.encode(startedAt, forKey: .startedAt)
            try c.encode(endedAt, forKey: .endedAt)
            try c.encode(error, forKey: .error)
            try c.encode(memoized, forKey: .memoized)
            try c.encodeIfPresent(inputBytes, forKey: .inputBytes)
        }
    }

    /// pending, in_progress, completed, failed (some input failed) or skipped (no input matched).
    public var status: String
    /// By input path, byte for byte (`NameKeyed`).
    public var inputs: NameKeyed<Input>

    public init(jobs: [StageJob]) {
        var inputs = NameKeyed<Input>()
        for j in jobs where !j.inputPath.isEmpty {
            let fields = j.inputPath.jsonFields("input")
            inputs[j.inputPath] = Input(status: j.status.rawValue, attempts: j.attempts,
                                             startedAt: j.startedAt.map(RunReport.iso), endedAt: j.endedAt.map(RunReport.iso),
                                             error: j.error, memoized: j.memoized, inputBytes: fields["input_bytes"])
        }
        self.inputs = inputs
        let states = Set(jobs.map(\.status))
        if states.contains(.inProgress) { status = "in_progress" }
        else if states.contains(.pending) { status = states.count == 1 ? "pending" : "in_progress" }
        else if states.contains(.failed) { status = "failed" }
        else if states == [.skipped] { status = "skipped" }
        else { status = "completed" }
    }
}
