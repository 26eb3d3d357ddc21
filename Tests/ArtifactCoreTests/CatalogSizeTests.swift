@_spi(CatalogTables) import ArtifactCore
import Crypto
import Foundation
import GRDB
import XCTest

/// The catalog's size per file (SPEC §8: at most 300 bytes per catalogued file) and the
/// migration that made it so (v7: 32-byte blob names, no whole path in `file`).
final class CatalogSizeTests: StoreTestCase {
    /// A file with content of its own, as the scale benchmark makes them: the catalog never
    /// opens the blob, so none is stored.
    private func fabricated(_ i: Int) -> StagedEntry {
        let path = PathBytes(String(format: "data/d%05d/f%05d.txt", i / 1000, i % 1000))
        return StagedEntry(path: path, hash: BlobHash(digest: SHA256.hash(data: Array("content \(i)\n".utf8))), size: 14,
                           mode: 0o644, mtimeNs: 1_700_000_000_123_456_789, uid: 1000, gid: 1000)
    }

    private func catalogBytes() throws -> Int {
        try store.catalog.checkpoint()
        let attributes = try FileManager.default.attributesOfItem(atPath: store.root + "/catalog.sqlite")
        return try XCTUnwrap((attributes[.size] as? NSNumber)?.intValue)
    }

