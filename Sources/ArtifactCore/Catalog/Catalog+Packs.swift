import Foundation
import GRDB

/// The pack index: `pack` (one row per pack file) and, in each packed blob's own `blob` row,
/// which pack holds its bytes at which offset (`pack`, `pack_offset`; the length is the blob's
/// size). See `PackFile`. The catalog is the only door to these columns; `BlobStore` reaches
/// them through `PackIndex`.
///
/// A row that packing makes (a seal's or commit's batch) has refcount 0 and no `released_at`
/// until its run or version names it; one no row ever names is a leftover of an adopter that
/// stopped (`unnamedPackedBlobs`). An import's batches make no blob rows: their journal rows
/// say where each blob is packed (`import_journal.pack`, `pack_offset`) until the import's
/// registration makes the rows, and gc leaves a pack a journal points into as it is.
extension Catalog: PackIndex {
    public func packedLocations(_ hashes: [BlobHash]) throws -> [BlobHash: PackedLocation] {
        guard !hashes.isEmpty else { return [:] }
        return try read { db in
            let find = try db.cachedStatement(sql: """
                SELECT p.name, b.pack_offset, b.size FROM blob b JOIN pack p ON p.id = b.pack WHERE b.hash = ?
                """)
            var out: [BlobHash: PackedLocation] = [:]
            for hash in hashes {
                guard let row = try Row.fetchOne(find, arguments: [hash]) else { continue }
                out[hash] = PackedLocation(pack: row[0], offset: row[1], length: row[2])
            }
            return out
        }
    }

    public func addPack(name: String, size: Int64, entries: [PackFile.Entry]) throws -> Set<BlobHash> {
        try write("the pack \(name) was not indexed") { db in
            let now = Date().timeIntervalSince1970
            try db.execute(sql: "INSERT INTO pack (name, size, created_at) VALUES (?, ?, ?)", arguments: [name, size, now])
            let id = db.lastInsertedRowID
            // A row the blob has already (released, or named by a row whose bytes went to
            // quarantine) gets the location unless it has one.
            let insert = try db.cachedStatement(sql: """
                INSERT INTO blob (hash, size, refcount, created_at, pack, pack_offset) VALUES (?, ?, 0, ?, ?, ?)
                ON CONFLICT(hash) DO UPDATE SET pack = excluded.pack, pack_offset = excluded.pack_offset
                WHERE blob.pack IS NULL AND blob.size = excluded.size
                """)
            var added = Set<BlobHash>()
            for e in entries {
                try insert.execute(arguments: [e.hash, e.length, now, id, e.offset])
                if db.changesCount == 1 { added.insert(e.hash) }
            }
            return added
        }
    }

    public func removePacked(_ hashes: [BlobHash]) throws {
        guard !hashes.isEmpty else { return }
        try write("the packed blobs were not removed") { db in
            let forget = try db.cachedStatement(sql: "UPDATE blob SET pack = NULL, pack_offset = NULL WHERE hash = ?")
            let drop = try db.cachedStatement(sql: "DELETE FROM blob WHERE hash = ? AND refcount = 0 AND released_at IS NULL")
            for hash in hashes {
                try forget.execute(arguments: [hash])
                try drop.execute(arguments: [hash])
            }
        }
    }

    public func forgetPacked(_ hash: BlobHash, at location: PackedLocation) throws -> Bool {
        try write("the packed blob \(hash.hex) was not forgotten") { db in
            try db.execute(sql: """
                UPDATE blob SET pack = NULL, pack_offset = NULL
                WHERE hash = ? AND pack = (SELECT id FROM pack WHERE name = ?) AND pack_offset = ?
                """, arguments: [hash, location.pack, location.offset])
            return db.changesCount == 1
        }
    }

    public func allPackedHashes() throws -> [BlobHash] {
        try read { db in try BlobHash.fetchAll(db, sql: "SELECT hash FROM blob WHERE pack IS NOT NULL ORDER BY hash") }
    }

    /// Every indexed pack with the blobs and bytes it still holds (for gc): one pass over the
    /// blob rows, and one over the import journal.
    public func packs() throws -> [PackRecord] {
        try read { db in
            var live: [Int64: (Int, Int64)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT pack, COUNT(*), SUM(size) FROM blob WHERE pack IS NOT NULL GROUP BY pack") {
                live[row[0]] = (row[1], row[2])
            }
            let journaled = try Set(Int64.fetchAll(db, sql: "SELECT DISTINCT pack FROM import_journal WHERE pack IS NOT NULL"))
            return try Row.fetchAll(db, sql: "SELECT id, name, size FROM pack ORDER BY name").map { row in
                let (blobs, bytes) = live[row[0]] ?? (0, 0)
                return PackRecord(name: row[1], size: row[2], blobs: blobs, liveBytes: bytes, journaled: journaled.contains(row[0]))
            }
        }
    }

