import Foundation
import GRDB

/// The one writer of `blob.refcount` (SPEC §6: a blob's reference count equals the rows that
/// name it: files of runs, entries of versions, stage outputs). Each call runs inside the
/// transaction that inserts or deletes those rows, so the count never drifts from them;
/// `Verifier` checks it and gc will trust it.
public enum BlobReferences {
    /// One more row names `hash` (`size` bytes): the blob's row is made with a count of 1, or
    /// counted up (and no longer released). `now`: seconds since 1970, the row's creation time.
    /// `blocks`: the content's block checksums, kept for a blob of more than one block (a
    /// one-block blob is checked by its name) unless the row has them already.
    public static func add(_ db: Database, _ hash: BlobHash, size: Int64, now: Double, blocks: BlockSums? = nil) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO blob (hash, size, refcount, created_at, blocks) VALUES (?, ?, 1, ?, ?)
            ON CONFLICT(hash) DO UPDATE SET refcount = refcount + 1, released_at = NULL, blocks = COALESCE(blocks, excluded.blocks)
            """)
        let kept = blocks.flatMap { $0.sums.count > 1 && $0.sums.count == BlockSums.count(forSize: size) ? $0.encoded : nil }
        try statement.execute(arguments: [hash, size, now, kept])
    }

    /// Rows that named `hashes` were deleted: one count down per row, so a hash listed twice
    /// (two rows with the same content) counts down twice. A blob at 0 stays for gc, which
    /// waits its grace period from `now` (`released_at`).
    public static func remove(_ db: Database, _ hashes: [BlobHash], now: Double = Date().timeIntervalSince1970) throws {
        let statement = try db.cachedStatement(sql: """
            UPDATE blob SET refcount = refcount - 1, released_at = CASE WHEN refcount = 1 THEN ? ELSE released_at END
            WHERE hash = ? AND refcount > 0
            """)
        for hash in hashes { try statement.execute(arguments: [now, hash]) }
    }
}

extension Catalog {
    /// Whether a committed row needs blob `hash`, as gc asks it (`Catalog+Collection`): its
    /// refcount is above 0, or a working-tree row or an import journal row names it. An error
    /// counts as yes: never remove a blob on a guess.
    public func isReferenced(_ hash: BlobHash) -> Bool {
        do {
            return try read { db in
                try Bool.fetchOne(db, sql: """
                    SELECT EXISTS (SELECT 1 FROM blob WHERE hash = ?1 AND refcount > 0)
                        OR EXISTS (SELECT 1 FROM worktree_change WHERE blob = ?1)
                        OR EXISTS (SELECT 1 FROM import_journal WHERE blob = ?1)
                    """, arguments: [hash]) ?? true
            }
        } catch {
            return true
        }
    }
}
