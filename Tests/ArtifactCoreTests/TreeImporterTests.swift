@_spi(CatalogTables) import ArtifactCore
import Crypto
import Foundation
import GRDB
import XCTest

final class TreeImporterTests: StoreTestCase {
    /// Stops an import after a batch, as a kill would (the journal keeps what was recorded).
    private struct Stop: Error {}

    private func makeTree(_ files: [String: String]) throws -> String {
        let dir = root + "/src-\(UUID().uuidString.prefix(6))"
        for (path, content) in files {
            let full = dir + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: full, contents: Data(content.utf8)))
        }
        return dir
    }

    private func journalBlobs() throws -> [BlobHash] {
        try sql { try BlobHash.fetchAll($0, sql: "SELECT blob FROM import_journal WHERE blob IS NOT NULL AND kind = 'file'") }
    }

    func testImportIsOneRunAndTheJournalGoes() throws {
        let dir = try makeTree(["a.txt": "alpha", "sub/b.csv": "x,y\n1,2\n", "sub/deeper/c.txt": "gamma"])
        let summary = try TreeImporter(store: store, source: dir, target: .project("imp")).run()
        XCTAssertEqual(summary.filesNew, 3)
        XCTAssertEqual(summary.bytesStored, 5 + 8 + 5)
        let project = try XCTUnwrap(store.catalog.project(named: "imp"))
        let runs = try store.catalog.runs(projectId: project.id!)
        XCTAssertEqual(runs.map(\.name), [summary.run!])
        XCTAssertEqual(runs.first?.action, "import")
        XCTAssertEqual(try store.catalog.files(runId: runs[0].id!).map(\.path.description).sorted(), ["a.txt", "sub/b.csv", "sub/deeper/c.txt"])
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM import_journal") }, 0)
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM import_done") }, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/tmp/import"), [], "no temp file stays")
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    /// A killed import leaves blobs that only its journal names; gc must keep them, also a
    /// blob whose rows were released long ago, and the rerun must not read them again.
    func testGCKeepsJournaledBlobsAndARerunReusesThem() throws {
        let p = try makeProject()
        let released = try entry("old.txt", "beta")
        _ = try register(p, [released])
        try store.catalog.ownerWrite { try BlobReferences.remove($0, [released.hash], now: StoreTestCase.baseTime.timeIntervalSince1970) }

        let dir = try makeTree(["1.txt": "alpha", "2.txt": "beta", "3.txt": "gamma", "4.txt": "delta"])
        let first = try TreeImporter(store: store, source: dir, target: .project("imp"))
        first.batchSize = 1
        first.afterBatch = { if $0 == 2 { throw Stop() } }
        XCTAssertThrowsError(try first.run())
        let journaled = try journalBlobs()
        XCTAssertEqual(Set(journaled), [try hash("alpha"), try hash("beta")])

        let report = try GarbageCollector(store: store, grace: 0, now: Date().addingTimeInterval(86_400)).run()
        XCTAssertEqual(report.orphansRemoved, 0, "a journaled blob is named")
        XCTAssertEqual(report.blobsRemoved, 0, "a released blob that an import journaled stays")
        for h in journaled { XCTAssertTrue(store.blobs.contains(h)) }

        let second = try TreeImporter(store: store, source: dir, target: .project("imp"))
        let summary = try second.run()
        XCTAssertEqual(summary.filesReused, 2)
        XCTAssertEqual(summary.filesNew, 4)
        let project = try XCTUnwrap(store.catalog.project(named: "imp"))
        XCTAssertEqual(try store.catalog.runs(projectId: project.id!).count, 1)
        for h in journaled { XCTAssertTrue(store.blobs.contains(h)) }
        // (No verify here: the test dropped old.txt's reference behind its row on purpose.)
    }

    /// A batch's packs are indexed by its journal rows only (the blob rows come with the
    /// registration): gc run between a kill and the rerun must keep them whole, the rerun reuse
    /// them, and the registered blobs point into them.
    func testGCKeepsAKilledImportsPacksAndTheRerunRegistersThem() throws {
        var files: [String: String] = [:]
        for i in 0..<120 { files[String(format: "d%d/f%03d.txt", i / 40, i)] = "packed content \(i)\n" }
        let dir = try makeTree(files)
        let first = try TreeImporter(store: store, source: dir, target: .project("imp"))
        first.batchSize = 40
        first.afterBatch = { if $0 == 2 { throw Stop() } }
        XCTAssertThrowsError(try first.run())
        let packs = store.blobs.packFilesOnDisk().packs
        XCTAssertEqual(packs.count, 2, "one pack per batch of 40 small files")
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM import_journal WHERE pack IS NOT NULL") }, 80)
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blob") }, 0, "no blob row before the registration")

        let report = try GarbageCollector(store: store, grace: 0, now: Date().addingTimeInterval(86_400)).run()
        XCTAssertEqual(report.packsRemoved, 0, "a pack a journal points into stays")
        XCTAssertEqual(report.packsRewritten, 0)
        XCTAssertEqual(report.orphansRemoved, 0)
        XCTAssertEqual(store.blobs.packFilesOnDisk().packs, packs)

        let summary = try TreeImporter(store: store, source: dir, target: .project("imp")).run()
        XCTAssertEqual(summary.filesReused, 80)
        XCTAssertEqual(summary.filesNew, 120)
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blob WHERE pack IS NOT NULL AND refcount = 1") }, 120)
        for (path, content) in files {
            let hash = BlobHash(digest: SHA256.hash(data: Data(content.utf8)))
            XCTAssertEqual(try store.blobs.readPacked(hash, size: Int64(content.utf8.count)), Array(content.utf8), path)
        }
        XCTAssertTrue(try Verifier(store: store).run(.init(readData: 1)).ok)
        let after = try GarbageCollector(store: store, grace: 0, now: Date().addingTimeInterval(86_400)).run()
        XCTAssertEqual(after.packsRemoved + after.packsRewritten + after.blobsRemoved + after.orphansRemoved, 0)
    }

    /// Content that an earlier batch of the same import packed is not packed again: its rows
    /// point at the first copy.
    func testContentRepeatedAcrossBatchesIsPackedOnce() throws {
        var files: [String: String] = [:]
        for i in 0..<120 { files[String(format: "d%d/f%03d.txt", i / 40, i)] = "same forty \(i % 40)\n" }
        let dir = try makeTree(files)
        let importer = try TreeImporter(store: store, source: dir, target: .project("imp"))
        importer.batchSize = 40
        let summary = try importer.run()
        XCTAssertEqual(summary.filesNew, 120)
        XCTAssertEqual(summary.bytesStored, Int64(Set(files.values).reduce(0) { $0 + $1.utf8.count }))
        XCTAssertEqual(store.blobs.packFilesOnDisk().packs.count, 1, "batches 2 and 3 packed nothing")
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blob WHERE pack IS NOT NULL AND refcount = 3") }, 40)
        XCTAssertTrue(try Verifier(store: store).run(.init(readData: 1)).ok)
    }

    /// Packed blobs of a dataset's head that went to quarantine come back when the same folder
    /// is imported again (packed again, as 40 small files are), though the version has nothing
    /// to change: as a seal of the same content heals a damaged blob.
    func testImportingADatasetAgainHealsQuarantinedPackedBlobs() throws {
        var files: [String: String] = [:]
        for i in 0..<40 { files[String(format: "f%02d.txt", i)] = "dataset content \(i)\n" }
        let dir = try makeTree(files)
        let first = try TreeImporter(store: store, source: dir, target: .dataset("ds", branch: "main", message: nil))
        XCTAssertNotNil(try first.run().version)
        let contents = files.values.map { Array($0.utf8) }
        for content in contents {
            let hash = BlobHash(digest: SHA256.hash(data: content))
            try store.blobs.quarantine(hash, reason: "test")
            XCTAssertNil(try store.blobs.readPacked(hash, size: Int64(content.count)), "no location after quarantine")
        }

        let again = try TreeImporter(store: store, source: dir, target: .dataset("ds", branch: "main", message: nil)).run()
        XCTAssertNil(again.version, "nothing to change")
        XCTAssertEqual(again.filesDuplicate, 40)
        for content in contents {
            let hash = BlobHash(digest: SHA256.hash(data: content))
            XCTAssertEqual(try store.blobs.readPacked(hash, size: Int64(content.count)), content)
        }
        XCTAssertTrue(try Verifier(store: store).run(.init(readData: 1)).ok)
    }

    func testUnreadableFileIsReportedAndTheRunCarriesTheError() throws {
        let dir = try makeTree(["ok.txt": "fine", "bad.txt": "secret"])
        let importer = try TreeImporter(store: store, source: dir, target: .project("imp"))
        importer.refusedPaths = ["bad.txt"]
        var heard: [TreeImporter.Failure] = []
        let summary = try importer.run(failed: { heard.append($0) })
        XCTAssertEqual(summary.filesFailed, 1)
        XCTAssertEqual(heard.map(\.path), [dir + "/bad.txt"])
        XCTAssertEqual(summary.filesNew, 1)
        let project = try XCTUnwrap(store.catalog.project(named: "imp"))
        let run = try XCTUnwrap(store.catalog.runs(projectId: project.id!).first)
        XCTAssertEqual(run.status, .completedWithErrors)
        XCTAssertNotNil(run.error)
    }

    /// A version's tree equals the folder: what the branch has and the folder lacks goes.
    func testDatasetVersionEqualsTheFolder() throws {
        let one = try makeTree(["keep.csv": "a,b\n1,2\n", "gone/x.txt": "x", "change.txt": "v1"])
        let v1 = try TreeImporter(store: store, source: one, target: .dataset("ds", branch: "main", message: "first")).run()
        XCTAssertEqual(v1.filesNew, 3)
        let two = try makeTree(["keep.csv": "a,b\n1,2\n", "change.txt": "v2", "new.txt": "n"])
        let v2 = try TreeImporter(store: store, source: two, target: .dataset("ds", branch: "main", message: nil)).run()
        XCTAssertEqual(v2.filesNew, 1)
        XCTAssertEqual(v2.filesSuperseded, 1)
        XCTAssertEqual(v2.filesDeleted, 1)
        let ds = try XCTUnwrap(store.catalog.dataset(named: "ds"))
        let head = try store.catalog.resolve(datasetId: ds.id!, reference: "main")
        XCTAssertEqual(head.name, v2.version)
        let items = try VersionTrees(catalog: store.catalog).allItems(version: head.id!)
        XCTAssertEqual(items.keys.map(\.description).sorted(), ["change.txt", "keep.csv", "new.txt"])
        XCTAssertNotNil(items["keep.csv"]?.schema, "schemas as the commit infers them")

        let same = try TreeImporter(store: store, source: two, target: .dataset("ds", branch: "main", message: nil)).run()
        XCTAssertNil(same.version, "an identical tree makes no version")
        XCTAssertEqual(try store.catalog.versions(datasetId: ds.id!).count, 2)
    }

    /// An imported file's block checksums are computed in the pass that copies it, and kept
    /// with its blob (a run and a version alike), so reads of it are checked from the start.
    func testImportRecordsBlockChecksums() throws {
        let dir = root + "/src-big"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let big = (0..<(2 * BlockSums.blockSize + 77)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try Data(big).write(to: URL(fileURLWithPath: dir + "/big.bin"))
        _ = try TreeImporter(store: store, source: dir, target: .project("imp")).run()
        XCTAssertEqual(try store.catalog.blockSums(of: BlobHash(digest: SHA256.hash(data: big))), BlockSums.of(big))
        let other = root + "/src-big2"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let big2 = big.map { $0 ^ 0x5A }
        try Data(big2).write(to: URL(fileURLWithPath: other + "/big.bin"))
        _ = try TreeImporter(store: store, source: other, target: .dataset("ds", branch: "main", message: "big")).run()
        XCTAssertEqual(try store.catalog.blockSums(of: BlobHash(digest: SHA256.hash(data: big2))), BlockSums.of(big2))
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    /// A small file (read whole into memory) that changes after the import listed it is
    /// reported by path and left out; the rest is imported. Small files are read ahead in
    /// groups of 256, so the change comes while the first group is batched and `z.txt`, in
    /// the second, is not read yet.
    func testASmallFileThatChangesAfterTheListingIsReported() throws {
        var files = ["z.txt": "zeta"]
        for i in 0..<300 { files[String(format: "f%03d.txt", i)] = "file \(i)" }
        let dir = try makeTree(files)
        let importer = try TreeImporter(store: store, source: dir, target: .project("imp"))
        var failures: [TreeImporter.Failure] = []
        var grown = false
        let summary = try importer.run(progress: { state in
            if !grown { grown = true; try? Data("zeta, longer now".utf8).write(to: URL(fileURLWithPath: dir + "/z.txt")) }
        }, failed: { failures.append($0) })
        XCTAssertEqual(failures.map(\.path), [dir + "/z.txt"])
        XCTAssertTrue(failures.first?.reason.contains("changed") ?? false, "\(failures)")
        XCTAssertEqual(summary.filesNew, 300)
        XCTAssertEqual(summary.filesFailed, 1)
    }

    /// Big files are hashed as they are read and written behind the hash (O_DIRECT where the
    /// filesystem takes it, the last partial block through the page cache): the blob, its name
    /// and its block sums agree, for a size with a tail shorter than a block and a size that
    /// ends on a buffer's boundary, from a folder on the store's filesystem and from tmpfs.
    func testBigFilesAreHashedAndWrittenBehindOnAnyFilesystem() throws {
        let sizes = [Int(TreeImporter.pipelinedSize) + 3 * BlockSums.blockSize + 12_345, Int(TreeImporter.pipelinedSize) + 4 << 20]
        let shm = "/dev/shm/afs-import-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: shm) }
        for (i, dir) in [root + "/src-huge", shm].enumerated() {
            for (k, size) in sizes.enumerated() {
                let folder = dir + "/\(k)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                var bytes = [UInt8](repeating: 0, count: size)
                for j in stride(from: 0, to: size, by: 4096) { bytes[j] = UInt8(truncatingIfNeeded: j / 4096 + i + k) }
                bytes[size - 1] = 0xEE
                try Data(bytes).write(to: URL(fileURLWithPath: folder + "/huge.bin"))
                _ = try TreeImporter(store: store, source: folder, target: .project("imp\(i)-\(k)")).run()
                let hash = BlobHash(digest: SHA256.hash(data: bytes))
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.blobs.path(of: hash))), Data(bytes), folder)
                XCTAssertEqual(try store.catalog.blockSums(of: hash), BlockSums.of(bytes), folder)
            }
        }
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }
}
