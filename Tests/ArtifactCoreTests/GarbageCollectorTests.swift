@_spi(CatalogTables) import ArtifactCore
import Foundation
import XCTest

final class GarbageCollectorTests: StoreTestCase {
    /// Drops every reference to `hash` at `time`, as forget does through `BlobReferences`.
    private func release(_ hash: BlobHash, at time: Date) throws {
        try store.catalog.ownerWrite { db in
            let n = try Int.fetchOne(db, sql: "SELECT refcount FROM blob WHERE hash = ?", arguments: [hash]) ?? 0
            try BlobReferences.remove(db, Array(repeating: hash, count: n), now: time.timeIntervalSince1970)
        }
    }

    func testUnreferencedBlobWaitsOutTheGracePeriodThenGoes() throws {
        let p = try makeProject()
        let e = try entry("a.txt", "hello")
        _ = try register(p, [e])
        let t0 = StoreTestCase.baseTime
        try release(e.hash, at: t0)

        let early = try GarbageCollector(store: store, grace: 3_600, now: t0.addingTimeInterval(60)).run()
        XCTAssertEqual(early.blobsRemoved, 0)
        XCTAssertEqual(early.blobsInGrace, 1)
        XCTAssertEqual(early.bytesInGrace, 5)
        XCTAssertTrue(store.blobs.contains(e.hash))

        let dry = try GarbageCollector(store: store, grace: 3_600, now: t0.addingTimeInterval(3_601)).run(dryRun: true)
        XCTAssertEqual(dry.blobsRemoved, 1)
        XCTAssertEqual(dry.bytesFreed, 5)
        XCTAssertTrue(store.blobs.contains(e.hash), "a dry run deletes nothing")
        XCTAssertNotNil(try store.catalog.blob(e.hash))

        let late = try GarbageCollector(store: store, grace: 3_600, now: t0.addingTimeInterval(3_601)).run()
        XCTAssertEqual(late.blobsRemoved, 1)
        XCTAssertEqual(late.bytesFreed, 5)
        XCTAssertFalse(store.blobs.contains(e.hash))
        XCTAssertNil(try store.catalog.blob(e.hash))
    }

    func testReferencedBlobsStayWhateverTheGrace() throws {
        let p = try makeProject()
        let e = try entry("a.txt", "kept")
        _ = try register(p, [e])
        let report = try GarbageCollector(store: store, grace: 0, now: Date().addingTimeInterval(86_400)).run()
        XCTAssertEqual(report, GarbageCollector.Report())
        XCTAssertTrue(store.blobs.contains(e.hash))
    }

    func testReferencedAgainBeforeCollectionStays() throws {
        let p = try makeProject()
        let e = try entry("a.txt", "back")
        _ = try register(p, [e])
        try release(e.hash, at: StoreTestCase.baseTime)
        _ = try register(p, [e], now: StoreTestCase.baseTime.addingTimeInterval(10))  // the same content again
        let report = try GarbageCollector(store: store, grace: 0).run()
        XCTAssertEqual(report.blobsRemoved, 0)
        XCTAssertTrue(store.blobs.contains(e.hash))
    }

