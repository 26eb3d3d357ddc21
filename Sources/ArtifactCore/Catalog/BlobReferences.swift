import Foundation
import GRDB
import Synchronization

/// The one writer of `blob.refcount` (SPEC §6: a blob's reference count equals the rows that
/// name it: files of runs, entries of versions, stage outputs). Each call runs inside the
/// transaction that inserts or deletes those rows, so the count never drifts from them;
/// `Verifier` checks it and gc will trust it.
public enum BlobReferences {
    /// One more row names `hash` (`size` bytes): the blob's row is made with a count of 1, or
    /// counted up (and no longer released). `now`: seconds since 1970, the row's creation time.
    /// `blocks`: the content's block checksums, kept for a blob of more than one block (a
    /// one-block blob is checked by its name) unless the row has them already.
    /// `packed`: where an import packed the content (its journal row); the row gets that
    /// location unless it has one (as `Catalog.addPack` gives it), and another copy the row
    /// does not point at is dead space gc's pack rewrite reclaims.
    public static func add(_ db: Database, _ hash: BlobHash, size: Int64, now: Double, blocks: BlockSums? = nil,
                           packed: PackPlace? = nil) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO blob (hash, size, refcount, created_at, blocks, pack, pack_offset) VALUES (?, ?, 1, ?, ?, ?, ?)
            ON CONFLICT(hash) DO UPDATE SET refcount = refcount + 1, released_at = NULL, blocks = COALESCE(blocks, excluded.blocks),
                pack = CASE WHEN blob.pack IS NULL AND blob.size = excluded.size THEN excluded.pack ELSE blob.pack END,
                pack_offset = CASE WHEN blob.pack IS NULL AND blob.size = excluded.size THEN excluded.pack_offset ELSE blob.pack_offset END
            """)
        try statement.execute(arguments: [hash, size, now, keptBlocks(blocks, size: size), packed?.pack, packed?.offset])
    }

    /// The block checksums a blob row keeps: those of a blob of more than one block (a
    /// one-block blob is checked by its name) that has as many as its size says.
    static func keptBlocks(_ blocks: BlockSums?, size: Int64) -> Data? {
        blocks.flatMap { $0.sums.count > 1 && $0.sums.count == BlockSums.count(forSize: size) ? $0.encoded : nil }
    }

    /// `add` for every file of the run being registered (`CatalogTransaction.insertRun`'s temp
    /// table `run_entry`), in one statement: each blob counted up by the files that name it.
    /// Of several files with one content, one with a packed location gives the row its own
    /// (pack and offset taken together: one number, pack × 2³² + offset, as offsets in a pack
    /// of at most `PackFile.targetSize` bytes stay below 2³²).
    static func addRunEntries(_ db: Database, now: Double) throws {
        try db.execute(sql: """
            INSERT INTO blob (hash, size, refcount, created_at, blocks, pack, pack_offset)
            SELECT blob, size, n, ?, blocks, place >> 32, place & 4294967295 FROM (
                SELECT blob, MAX(size) AS size, COUNT(*) AS n, MAX(blocks) AS blocks, MAX(pack * 4294967296 + pack_offset) AS place
                FROM temp.run_entry GROUP BY blob
            ) WHERE true
            ON CONFLICT(hash) DO UPDATE SET refcount = refcount + excluded.refcount, released_at = NULL,
                blocks = COALESCE(blob.blocks, excluded.blocks),
                pack = CASE WHEN blob.pack IS NULL AND blob.size = excluded.size THEN excluded.pack ELSE blob.pack END,
                pack_offset = CASE WHEN blob.pack IS NULL AND blob.size = excluded.size THEN excluded.pack_offset ELSE blob.pack_offset END
            """, arguments: [now])
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
    /// Which of `hashes` a committed row needs, as gc asks it (`Catalog+Collection`): a
    /// refcount above 0, or a working-tree row or an import journal row naming it. One read;
    /// the journal is read once for all of them (`JournaledBlobs`). An error counts as all of
    /// them: never remove a blob on a guess.
    public func referencedBlobs(_ hashes: [BlobHash]) -> Set<BlobHash> {
        do {
            return try read { db in
                let journaled = try JournaledBlobs().current(db)
                let named = try db.cachedStatement(sql: """
                    SELECT EXISTS (SELECT 1 FROM blob WHERE hash = ?1 AND refcount > 0)
                        OR EXISTS (SELECT 1 FROM worktree_change WHERE blob = ?1)
                    """)
                return try Set(hashes.filter { try journaled.contains($0) || (Bool.fetchOne(named, arguments: [$0]) ?? true) })
            }
        } catch {
            return Set(hashes)
        }
    }

}

/// The blobs that import journals name (stored by an import in flight, its run or version not
/// registered yet), as one gc pass sees them: the journal is read whole once, then only the rows
/// added since (its ids only grow: AUTOINCREMENT, and a replaced row gets a new id), so the
/// pass's many questions cost one scan of it. A row deleted since (its import registered, its
/// blob counted now) stays in the set: a blob is kept longer, never removed early.
///
/// The journal has no index by blob on purpose: its rows come in path order, and an index keyed
/// by hash took random writes across the whole index for every batch (BENCHMARKS.md, import).
public final class JournaledBlobs: Sendable {
    private let state = Mutex<(hashes: Set<BlobHash>, lastId: Int64)>(([], 0))

    public init() {}

    /// The set, with the journal rows added since the last call read in.
    func current(_ db: Database) throws -> Set<BlobHash> {
        try state.withLock { state in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, blob FROM import_journal WHERE id > ? ORDER BY id", arguments: [state.lastId])
            while let row = try rows.next() {
                state.lastId = row[0]
                if let hash = BlobHash.fromDatabaseValue(row[1]) { state.hashes.insert(hash) }
            }
            return state.hashes
        }
    }
}
