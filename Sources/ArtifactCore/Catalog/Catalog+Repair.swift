import Foundation
import GRDB

/// What `verify` and `verify --fix` ask of the catalog beyond the reads `Verifier` shares
/// with everyone: who uses a blob, which runs were left in progress, and the repairs.
extension Catalog {
    /// A consistent copy of the catalog at `path` (SQLite's online backup, GRDB's
    /// `DatabaseReader.backup`), taken beside writers. Throws `.io`.
    public func backup(to path: String) throws {
        do {
            let copy = try DatabaseQueue(path: path)
            try pool.backup(to: copy)
            try copy.close()
        } catch {
            throw ArtifactError(.io, "cannot back up the catalog: \(error)", path: path)
        }
    }

    /// Up to `limit` places each of `hashes` is shown in a mount, as paths below it:
    /// `projects/P/runs/R/raw_source/PATH`, `projects/P/runs/R/STAGE/PATH`,
    /// `datasets/D/versions/V/PATH`. One scan of each table per 500 hashes (no query looks
    /// rows up by blob otherwise, so there is no index for it; `verify` asks only for blobs
    /// with a problem).
    public func uses(of hashes: [BlobHash], limit: Int = 5) throws -> [BlobHash: [String]] {
        var out: [BlobHash: [String]] = [:]
        try read { db in
            for start in stride(from: 0, to: hashes.count, by: 500) {
                let chunk = Array(hashes[start..<min(start + 500, hashes.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let args = StatementArguments(chunk)
                let queries = [
                    """
                    SELECT f.blob, 'projects/' || p.name || '/runs/' || r.name || '/raw_source/' AS prefix, f.dir, f.name
                    FROM file f JOIN run r ON r.id = f.run_id JOIN project p ON p.id = f.project_id WHERE f.blob IN (\(marks))
                    """,
                    """
                    SELECT o.blob, 'projects/' || p.name || '/runs/' || r.name || '/' || o.stage || '/' AS prefix, o.dir, o.name
                    FROM output o JOIN run r ON r.id = o.run_id JOIN project p ON p.id = r.project_id WHERE o.blob IN (\(marks))
                    """,
                    """
                    SELECT e.blob, 'datasets/' || d.name || '/versions/' || v.name || '/' AS prefix, e.dir, e.name
                    FROM entry e JOIN version v ON v.id = e.version_id JOIN dataset d ON d.id = e.dataset_id
                    WHERE e.blob IN (\(marks)) AND e.kind IN ('file', 'symlink')
                    """,
                ]
                for sql in queries {
                    let rows = try Row.fetchCursor(db, sql: sql, arguments: args)
                    while let row = try rows.next() {
                        guard let hash = BlobHash.fromDatabaseValue(row["blob"]), out[hash, default: []].count < limit else { continue }
                        let dir: PathBytes = row["dir"], name: PathBytes = row["name"]
                        out[hash, default: []].append((row["prefix"] as String) + dir.appending(name).description)
                    }
                }
            }
        }
        return out
    }

    /// Runs handed to the pipeline and still in progress with no stage left to run: their
    /// last job ended but nothing closed them (the daemon died at that moment).
    public func staleRuns() throws -> [RunRecord] {
        try read {
            try RunRecord.fetchAll($0, sql: """
                SELECT * FROM run WHERE status = 'in_progress' AND pipeline_hash IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM job WHERE job.run_id = run.id AND job.status IN ('pending', 'in_progress'))
                ORDER BY id
                """)
        }
    }

    /// Closes `run` as failed with `reason` (verify --fix).
    public func closeRun(_ id: RunID, reason: String) throws {
        try write("the run was not closed") { db in
            try db.execute(sql: "UPDATE run SET status = 'failed', error = ?, completed_at = ? WHERE id = ? AND status = 'in_progress'",
                           arguments: [reason, Date().timeIntervalSince1970, id])
        }
    }

    /// Sets each blob's refcount to the rows that name it, making the blob row of a name rows
    /// use but `blob` lacks (size from such a row); returns the names changed (hex).
    public func recountReferences() throws -> [String] {
        try write("the reference counts were not repaired") { db in
            let now = Date().timeIntervalSince1970
            try db.execute(sql: """
                CREATE TEMP TABLE counted AS SELECT blob, COUNT(*) AS n, MAX(size) AS size FROM (
                    SELECT blob, size FROM file UNION ALL SELECT blob, size FROM output
                    UNION ALL SELECT blob, size FROM entry WHERE kind IN ('file', 'symlink') AND blob IS NOT NULL
                ) GROUP BY blob
                """)
            defer { try? db.execute(sql: "DROP TABLE temp.counted") }
            // Names that are not a SHA-256 are verify's bad_name and unknown_blob: not counted here.
            let changed = try DatabaseValue.fetchAll(db, sql: """
                SELECT b.hash FROM blob b LEFT JOIN temp.counted c ON c.blob = b.hash
                WHERE b.refcount != COALESCE(c.n, 0) AND \(BlobHash.wellFormed("b.hash"))
                UNION ALL SELECT c.blob FROM temp.counted c
                WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.hash = c.blob) AND \(BlobHash.wellFormed("c.blob"))
                """)
            try db.execute(sql: """
                INSERT INTO blob (hash, size, refcount, created_at) SELECT c.blob, c.size, 0, ? FROM temp.counted c
                WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.hash = c.blob) AND \(BlobHash.wellFormed("c.blob"))
                """, arguments: [now])
            try db.execute(sql: """
                UPDATE blob SET refcount = COALESCE((SELECT n FROM temp.counted c WHERE c.blob = blob.hash), 0),
                    released_at = CASE WHEN (SELECT n FROM temp.counted c WHERE c.blob = blob.hash) IS NULL THEN COALESCE(released_at, ?) ELSE NULL END
                WHERE \(BlobHash.wellFormed("hash"))
                """, arguments: [now])
            return changed.map(BlobHash.catalogName)
        }
    }
}

extension Catalog {
    /// The block checksums recorded for blob `hash` (nil: none recorded, or damaged).
    public func blockSums(of hash: BlobHash) throws -> BlockSums? {
        try read { db in
            let statement = try db.cachedStatement(sql: "SELECT blocks FROM blob WHERE hash = ?")
            return try Data.fetchOne(statement, arguments: [hash]).flatMap(BlockSums.init(encoded:))
        }
    }

    /// Replaces the block checksums of blob `hash` (verify --fix, after reading it whole).
    public func replaceBlockSums(_ sums: BlockSums, of hash: BlobHash) throws {
        try write { db in
            try db.execute(sql: "UPDATE blob SET blocks = ? WHERE hash = ?", arguments: [sums.encoded, hash])
        }
    }

    /// Records `sums` for blob `hash` where none are: a blob stored before they were kept.
    public func recordBlockSums(_ sums: BlockSums, of hash: BlobHash) throws {
        try write { db in
            try db.execute(sql: "UPDATE blob SET blocks = ? WHERE hash = ? AND blocks IS NULL", arguments: [sums.encoded, hash])
        }
    }
}
