import Foundation
import GRDB

/// What gc asks of the catalog: which blobs no row needs, and removing their rows.
///
/// A blob is collectable when its refcount is 0 (`BlobReferences`), its last reference went
/// before the grace period's start (`released_at`; a row made at 0 counts from its creation),
/// no working-tree row names it (an uncommitted `mv` or `cp` inside `@branch/` keeps the
/// committed blob it started from, outside any refcount), and no import in flight has
/// journaled it (`import_journal`: stored, its run or version not registered yet). `journaled`:
/// gc's one snapshot of the journal for its pass (`JournaledBlobs`); by default, a read of it.
extension Catalog {
    // A row whose name is not a SHA-256 (damage verify reports as bad_name) is never taken:
    // it would not decode, and no file could be found by it.
    private static let collectable = """
        refcount = 0 AND COALESCE(released_at, created_at) <= ? AND \(BlobHash.wellFormed("hash"))
        AND NOT EXISTS (SELECT 1 FROM worktree_change w WHERE w.blob = blob.hash)
        """

    /// The blobs gc may remove: collectable since before `cutoff` (seconds since 1970).
    public func collectableBlobs(releasedBefore cutoff: Double, journaled snapshot: JournaledBlobs = JournaledBlobs()) throws -> [BlobRecord] {
        try read { db in
            let journaled = try snapshot.current(db)
            return try BlobRecord.fetchAll(db, sql: "SELECT * FROM blob WHERE \(Self.collectable) ORDER BY hash", arguments: [cutoff])
                .filter { !journaled.contains($0.hash) }
        }
    }

    /// Blobs with no reference that are still inside the grace period: (count, bytes). Packed
    /// blobs no row has named yet are not counted: an import in flight journals them, or they
    /// are leftovers gc removes at once.
    public func blobsInGrace(releasedBefore cutoff: Double) throws -> (Int, Int64) {
        try read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM blob
                WHERE refcount = 0 AND COALESCE(released_at, created_at) > ?
                  AND NOT (released_at IS NULL AND pack IS NOT NULL)
                """, arguments: [cutoff])
            return (row?["n"] ?? 0, row?["bytes"] ?? 0)
        }
    }

    /// Deletes the rows of `hashes` that are still collectable (checked again, in the same
    /// transaction) and returns them: the caller then removes their files.
    public func deleteCollectable(_ hashes: [BlobHash], releasedBefore cutoff: Double,
                                  journaled snapshot: JournaledBlobs = JournaledBlobs()) throws -> [BlobRecord] {
        try write("the blobs were not collected") { db in
            let find = try db.cachedStatement(sql: "SELECT * FROM blob WHERE hash = ? AND \(Self.collectable)")
            let delete = try db.cachedStatement(sql: "DELETE FROM blob WHERE hash = ?")
            let journaled = try snapshot.current(db)
            var deleted: [BlobRecord] = []
            for hash in hashes where !journaled.contains(hash) {
                guard let record = try BlobRecord.fetchOne(find, arguments: [hash, cutoff]) else { continue }
                try delete.execute(arguments: [hash])
                deleted.append(record)
            }
            return deleted
        }
    }

    /// Of `hashes` (names found in `objects/`), those that no blob row, no working-tree row and
    /// no import journal row names: left by a process that died between storing a blob and
    /// committing its rows.
    public func unnamedBlobs(_ hashes: [BlobHash], journaled snapshot: JournaledBlobs = JournaledBlobs()) throws -> [BlobHash] {
        try read { db in
            let journaled = try snapshot.current(db)
            let named = try db.cachedStatement(sql: """
                SELECT EXISTS (SELECT 1 FROM blob WHERE hash = ?1) OR EXISTS (SELECT 1 FROM worktree_change WHERE blob = ?1)
                """)
            return try hashes.filter { try !journaled.contains($0) && !(Bool.fetchOne(named, arguments: [$0]) ?? true) }
        }
    }
}
