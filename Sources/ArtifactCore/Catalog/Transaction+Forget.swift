import Foundation
import GRDB

/// Removing runs (`forget`): their files, folders, stage outputs and jobs, with every blob
/// reference they held released through `BlobReferences`, and latest/ and history/ made to
/// follow (the versions the forgotten rows superseded take their place again).
/// What forgotten runs' rows covered, for a mount to drop the entries the kernel caches.
public struct ForgottenRuns: Sendable, Codable {
    public var projectId: ProjectID
    public var runs: [String] = []
    /// Each path a forgotten file had, with the ids of every version of it before the forget
    /// (any of them may name its history/ folder) and the forgotten runs that had it.
    public var paths: [PathBytes: (ids: [FileID], runs: [String])] = [:]
    /// Bytes of the forgotten files (not all freed: other runs may share their blobs).
    public var bytesReleased: Int64 = 0

    public init(projectId: ProjectID) { self.projectId = projectId }

    private struct PathEntry: Codable { var path: [UInt8]; var ids: [Int64]; var runs: [String] }
    enum CodingKeys: String, CodingKey { case projectId = "project_id", runs, paths, bytesReleased = "bytes_released" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        projectId = ProjectID(try c.decode(Int64.self, forKey: .projectId))
        runs = try c.decode([String].self, forKey: .runs)
        bytesReleased = try c.decode(Int64.self, forKey: .bytesReleased)
        for e in try c.decode([PathEntry].self, forKey: .paths) {
            paths[PathBytes(e.path)] = (e.ids.map { FileID($0) }, e.runs)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(projectId.rawValue, forKey: .projectId)
        try c.encode(runs, forKey: .runs)
        try c.encode(bytesReleased, forKey: .bytesReleased)
        try c.encode(paths.map { PathEntry(path: $0.key.bytes, ids: $0.value.ids.map(\.rawValue), runs: $0.value.runs) }, forKey: .paths)
    }
}

extension Catalog {
    /// Deletes runs `ids` of project `projectId` in one transaction (see `deleteRuns`).
    public func forgetRuns(projectId: ProjectID, _ ids: [RunID], now: Date = Date()) throws -> ForgottenRuns {
        try writing("no run was forgotten") { tx in
            try tx.deleteRuns(projectId: projectId, ids, now: now.timeIntervalSince1970)
        }
    }
}

extension CatalogTransaction {
    /// Deletes the runs `ids` of project `projectId` in this transaction; ids of other projects
    /// are ignored.
    func deleteRuns(projectId: ProjectID, _ ids: [RunID], now: Double) throws -> ForgottenRuns {
        var out = ForgottenRuns(projectId: projectId)
        // Newest first: each forgotten row hands what superseded it down to the row it had
        // superseded, so a chain r1 -> r2 -> r3 with r2 forgotten becomes r1 -> r3.
        let runs = try RunRecord.filter(ids.contains(Column("id")) && Column("project_id") == projectId).order(Column("timestamp").desc, Column("seq").desc).fetchAll(db)
        let handDown = try db.cachedStatement(sql: """
            UPDATE file SET superseded_by = ? WHERE project_id = ? AND dir = ? AND name = ? AND superseded_by = ?
            """)
        // The successor's status against the version it now replaces (`r1(A) r2(B) r3(A)`
        // without r2: r3 is a duplicate of r1), unless it is superseded itself.
        let restatus = try db.cachedStatement(sql: """
            UPDATE file SET status = CASE WHEN EXISTS (
                SELECT 1 FROM file p WHERE p.project_id = file.project_id AND p.dir = file.dir AND p.name = file.name
                AND p.superseded_by = file.id AND p.run_id != ? AND p.blob = file.blob AND p.kind = file.kind) THEN 'duplicate' ELSE 'new' END
            WHERE id = ? AND status != 'superseded'
            """)
        // The version a forgotten current row had replaced is current again: new, or a
        // duplicate of the one it replaced in turn.
        let current = try db.cachedStatement(sql: """
            UPDATE file SET superseded_by = NULL, status = CASE WHEN EXISTS (
                SELECT 1 FROM file p WHERE p.project_id = file.project_id AND p.dir = file.dir AND p.name = file.name
                AND p.superseded_by = file.id AND p.blob = file.blob AND p.kind = file.kind) THEN 'duplicate' ELSE 'new' END
            WHERE project_id = ? AND dir = ? AND name = ? AND superseded_by = ?
            """)
        for run in runs {
            let runId = run.id!
            out.runs.append(run.name)
            let files = try Row.fetchAll(db, sql: "SELECT id, dir, name, blob, size, superseded_by FROM file WHERE run_id = ?",
                                         arguments: [runId])
            var released: [BlobHash] = []
            for row in files {
                let id: FileID = row["id"], dir: PathBytes = row["dir"], name: PathBytes = row["name"]
                let path = dir.appending(name)
                if out.paths[path] == nil {
                    let all = try FileID.fetchAll(db, sql: "SELECT id FROM file WHERE project_id = ? AND dir = ? AND name = ?",
                                                  arguments: [run.projectId, dir, name])
                    out.paths[path] = (all, [])
                }
                out.paths[path]!.runs.append(run.name)
                out.bytesReleased += row["size"] as Int64
                if let next: FileID = row["superseded_by"] {
                    try handDown.execute(arguments: [next, run.projectId, dir, name, id])
                    try restatus.execute(arguments: [runId, next])
                } else {
                    try current.execute(arguments: [run.projectId, dir, name, id])
                }
                // A malformed name counts no reference (verify reports it): skip, never abort.
                if let hash = BlobHash.fromDatabaseValue(row["blob"]) { released.append(hash) }
            }
            try BlobReferences.remove(db, released, now: now)
            let outputs = try DatabaseValue.fetchAll(db, sql: "SELECT blob FROM output WHERE run_id = ?", arguments: [runId])
            try BlobReferences.remove(db, outputs.compactMap(BlobHash.fromDatabaseValue), now: now)
            for table in ["file", "dir", "output", "output_dir", "job"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [runId])
            }
            try db.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [runId])
        }
        return out
    }
}