    func testBlobsNoRowEverNamedGoAtOnceWithTempLeftovers() throws {
        let orphan = try store.blobs.put(Array("left by a killed seal".utf8))
        let leftover = store.root + "/tmp/copy-\(orphan.hex)-1-2"
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover, contents: Data("partial".utf8)))
        // An import's batch writes its temp files beside their blobs, in the fan-out folder.
        let beside = pathParent(store.blobs.path(of: orphan)) + "/.put-1-2"
        XCTAssertTrue(FileManager.default.createFile(atPath: beside, contents: Data("partial too".utf8)))
        XCTAssertEqual(Set(store.blobs.tempFiles()), [leftover, beside])
        XCTAssertEqual(try GarbageCollector(store: store).run(dryRun: true).tempFilesRemoved, 2)
        let report = try GarbageCollector(store: store).run()
        XCTAssertEqual(report.orphansRemoved, 1)
        XCTAssertEqual(report.bytesFreed, 21)
        XCTAssertEqual(report.tempFilesRemoved, 2)
        XCTAssertFalse(store.blobs.contains(orphan))
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover))
        XCTAssertFalse(FileManager.default.fileExists(atPath: beside))
        XCTAssertEqual(store.blobs.tempFiles(), [])
    }

    /// A blob stored by an adopter whose rows are not committed yet looks like an orphan; gc
    /// must wait for the adopter's hold and then see its row.
    func testGCWaitsForAnAdopterInFlightAndKeepsWhatItRegisters() throws {
        let p = try makeProject()
        let staged = try stage(p, "big.csv", "a,b\n1,2\n")
        let (hash, size) = try BlobStore.hash(fileAt: PathBytes(staged))
        let adopted = try store.blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: hash, size: size)],
                                            referenced: store.catalog.referencedBlobs)
        XCTAssertTrue(store.blobs.contains(hash))

        let finished = expectation(description: "gc finished")
        let result = LockedBox<GarbageCollector.Report?>(nil)
        let root = store.root
        Thread.detachNewThread {
            // Its own store object, as a `gc` command in another process would have.
            let other = try! ArtifactStore(root: root, create: false)
            result.set(try! GarbageCollector(store: other, grace: 0).run())
            finished.fulfill()
        }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertNil(result.get(), "gc went on while a blob was held")
        var e = StagedEntry(path: PathBytes("big.csv"), hash: hash, size: size, mode: 0o644, mtimeNs: 0, uid: 1000, gid: 1000)
        e.kind = .regular
        _ = try register(p, [e])
        store.blobs.release(adopted)
        wait(for: [finished], timeout: 30)
        XCTAssertEqual(result.get()?.orphansRemoved, 0)
        XCTAssertTrue(store.blobs.contains(hash))
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    /// Another process (here a second store object, with its own lock descriptor) found a blob
    /// this one stored; this one's rows fail: discard must leave the blob for the other.
    func testDiscardLeavesABlobAnotherProcessHolds() throws {
        let p = try makeProject()
        let staged = try stage(p, "x.bin", "shared content")
        let (hash, size) = try BlobStore.hash(fileAt: PathBytes(staged))
        let mine = try store.blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: hash, size: size, copying: true)],
                                         referenced: store.catalog.referencedBlobs)
        XCTAssertEqual(mine.stored, [hash])
        let other = try ArtifactStore(root: root, create: false)
        let theirs = try XCTUnwrap(other.blobs.holdExisting([hash]))
        store.blobs.discard(mine, referenced: store.catalog.referencedBlobs)
        XCTAssertTrue(store.blobs.contains(hash), "discard removed a blob another process holds")
        other.blobs.release(theirs)
        // Nobody holds it and no row names it: gc takes it at once.
        XCTAssertEqual(try GarbageCollector(store: store).run().orphansRemoved, 1)
        XCTAssertFalse(store.blobs.contains(hash))
        // With nobody else holding, discard removes what it stored itself.
        let again = try store.blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: hash, size: size, copying: true)],
                                          referenced: store.catalog.referencedBlobs)
        store.blobs.discard(again, referenced: store.catalog.referencedBlobs)
        XCTAssertFalse(store.blobs.contains(hash))
    }

    /// A blob row whose name is not a SHA-256 (verify's bad_name) never stops gc.
    func testAMalformedBlobRowDoesNotStopGC() throws {
        let p = try makeProject()
        let e = try entry("a.txt", "gone")
        _ = try register(p, [e])
        try release(e.hash, at: StoreTestCase.baseTime)
        try store.catalog.ownerWrite { db in
            try db.execute(sql: "INSERT INTO blob (hash, size, refcount, created_at) VALUES ('not-a-hash', 1, 0, 0)")
        }
        XCTAssertEqual(try GarbageCollector(store: store, grace: 0).run().blobsRemoved, 1)
        XCTAssertEqual(try store.catalog.malformedBlobNames(), ["not-a-hash"], "left for verify to report")
    }

    func testDurations() {
        XCTAssertEqual(DurationText.seconds("0"), 0)
        XCTAssertEqual(DurationText.seconds("90s"), 90)
        XCTAssertEqual(DurationText.seconds("30m"), 1_800)
        XCTAssertEqual(DurationText.seconds("1h30m"), 5_400)
        XCTAssertEqual(DurationText.seconds("7d"), 604_800)
        XCTAssertEqual(DurationText.seconds("1y2w"), 31_536_000 + 1_209_600)
        for bad in ["", "1", "h", "1x", "-1h", "1.5h", "1h 2m"] { XCTAssertNil(DurationText.seconds(bad), bad) }
        XCTAssertEqual(DurationText.text(5_400), "1h30m")
        XCTAssertEqual(DurationText.text(0), "0")
        XCTAssertEqual(DurationText.text(30 * 86_400), "30d")
    }
}

/// A value shared between a test and a thread it started.
final class LockedBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}