    /// What 10,000 more files cost the catalog file once a seal is done and the store is
    /// checkpointed as an unmount does, seal bookkeeping (`seal_cleanup`) included.
    func testTenThousandSealedFilesCostAtMost300BytesEach() throws {
        let p = try makeProject()
        _ = try register(p, (0..<1_000).map(fabricated), now: Self.baseTime)
        let before = try catalogBytes()

        let n = 10_000
        let entries = (1_000..<(1_000 + n)).map(fabricated)
        _ = try register(p, entries, cleanup: entries.enumerated().map { ("/staging/\($0.element.path)", UInt64($0.offset)) },
                         now: Self.baseTime.addingTimeInterval(1))
        try sql { try $0.execute(sql: "DELETE FROM seal_cleanup") }
        let perFile = Double(try catalogBytes() - before) / Double(n)
        XCTAssertLessThanOrEqual(perFile, 300, "catalog bytes per file")
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "PRAGMA freelist_count") }, 0, "checkpoint hands free pages back")
    }

    /// Imported small files are packed (`PackFile`), and where each is packed costs its blob
    /// row two integers, not a row of its own: 5,000 more imported files stay within 300 bytes
    /// each once the store is checkpointed (the import journal's pages handed back).
    func testFiveThousandImportedPackedFilesCostAtMost300BytesEach() throws {
        func tree(_ range: Range<Int>) throws -> String {
            let dir = root + "/src-\(range.lowerBound)"
            for i in range {
                let path = dir + String(format: "/data/d%03d/f%05d.txt", i / 1000, i % 1000)
                try FileManager.default.createDirectory(atPath: pathParent(path), withIntermediateDirectories: true)
                try Data("content \(i)\n".utf8).write(to: URL(fileURLWithPath: path))
            }
            return dir
        }
        _ = try TreeImporter(store: store, source: try tree(0..<1_000), target: .project("imp")).run()
        let before = try catalogBytes()
        let n = 5_000
        let summary = try TreeImporter(store: store, source: try tree(1_000..<(1_000 + n)), target: .project("imp")).run()
        XCTAssertEqual(summary.filesNew, n)
        XCTAssertEqual(try store.catalog.allPackedHashes().count, 1_000 + n, "all packed")
        let perFile = Double(try catalogBytes() - before) / Double(n)
        XCTAssertLessThanOrEqual(perFile, 300, "catalog bytes per imported file")
    }

    /// A store written before v7 (hex blob names, whole paths) reads the same after it.
    func testAStoreFromBeforeTheLeanCatalogMigratesWhole() throws {
        let path = root + "/old.sqlite"
        let x = try hash("X"), y = try hash("YY")
        do {
            let pool = try DatabasePool(path: path)
            try Catalog.migrator.migrate(pool, upTo: "v6-folder-link-counts")
            try pool.write { db in
                try db.execute(sql: "INSERT INTO project (id, name, owner_uid, created_at) VALUES (1, 'p', 1000, 0)")
                for (id, name) in [(1, "20261121T143005Z-001"), (2, "20261121T143006Z-001")] {
                    try db.execute(sql: """
                        INSERT INTO run (id, project_id, name, timestamp, seq, action, status, uid, created_at,
                                         files_new, files_superseded, files_duplicate, bytes)
                        VALUES (?, 1, ?, ?, 1, 'seal', 'completed', 1000, 0, 1, 0, 0, 1)
                        """, arguments: [id, name, id])
                }
                try db.execute(sql: """
                    INSERT INTO blob (hash, size, refcount, created_at) VALUES (?, 1, 2, 0), (?, 2, 1, 0), ('not-a-hash', 1, 0, 0)
                    """, arguments: [x.hex, y.hex])
                let insert = """
                    INSERT INTO file (id, project_id, run_id, path, dir, name, blob, size, mode, mtime_ns, uid, gid, status,
                                      superseded_by, created_at)
                    VALUES (?, 1, ?, CAST(? AS BLOB), CAST(? AS BLOB), CAST(? AS BLOB), ?, ?, 420, 0, 1000, 1000, ?, ?, 0)
                    """
                try db.execute(sql: insert, arguments: [2, 1, "top.txt", "", "top.txt", x.hex, 1, "new", nil])
                try db.execute(sql: insert, arguments: [3, 2, "a/b.txt", "a", "b.txt", y.hex, 2, "new", nil])
                try db.execute(sql: insert, arguments: [1, 1, "a/b.txt", "a", "b.txt", x.hex, 1, "superseded", 3])
                try db.execute(sql: insert, arguments: [4, 2, "gone.txt", "", "gone.txt", y.hex, 2, "new", nil])
                try db.execute(sql: "DELETE FROM file WHERE id = 4")  // the last id stays used
                try db.execute(sql: "INSERT INTO memo (memo_key, input_blob, outputs, created_at) VALUES ('k', ?, '[]', 0)",
                               arguments: [y.hex])
            }
        }

        let catalog = try Catalog(path: path)
        let p = ProjectID(1)
        XCTAssertEqual(try catalog.blob(x)?.refcount, 2)
        XCTAssertEqual(try catalog.blob(y)?.size, 2)
        XCTAssertEqual(try catalog.blobs().map(\.hash), [x, y].sorted())
        XCTAssertEqual(try catalog.malformedBlobNames(), ["not-a-hash"], "damage stays visible to verify")
        XCTAssertEqual(try catalog.countedReferences(), [x.hex: 2, y.hex: 1])

        let run1 = try XCTUnwrap(catalog.runs(projectId: p).first?.id)
        XCTAssertEqual(try catalog.files(runId: run1).map(\.path), ["a/b.txt", "top.txt"])
        XCTAssertEqual(try catalog.history(projectId: p, path: "a/b.txt").map { [$0.run, $0.file.blob.hex] },
                       [["20261121T143005Z-001", x.hex], ["20261121T143006Z-001", y.hex]])
        XCTAssertEqual(try catalog.latestFile(projectId: p, dir: "a", name: "b.txt")?.blob, y)

        try catalog.ownerWrite { db in
            XCTAssertEqual(try String.fetchOne(db, sql: "SELECT outputs FROM memo WHERE input_blob = ?", arguments: [y]), "[]")
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA auto_vacuum"), 2, "incremental auto-vacuum is on")
            XCTAssertEqual(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count, 0)
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA integrity_check"), "ok")
            XCTAssertFalse(try db.columns(in: "file").map(\.name).contains("path"))
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'file'"), 4,
                           "a deleted row's id is never handed out again")
        }
    }
}
