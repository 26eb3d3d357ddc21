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
        var progress: [(Int, Int)] = []
        let report = try Verifier(store: store).run { progress.append(($0, $1)) }
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.problems, [])
        XCTAssertEqual(report.orphans, [])
        XCTAssertEqual(report.blobsChecked, 2)
        XCTAssertEqual(report.filesChecked, 3)
        XCTAssertEqual(progress.map(\.0), [1, 2])
        XCTAssertEqual(progress.map(\.1), [2, 2])
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
}
