@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB
import XCTest

final class VerifierTests: StoreTestCase {
    var a: BlobHash!, b: BlobHash!

    /// Two runs, three rows: blob "alpha" referred to twice, "beta" once.
    override func setUpWithError() throws {
        try super.setUpWithError()
        let p = try makeProject()
        _ = try register(p, [try entry("x/a.txt", "alpha"), try entry("b.txt", "beta")], now: Self.baseTime)
        _ = try register(p, [try entry("copy-of-a.txt", "alpha")], now: Self.baseTime.addingTimeInterval(1))
        a = try hash("alpha")
        b = try hash("beta")
    }

    func verify() throws -> Verifier.Report { try Verifier(store: store).run() }

    func kinds(_ report: Verifier.Report) -> [String] { report.problems.map(\.kind) }

    func testACleanStoreIsOk() throws {
        var progress: [Verifier.Progress] = []
        let report = try Verifier(store: store).run(Verifier.Options()) { progress.append($0) }
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.problems, [])
        XCTAssertEqual(report.orphans, [])
        XCTAssertEqual(report.blobsChecked, 2)
        XCTAssertEqual(report.filesChecked, 3)
        // Progress counts bytes while a blob is read (a 2 GiB blob is not one silent step),
        // then the blob; it never goes back, and ends at the totals.
        XCTAssertEqual(progress.map(\.blobs), [0, 1, 1, 2])
        XCTAssertEqual(Set(progress.map(\.totalBlobs)), [2])
        XCTAssertEqual(progress.map(\.bytes), progress.map(\.bytes).sorted())
        XCTAssertEqual(progress.last?.bytes, progress.last?.totalBytes)
        XCTAssertEqual(progress.last?.bytes, report.bytesRead)
    }

    /// A damaged catalog row is reported by name, and every good blob is still checked.
    func testABlobRowNamedWithoutASHA256IsABadNameNotAnAbort() throws {
        try store.catalog.ownerWrite { db in
            try db.execute(sql: "INSERT INTO blob (hash, size, refcount, created_at) VALUES ('not-a-hash', 1, 0, 0)")
        }
        let report = try verify()
        XCTAssertEqual(kinds(report), ["bad_name"])
        XCTAssertEqual(report.problems.first?.blob, "not-a-hash")
        XCTAssertEqual(report.blobsChecked, 2)
    }

    func testADeletedBlobIsMissing() throws {
        try FileManager.default.removeItem(atPath: store.blobs.path(of: a))
        let report = try verify()
        XCTAssertFalse(report.ok)
        XCTAssertEqual(kinds(report), ["missing_blob"])
        XCTAssertEqual(report.problems.first?.blob, a.hex)
    }

    func testOverwrittenBytesOfTheSameSizeAreCorrupt() throws {
        try Data("ALPHA".utf8).write(to: URL(fileURLWithPath: store.blobs.path(of: a)))
        let report = try verify()
        XCTAssertFalse(report.ok)
        XCTAssertEqual(kinds(report), ["corrupt_blob"])
        XCTAssertEqual(report.problems.first?.blob, a.hex)
        XCTAssertTrue(report.problems.first?.detail.contains(try hash("ALPHA").hex) ?? false,
                      report.problems.first?.detail ?? "")
    }

    func testATruncatedBlobIsCorrupt() throws {
        try Data("bet".utf8).write(to: URL(fileURLWithPath: store.blobs.path(of: b)))
        let report = try verify()
        XCTAssertEqual(kinds(report), ["corrupt_blob"])
        XCTAssertEqual(report.problems.first?.blob, b.hex)
    }

    func testAWrongRefcountIsAMismatch() throws {
        try sql { try $0.execute(sql: "UPDATE blob SET refcount = refcount + 1 WHERE hash = ?", arguments: [a]) }
        var report = try verify()
        XCTAssertFalse(report.ok)
        XCTAssertEqual(kinds(report), ["refcount_mismatch"])
        XCTAssertEqual(report.problems.first?.blob, a.hex)

        try sql { try $0.execute(sql: "UPDATE blob SET refcount = 0 WHERE hash = ?", arguments: [b]) }
        report = try verify()
        XCTAssertEqual(kinds(report), ["refcount_mismatch", "refcount_mismatch"])
        XCTAssertEqual(Set(report.problems.compactMap(\.blob)), [a.hex, b.hex])
    }

    func testAnUnreferencedBlobIsAnOrphanNotAProblem() throws {
        let orphan = try store.blobs.put(Array("nobody refers to me".utf8))
        let report = try verify()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.orphans, [orphan.hex])
        XCTAssertEqual(report.blobsChecked, 2)
    }

    func testReportEncodesAsJSON() throws {
        try FileManager.default.removeItem(atPath: store.blobs.path(of: b))
        let report = try verify()
        let data = try JSONEncoder().encode(report)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["ok"] as? Bool, false)
        XCTAssertEqual(object["blobs_checked"] as? Int, 2)
        XCTAssertEqual(object["files_checked"] as? Int, 3)
        XCTAssertEqual((object["problems"] as? [Any])?.count, 1)
        let decoded = try JSONDecoder().decode(Verifier.Report.self, from: data)
        XCTAssertEqual(decoded.problems, report.problems)
    }

    /// A deliberately broken store: a missing blob whose good copy lies at a wrong name, a
    /// corrupt blob, a wrong refcount, an orphan and a stale run. `--fix` reports and repairs
    /// each, deletes nothing referenced, and what it cannot repair (the corrupt blob's data)
    /// stays reported, with its files, until the same content is stored again.
    func testFixRepairsABrokenStoreAndDeletesNothingReferenced() throws {
        let p = try XCTUnwrap(store.catalog.project(named: "alpha")).id!
        let gammaRun = try register(p, [try entry("c.txt", "gamma")], now: Self.baseTime.addingTimeInterval(2))
        let c = try hash("gamma")
        let misplaced = store.blobs.root + "/00/" + String(repeating: "0", count: 62)
        try FileManager.default.createDirectory(atPath: store.blobs.root + "/00", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: store.blobs.path(of: c), toPath: misplaced)
        try Data("BETA".utf8).write(to: URL(fileURLWithPath: store.blobs.path(of: b)))
        try sql { try $0.execute(sql: "UPDATE blob SET refcount = refcount + 1 WHERE hash = ?", arguments: [a]) }
        let orphan = try store.blobs.put(Array("nobody refers to me".utf8))
        let stale = try register(p, [try entry("d.txt", "delta")], completed: false, now: Self.baseTime.addingTimeInterval(3))
        try sql { try $0.execute(sql: "UPDATE run SET pipeline_hash = '' WHERE id = ?", arguments: [stale.id!]) }

        let before = try verify()
        XCTAssertEqual(kinds(before), ["corrupt_blob", "missing_blob", "refcount_mismatch", "stale_run"])
        XCTAssertEqual(before.problems.first { $0.kind == "missing_blob" }?.uses, ["projects/alpha/runs/\(gammaRun.name)/raw_source/c.txt"])
        XCTAssertEqual(before.orphans.count, 2, "the orphan and the misplaced copy")

        let fixed = try Verifier(store: store).run(Verifier.Options(readData: 1, fix: true))
        XCTAssertEqual(kinds(fixed), ["corrupt_blob", "missing_blob", "refcount_mismatch", "stale_run"])
        XCTAssertTrue(fixed.problems.allSatisfy { $0.fixed != nil }, "\(fixed.problems)")
        XCTAssertFalse(fixed.ok, "a quarantined blob's files stay unreadable")
        let backup = try XCTUnwrap(fixed.backup)
        let copy = try ArtifactStore(root: root, create: false).catalog  // the store itself still opens
        XCTAssertNotNil(copy)
        XCTAssertEqual(try String(decoding: Data(contentsOf: URL(fileURLWithPath: backup)).prefix(15), as: UTF8.self), "SQLite format 3")
        XCTAssertEqual(try store.blobs.read(c), Array("gamma".utf8), "the good copy is back at its name")
        XCTAssertEqual(store.blobs.quarantineReason(b)?.hasPrefix("verify: content hashes to"), true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.blobs.quarantineDir + "/" + b.hex), "quarantined, not deleted")
        XCTAssertTrue(store.blobs.contains(orphan), "an orphan is gc's to remove, not verify's")
        XCTAssertEqual(try store.catalog.run(id: stale.id!)?.status, .failed)

        let second = try verify()
        XCTAssertEqual(kinds(second), ["quarantined_blob"])
        XCTAssertEqual(second.problems.first?.uses, ["projects/alpha/runs/20261121T143005Z-001/raw_source/b.txt"])
        // The same content sealed again heals it.
        _ = try register(p, [try entry("b-again.txt", "beta")], now: Self.baseTime.addingTimeInterval(4))
        let healed = try verify()
        XCTAssertTrue(healed.ok, "\(healed.problems)")
    }

    func testWithoutReadDataOnlySizesAreChecked() throws {
        try Data("ALPHA".utf8).write(to: URL(fileURLWithPath: store.blobs.path(of: a)))
        let quick = try Verifier(store: store).run(Verifier.Options(readData: 0))
        XCTAssertTrue(quick.ok)
        XCTAssertEqual(quick.blobsRead, 0)
        let full = try Verifier(store: store).run(Verifier.Options(readData: 1))
        XCTAssertEqual(kinds(full), ["corrupt_blob"])
        XCTAssertEqual(full.blobsRead, 2)
        XCTAssertEqual(full.bytesRead, 9)
    }

    /// Recorded block checksums that do not match good content would fail good reads:
    /// verify --read-data names them and --fix records the right ones.
    func testWrongBlockSumsAreFoundAndFixed() throws {
        let p = try XCTUnwrap(store.catalog.project(named: "alpha")).id!
        let big = (0..<(BlockSums.blockSize + 1)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var e = StagedEntry(path: PathBytes("big.bin"), hash: try store.blobs.put(big), size: Int64(big.count), mode: 0o644, mtimeNs: 0, uid: 0, gid: 0)
        e.blocks = BlockSums(sums: [1, 2])
        _ = try register(p, [e], now: Self.baseTime.addingTimeInterval(5))
        XCTAssertEqual(kinds(try verify()), ["bad_block_sums"])
        XCTAssertTrue(try Verifier(store: store).run(Verifier.Options(readData: 0)).ok, "only reading the data can tell")
        let fixed = try Verifier(store: store).run(Verifier.Options(readData: 1, fix: true))
        XCTAssertEqual(fixed.problems.first?.fixed, "recorded the right checksums")
        XCTAssertTrue(fixed.ok)
        XCTAssertEqual(try store.catalog.blockSums(of: e.hash), BlockSums.of(big))
        XCTAssertTrue(try verify().ok)
    }
}
