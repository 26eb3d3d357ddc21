import Foundation
import GRDB

/// The pack index (`pack`, `packed_blob`): which pack file holds a packed blob's bytes, at
/// which offset (see `PackFile`). The catalog is the only door to these tables; `BlobStore`
/// reaches them through `PackIndex`.
extension Catalog: PackIndex {
    public func packedLocations(_ hashes: [BlobHash]) throws -> [BlobHash: PackedLocation] {
        guard !hashes.isEmpty else { return [:] }
        return try read { db in
            let find = try db.cachedStatement(sql: "SELECT pack, offset, length FROM packed_blob WHERE hash = ?")
            var out: [BlobHash: PackedLocation] = [:]
            for hash in hashes {
                guard let row = try Row.fetchOne(find, arguments: [hash]) else { continue }
                out[hash] = PackedLocation(pack: row["pack"], offset: row["offset"], length: row["length"])
            }
            return out
        }
    }

    public func addPack(name: String, size: Int64, entries: [PackFile.Entry]) throws -> Set<BlobHash> {
        try write("the pack \(name) was not indexed") { db in
            try db.execute(sql: "INSERT INTO pack (name, size, created_at) VALUES (?, ?, ?)",
                           arguments: [name, size, Date().timeIntervalSince1970])
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO packed_blob (hash, pack, offset, length) VALUES (?, ?, ?, ?)")
            var added = Set<BlobHash>()
            for e in entries {
                try insert.execute(arguments: [e.hash, name, e.offset, e.length])
                if db.changesCount == 1 { added.insert(e.hash) }
            }
            return added
        }
    }

    public func removePacked(_ hashes: [BlobHash]) throws {
        guard !hashes.isEmpty else { return }
        try write("the packed blobs were not removed") { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM packed_blob WHERE hash = ?")
            for hash in hashes { try delete.execute(arguments: [hash]) }
        }
    }

    public func allPackedHashes() throws -> [BlobHash] {
        try read { db in try BlobHash.fetchAll(db, sql: "SELECT hash FROM packed_blob ORDER BY hash") }
    }

    /// Every indexed pack with the bytes and blobs it still holds (for gc and verify).
    public func packs() throws -> [PackRecord] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT p.name, p.size, COUNT(b.hash) AS blobs, COALESCE(SUM(b.length), 0) AS live
                FROM pack p LEFT JOIN packed_blob b ON b.pack = p.name GROUP BY p.name ORDER BY p.name
                """).map { PackRecord(name: $0["name"], size: $0["size"], blobs: $0["blobs"], liveBytes: $0["live"]) }
        }
    }

    /// The blobs pack `name` holds (hash, offset, length), in offset order.
    public func packEntries(_ name: String) throws -> [PackFile.Entry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT hash, offset, length FROM packed_blob WHERE pack = ? ORDER BY offset", arguments: [name])
                .map { PackFile.Entry(hash: $0["hash"], offset: $0["offset"], length: $0["length"]) }
        }
    }

    /// Forgets pack `name` if no blob is indexed in it any more; true when it was forgotten
    /// (then its file can go).
    public func forgetPackIfEmpty(_ name: String) throws -> Bool {
        try write("the pack \(name) was not forgotten") { db in
            try db.execute(sql: "DELETE FROM pack WHERE name = ? AND NOT EXISTS (SELECT 1 FROM packed_blob WHERE pack = ?)",
                           arguments: [name, name])
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
            let move = try db.cachedStatement(sql: "UPDATE packed_blob SET pack = ?, offset = ?, length = ? WHERE hash = ? AND pack = ?")
            for e in entries { try move.execute(arguments: [name, e.offset, e.length, e.hash, old]) }
            try db.execute(sql: "DELETE FROM pack WHERE name = ? AND NOT EXISTS (SELECT 1 FROM packed_blob WHERE pack = ?)",
                           arguments: [old, old])
            return db.changesCount == 1
        }
    }

    /// Packed blobs no blob row, working-tree row or import journal row names (as
    /// `unnamedBlobs` for loose files): left by a process that died between packing them and
    /// committing its rows, or by a failed adopter that could not remove them.
    public func unnamedPackedBlobs() throws -> [PackFile.Entry] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT hash, offset, length FROM packed_blob p
                WHERE NOT EXISTS (SELECT 1 FROM blob WHERE hash = p.hash)
                  AND NOT EXISTS (SELECT 1 FROM worktree_change WHERE blob = p.hash)
                  AND NOT EXISTS (SELECT 1 FROM import_journal WHERE blob = p.hash)
                """).map { PackFile.Entry(hash: $0["hash"], offset: $0["offset"], length: $0["length"]) }
        }
    }
}

/// One pack as the index knows it.
public struct PackRecord: Sendable, Equatable {
    public var name: String
    /// Bytes of the pack file (blobs and trailer).
    public var size: Int64
    /// Blobs still indexed in it, and their bytes.
    public var blobs: Int
    public var liveBytes: Int64
}