    /// Whether pack `name` is indexed.
    public func hasPack(_ name: String) throws -> Bool {
        try read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM pack WHERE name = ?)", arguments: [name]) ?? false }
    }

    /// The blobs pack `name` holds (hash, offset, length), in offset order.
    public func packEntries(_ name: String) throws -> [PackFile.Entry] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT hash, pack_offset, size FROM blob WHERE pack = (SELECT id FROM pack WHERE name = ?) ORDER BY pack_offset
                """, arguments: [name]).map { PackFile.Entry(hash: $0[0], offset: $0[1], length: $0[2]) }
        }
    }

    /// Forgets pack `name` if no blob is indexed in it any more and no import journal row
    /// points into it; true when it was forgotten (then its file can go).
    public func forgetPackIfEmpty(_ name: String) throws -> Bool {
        try write("the pack \(name) was not forgotten") { db in
            try db.execute(sql: """
                DELETE FROM pack WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM blob WHERE pack = (SELECT id FROM pack WHERE name = ?1))
                  AND NOT EXISTS (SELECT 1 FROM import_journal WHERE pack = (SELECT id FROM pack WHERE name = ?1))
                """, arguments: [name])
            return db.changesCount == 1
        }
    }

    /// Gc rewriting a pack: `entries` (their offsets in the new pack `name`, `size` bytes) move
    /// from `old` to it, each only if it is still indexed in `old`; `old` is forgotten once it
    /// holds nothing. One transaction. Returns whether `old` was forgotten.
    public func movePacked(from old: String, to name: String, size: Int64, entries: [PackFile.Entry]) throws -> Bool {
        try write("the pack \(old) was not rewritten") { db in
            try db.execute(sql: "INSERT INTO pack (name, size, created_at) VALUES (?, ?, ?)",
                           arguments: [name, size, Date().timeIntervalSince1970])
            let id = db.lastInsertedRowID
            guard let oldId = try Int64.fetchOne(db, sql: "SELECT id FROM pack WHERE name = ?", arguments: [old]) else { return false }
            let move = try db.cachedStatement(sql: "UPDATE blob SET pack = ?, pack_offset = ? WHERE hash = ? AND pack = ?")
            for e in entries { try move.execute(arguments: [id, e.offset, e.hash, oldId]) }
            try db.execute(sql: """
                DELETE FROM pack WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM blob WHERE pack = ?1)
                  AND NOT EXISTS (SELECT 1 FROM import_journal WHERE pack = ?1)
                """, arguments: [oldId])
            return db.changesCount == 1
        }
    }

    /// Packed blobs whose row no run, version, output, working tree or import journal ever
    /// named (refcount 0, never released): left by an adopter that stopped between packing
    /// them and committing its rows. `remove`: their rows go (the caller holds the hold lock
    /// exclusively, so no adopter is in flight). Returns them.
    public func unnamedPackedBlobs(remove: Bool = false, journaled snapshot: JournaledBlobs = JournaledBlobs()) throws -> [PackFile.Entry] {
        let sql = """
            SELECT hash, pack_offset, size FROM blob b
            WHERE pack IS NOT NULL AND refcount = 0 AND released_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM worktree_change WHERE blob = b.hash)
            """
        let body = { (db: Database) throws -> [PackFile.Entry] in
            let journaled = try snapshot.current(db)
            let found = try Row.fetchAll(db, sql: sql).map { PackFile.Entry(hash: $0[0], offset: $0[1], length: $0[2]) }
                .filter { !journaled.contains($0.hash) }
            if remove {
                let delete = try db.cachedStatement(sql: "DELETE FROM blob WHERE hash = ?")
                for e in found { try delete.execute(arguments: [e.hash]) }
            }
            return found
        }
        return remove ? try write("the leftover packed blobs were not removed", body) : try read(body)
    }
}

/// Where a packed blob's bytes are, as catalog rows say it: the `pack` row's id and the
/// offset in it (bytes). An import's journal row carries one until its blob row is made.
public struct PackPlace: Sendable, Equatable {
    public var pack: Int64
    public var offset: Int64
}

/// One pack as the index knows it.
public struct PackRecord: Sendable, Equatable {
    public var name: String
    /// Bytes of the pack file (blobs and trailer).
    public var size: Int64
    /// Blobs still indexed in it, and their bytes.
    public var blobs: Int
    public var liveBytes: Int64
    /// An import in flight points into it from its journal (its blobs have no index rows
    /// yet): gc leaves it as it is.
    public var journaled = false
}
