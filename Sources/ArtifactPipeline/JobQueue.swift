@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB

/// The durable stage queue in the catalog: setting pipelines, creating a run's jobs stage by
/// stage in dependency order, claiming, finishing and retrying jobs, and closing runs.
/// Every state change is one transaction, so a restart resumes exactly where it stopped.
public final class JobQueue: Sendable {
    public let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try catalog.ownerWrite { db in
            do { return try body(db) } catch let e as PipelineDefinitionError { throw ArtifactError(.invalidArgument, e.description) }
        }
    }

    // MARK: definitions

    /// Validates and stores a project's pipeline; the old one stays if this throws.
    @discardableResult
    public func setPipeline(projectId: ProjectID, source: String) throws -> PipelineDefinition {
        let definition = try PipelineDefinition.parse(source)
        let now = Date().timeIntervalSince1970
        try write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO pipeline_version (hash, source, created_at) VALUES (?, ?, ?)",
                           arguments: [definition.hash, source, now])
            try db.execute(sql: """
                INSERT INTO pipeline (project_id, source, hash, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(project_id) DO UPDATE SET source = excluded.source, hash = excluded.hash, updated_at = excluded.updated_at
                """, arguments: [projectId, source, definition.hash, now])
        }
        return definition
    }

    static func definition(_ db: Database, hash: String) throws -> PipelineDefinition? {
        guard let source = try String.fetchOne(db, sql: "SELECT source FROM pipeline_version WHERE hash = ?", arguments: [hash]) else { return nil }
        return try PipelineDefinition.parse(source)
    }

    // MARK: runs

    /// Hands a sealed run to the project's current pipeline (or completes it when there is
    /// none) and creates the jobs that can start. Idempotent.
    public func start(runId: RunID) throws {
        try write { db in
            guard let run = try RunTable.run(db, runId), run.pipelineHash == nil else { return }
            let hash = try String.fetchOne(db, sql: "SELECT hash FROM pipeline WHERE project_id = ?", arguments: [run.projectId])
            try RunTable.setPipeline(db, runId, hash: hash ?? "")
            try Self.advance(db, runId: runId)
        }
    }

    /// Points an old run at the current pipeline and processes it again: all stages, or
    /// `stage` and the stages that depend on it. Its earlier outputs of those stages go.
    public func rerun(runId: RunID, stage: String?) throws {
        try write { db in
            guard let run = try RunTable.run(db, runId) else { throw ArtifactError(.notFound, "no such run") }
            guard let hash = try String.fetchOne(db, sql: "SELECT hash FROM pipeline WHERE project_id = ?", arguments: [run.projectId]),
                  let definition = try Self.definition(db, hash: hash) else {
                throw ArtifactError(.notFound, "the project has no pipeline (artifactfs pipeline set PROJECT FILE)")
            }
            var affected = Set(definition.stages.map(\.name))
            if let stage {
                guard definition.stage(named: stage) != nil else { throw ArtifactError(.notFound, "the project's pipeline has no such stage", path: stage) }
                affected = [stage]
                var grew = true
                while grew {
                    grew = false
                    for s in definition.stages where !affected.contains(s.name) && s.dependsOn.contains(where: affected.contains) {
                        affected.insert(s.name); grew = true
                    }
                }
            }
            // Stages of the old definition that the new one lacks go too, on a full rerun.
            let existing = try String.fetchAll(db, sql: "SELECT DISTINCT stage FROM job WHERE run_id = ?", arguments: [runId])
            if stage == nil { affected.formUnion(existing) }
            for s in affected {
                try StageOutputTable.remove(db, runId: runId, stage: s)
                try db.execute(sql: "DELETE FROM job WHERE run_id = ? AND stage = ?", arguments: [runId, s])
            }
            try RunTable.reopen(db, runId, pipeline: hash)
            try Self.advance(db, runId: runId)
        }
    }

    /// Creates jobs for every stage whose dependencies have all finished, and closes the run
    /// once every stage has finished.
    static func advance(_ db: Database, runId: RunID) throws {
        guard let run = try RunTable.run(db, runId), let hash = run.pipelineHash else { return }
        guard !hash.isEmpty, let definition = try definition(db, hash: hash) else {
            if run.status == .inProgress { try RunTable.close(db, runId, failed: false) }
            return
        }
        var states: [String: Set<JobStatus>] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT stage, status FROM job WHERE run_id = ?", arguments: [runId]) {
            states[row["stage"], default: []].insert(JobStatus(rawValue: row["status"]) ?? .pending)
        }
        func finished(_ stage: String) -> Bool {
            guard let s = states[stage] else { return false }
            return s.isSubset(of: [.completed, .failed, .skipped])
        }
        let project = try RunTable.projectName(db, run.projectId) ?? ""
        for stage in definition.stages where states[stage.name] == nil && stage.dependsOn.allSatisfy(finished) {
            let inputs = try candidateInputs(db, runId: runId, root: stage.inputRoot).filter { Glob.matches(stage.inputs, $0.path.description) }
            if inputs.isEmpty {
                var job = JobRecord(runId: runId, stage: stage.name, stageHash: stage.definitionHash, inputPath: .empty, inputBlob: nil,
                                    status: .skipped, maxAttempts: 0, timeout: stage.timeoutSeconds)
                try job.insert(db)
                states[stage.name] = [.skipped]
            } else {
                for input in inputs {
                    let key = stage.memoKey(inputName: input.path.lastComponent, run: run.name, project: project)
                    var job = JobRecord(runId: runId, stage: stage.name, stageHash: stage.definitionHash, memoKey: key, inputPath: input.path,
                                        inputBlob: input.blob, status: .pending, maxAttempts: Int64(stage.retries + 1),
                                        timeout: stage.timeoutSeconds)
                    try job.insert(db)
                }
                states[stage.name] = [.pending]
            }
        }
        if definition.stages.allSatisfy({ finished($0.name) }), run.status == .inProgress {
            try RunTable.close(db, runId, failed: states.values.contains { $0.contains(.failed) })
        }
    }

    /// Files of a run under `root/` (raw_source or a stage), as paths in the run's tree.
    static func candidateInputs(_ db: Database, runId: RunID, root: String) throws -> [(path: PathBytes, blob: BlobHash)] {
        if root == "raw_source" {
            return try RunTable.rawFiles(db, runId).map { (PathBytes("raw_source").appending($0.path), $0.blob) }
        }
        return try StageOutputTable.files(db, runId: runId, stage: root).map { (PathBytes(root).appending($0.path), $0.blob) }
    }


    // MARK: jobs

    /// Takes the next runnable job and marks it in progress (one attempt more).
    public func claim(now: Double = Date().timeIntervalSince1970) throws -> JobRecord? {
        // Idle workers poll: a read costs nothing, so only take the write lock for real work.
        let any = try catalog.ownerRead { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM job WHERE status = 'pending' AND not_before <= ? LIMIT 1", arguments: [now]) ?? false
        }
        guard any else { return nil }
        return try write { db in
            guard var job = try JobRecord.fetchOne(db, sql: """
                SELECT * FROM job WHERE status = 'pending' AND not_before <= ? ORDER BY not_before, id LIMIT 1
                """, arguments: [now]) else { return nil }
            job.status = .inProgress
            job.attempts += 1
            job.startedAt = now
            job.endedAt = nil
            try job.update(db)
            return job
        }
    }

    /// A stage result ready to record: files already durable in the blob store.
    public struct Output: Codable, Sendable, Equatable {
        public var path: PathBytes
        public var blob: BlobHash
        public var size: Int64
        public var mode: Int64
        /// Block checksums read while hashing it; not memoized (a memo hit's blob has them).
        public var blocks: BlockSums? = nil

        enum CodingKeys: String, CodingKey { case path, blob, size, mode }
    }

    /// Records a successful job: its outputs, their blob references and the memo entry.
    public func complete(_ job: JobRecord, outputs: [Output], memoized: Bool) throws {
        try write { db in
            guard var current = try JobRecord.fetchOne(db, key: job.id!), current.status == .inProgress else { return }
            let now = Date().timeIntervalSince1970
            let files = outputs.map { StageOutputTable.File(path: $0.path, hash: $0.blob, size: $0.size, mode: $0.mode, blocks: $0.blocks) }
            try StageOutputTable.record(db, runId: job.runId, stage: job.stage, files: files, inputPath: job.inputPath,
                                        jobId: job.id, now: now)
            if let input = job.inputBlob, !memoized {
                let json = String(decoding: try JSONEncoder().encode(outputs), as: UTF8.self)
                try db.execute(sql: "INSERT OR REPLACE INTO memo (memo_key, input_blob, outputs, created_at) VALUES (?, ?, ?, ?)",
                               arguments: [job.memoKey, input, json, now])
            }
            current.status = .completed
            current.endedAt = now
            current.error = nil
            current.memoized = memoized
            try current.update(db)
            try Self.advance(db, runId: job.runId)
        }
    }

    /// Records a failed attempt: pending again after a backoff while attempts remain, else failed.
    public func fail(_ job: JobRecord, error: String) throws {
        try write { db in
            guard var current = try JobRecord.fetchOne(db, key: job.id!), current.status == .inProgress else { return }
            let now = Date().timeIntervalSince1970
            current.error = String(error.suffix(4000))
            current.endedAt = now
            if current.attempts < current.maxAttempts {
                current.status = .pending
                current.notBefore = now + min(30, 0.2 * pow(2, Double(current.attempts - 1)))
            } else {
                current.status = .failed
            }
            try current.update(db)
            try Self.advance(db, runId: job.runId)
        }
    }

    /// The outputs remembered for (a job's memo key, input content), if any.
    public func memo(key: String, inputBlob: BlobHash) throws -> [Output]? {
        try catalog.ownerRead { db in
            guard let json = try String.fetchOne(db, sql: "SELECT outputs FROM memo WHERE memo_key = ? AND input_blob = ?",
                                                 arguments: [key, inputBlob]) else { return nil }
            return try JSONDecoder().decode([Output].self, from: Data(json.utf8))
        }
    }

    /// After a restart: jobs that were running are retried (one more attempt allowed), runs
    /// sealed but never handed over are started, and finished runs are closed.
    public func recover() throws {
        try write { db in
            try db.execute(sql: """
                UPDATE job SET status = 'pending', not_before = 0, max_attempts = MAX(max_attempts, attempts + 1)
                WHERE status = 'in_progress'
                """)
        }
        let runs = try catalog.ownerRead { db in
            try RunTable.inProgress(db)
        }
        for run in runs {
            if run.pipelineHash == nil { try start(runId: run.id!) } else { try write { try Self.advance($0, runId: run.id!) } }
        }
    }

    public func definition(forRun runId: RunID) throws -> (PipelineDefinition, RunRecord, String)? {
        try catalog.ownerRead { db in
            guard let run = try RunTable.run(db, runId), let hash = run.pipelineHash, !hash.isEmpty,
                  let def = try Self.definition(db, hash: hash),
                  let project = try RunTable.projectName(db, run.projectId) else { return nil }
            return (def, run, project)
        }
    }
}
