import Foundation
import GRDB

/// Queries for stage outputs: what the tree shows under runs/<run>/<stage>/. The pipeline
/// records them through `StageOutputTable`; its own tables (jobs, memo, definitions) it reads
/// itself and shows through `PipelineState`.
extension Catalog {
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
