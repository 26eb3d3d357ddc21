import Foundation
import GRDB

/// Queries for stage jobs, outputs and pipeline definitions: what the tree and the run
/// report show. The pipeline module writes these tables; the core only reads them.
extension Catalog {
    public func pipelineSource(projectId: ProjectID) throws -> String? {
        try read { try String.fetchOne($0, sql: "SELECT source FROM pipeline WHERE project_id = ?", arguments: [projectId]) }
    }

    /// Stage folders of a run: every stage that has a job for it.
    public func stages(runId: RunID) throws -> [String] {
        try read { try String.fetchAll($0, sql: "SELECT DISTINCT stage FROM job WHERE run_id = ? ORDER BY stage", arguments: [runId]) }
    }

    public func jobs(runId: RunID) throws -> [JobRecord] {
        try read { try JobRecord.filter(Column("run_id") == runId).order(Column("stage"), Column("input_path")).fetchAll($0) }
    }

    public func output(id: OutputID) throws -> OutputRecord? {
        try read { try OutputRecord.fetchOne($0, key: id) }
    }

    public func outputSubdirectories(runId: RunID, stage: String, parent: PathBytes) throws -> [PathBytes] {
        try read {
            try PathBytes.fetchAll($0, sql: "SELECT name FROM output_dir WHERE run_id = ? AND stage = ? AND parent = ? ORDER BY name",
                                arguments: [runId, stage, parent])
        }
    }

    public func outputs(runId: RunID, stage: String, dir: PathBytes) throws -> [OutputRecord] {
        try read {
            try OutputRecord.filter(Column("run_id") == runId && Column("stage") == stage && Column("dir") == dir)
                .order(Column("name")).fetchAll($0)
        }
    }

    public func outputs(runId: RunID) throws -> [OutputRecord] {
        try read { try OutputRecord.filter(Column("run_id") == runId).order(Column("stage"), Column("path")).fetchAll($0) }
    }

    public func output(runId: RunID, stage: String, dir: PathBytes, name: PathBytes) throws -> OutputRecord? {
        try read {
            try OutputRecord.filter(Column("run_id") == runId && Column("stage") == stage && Column("dir") == dir && Column("name") == name).fetchOne($0)
        }
    }

    public func outputHasDirectory(runId: RunID, stage: String, parent: PathBytes, name: PathBytes) throws -> Bool {
        try read {
            try Bool.fetchOne($0, sql: "SELECT 1 FROM output_dir WHERE run_id = ? AND stage = ? AND parent = ? AND name = ?",
                              arguments: [runId, stage, parent, name]) ?? false
        }
    }
}
