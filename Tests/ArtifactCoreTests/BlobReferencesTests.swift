@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB
import XCTest

/// The one refcount writer, and a crash between storing blobs and registering the rows that
/// name them (SPEC §6).
final class BlobReferencesTests: StoreTestCase {
    private func refcount(_ hash: BlobHash) throws -> Int64? {
        try store.catalog.ownerRead { try Int64.fetchOne($0, sql: "SELECT refcount FROM blob WHERE hash = ?", arguments: [hash]) }
    }

    func testAddCountsUpAndRemoveCountsDownPerRow() throws {
        let h = try XCTUnwrap(BlobHash(hex: BlobStoreTests.abc))
        try store.catalog.ownerWrite { db in
            try BlobReferences.add(db, h, size: 3, now: 1)
            try BlobReferences.add(db, h, size: 3, now: 2)
        }
        XCTAssertEqual(try refcount(h), 2)
        try store.catalog.ownerWrite { try BlobReferences.remove($0, [h, h]) }
        XCTAssertEqual(try refcount(h), 0, "one count down per row, a hash listed twice twice")
        try store.catalog.ownerWrite { try BlobReferences.remove($0, [h]) }
        XCTAssertEqual(try refcount(h), 0, "never below zero")
        // A transaction that fails takes its counts with it.
        XCTAssertThrowsError(try store.catalog.ownerWrite { db in
            try BlobReferences.add(db, h, size: 3, now: 3)
            throw ArtifactError(.io, "the row insert failed")
        })
        XCTAssertEqual(try refcount(h), 0)
    }

    /// The daemon dies after a seal stored its blobs and before the catalog committed the run:
    /// the staged files are still in incoming/ and the blobs exist with no row. The next seal
    /// registers the run once, reuses those blobs, and the store verifies clean.
    func testACrashBetweenAdoptAndCommitLeavesNothingWrong() throws {
        let p = try makeProject()
        try stage(p, "a.txt", "alpha")
        try stage(p, "sub/b.txt", "beta")
        // What the crashed seal did before its transaction: the blobs, durable, and no rows.
        let scan = try store.staging.scan(projectId: p)
        let adoptions = try scan.files.map { file -> BlobStore.Adoption in
            let (hash, size) = try BlobStore.hash(fileAt: file.fullPath)
            return BlobStore.Adoption(path: file.fullPath, hash: hash, size: size)
        }
        XCTAssertEqual(try store.blobs.adopt(adoptions, referenced: store.catalog.referencedBlobs).stored.count, 2)
        XCTAssertEqual(try store.catalog.ownerRead { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM run") }, 0)

        let seals = SealCoordinator(catalog: store.catalog, blobs: store.blobs, staging: store.staging)
        guard case .sealed(let run) = try seals.seal(projectId: p) else { return XCTFail("not sealed") }
        XCTAssertEqual(run.filesNew, 2)
        for a in adoptions {
            XCTAssertEqual(try refcount(a.hash), 1)
            XCTAssertEqual(store.blobs.check(a.hash, expectedSize: a.size), .ok)
        }
        let report = try Verifier(store: store).run()
        XCTAssertEqual(report.problems.map(\.kind), [])
    }

    func testIsReferencedReadsTheCount() throws {
        let h = try XCTUnwrap(BlobHash(hex: BlobStoreTests.abc))
        XCTAssertFalse(store.catalog.referencedBlobs([h]).contains(h), "no row at all")
        try store.catalog.ownerWrite { try BlobReferences.add($0, h, size: 3, now: 1) }
        XCTAssertTrue(store.catalog.referencedBlobs([h]).contains(h))
        try store.catalog.ownerWrite { try BlobReferences.remove($0, [h]) }
        XCTAssertFalse(store.catalog.referencedBlobs([h]).contains(h), "a count of 0")
    }
}
