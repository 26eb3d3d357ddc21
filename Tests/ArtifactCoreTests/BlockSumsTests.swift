@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB
import XCTest

final class BlockSumsTests: StoreTestCase {
    func testXXH64KnownValues() {
        // xxHash's published test vectors for seed 0.
        XCTAssertEqual([UInt8]().withUnsafeBytes { BlockSums.checksum($0) }, 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(Array("abc".utf8).withUnsafeBytes { BlockSums.checksum($0) }, 0x44BC_2CF5_AD77_0999)
    }

    func testStreamingInAnyPiecesGivesTheSameSumsAsWholeBlocks() {
        let size = 2 * BlockSums.blockSize + 12_345
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        var summer = BlockSummer()
        var offset = 0
        for piece in [1, 4095, 700_000, 1 << 20, 3, size] where offset < size {
            let end = min(size, offset + piece)
            bytes[offset..<end].withUnsafeBytes { summer.update($0) }
            offset = end
        }
        let sums = summer.finalize()
        XCTAssertEqual(sums.sums.count, 3)
        for i in 0..<3 {
            let block = bytes[(i * BlockSums.blockSize)..<min(size, (i + 1) * BlockSums.blockSize)]
            XCTAssertTrue(block.withUnsafeBytes { sums.matches(block: i, $0) })
        }
        XCTAssertEqual(BlockSums(encoded: sums.encoded), sums)
        XCTAssertNil(BlockSums(encoded: Data([1, 2, 3])))
        XCTAssertEqual(BlockSums.count(forSize: 0), 0)
        XCTAssertEqual(BlockSums.count(forSize: Int64(BlockSums.blockSize)), 1)
    }

    /// A blob of more than one block keeps its sums in the catalog; a one-block blob keeps none
    /// (its name is its checksum).
    func testRegisteredBlobsKeepTheirSums() throws {
        let p = try makeProject()
        let big = (0..<(BlockSums.blockSize + 10)).map { UInt8(truncatingIfNeeded: $0) }
        let bigHash = try store.blobs.put(big)
        var e = StagedEntry(path: PathBytes("big.bin"), hash: bigHash, size: Int64(big.count), mode: 0o644, mtimeNs: 0, uid: 0, gid: 0)
        e.blocks = BlockSums.of(big)
        _ = try register(p, [e, try entry("small.txt", "small")])
        let stored = try store.catalog.ownerRead { db in
            try Row.fetchAll(db, sql: "SELECT size, blocks FROM blob ORDER BY size").map { ($0["size"] as Int64, $0["blocks"] as Data?) }
        }
        XCTAssertEqual(stored.map(\.0), [5, Int64(big.count)])
        XCTAssertNil(stored[0].1)
        XCTAssertEqual(stored[1].1.flatMap(BlockSums.init(encoded:)), BlockSums.of(big))
    }
}

final class BlobCheckTests: StoreTestCase {
    func testEachBlockIsCheckedOnceAndADamagedOneIsFound() throws {
        let size = 2 * BlockSums.blockSize + 100
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let hash = try store.blobs.put(bytes)
        let path = store.blobs.path(of: hash)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let check = BlobCheck(hash: hash, size: Int64(size), sums: BlockSums.of(bytes))
        XCTAssertNil(try check.firstBadBlock(fd: fd, offset: 0, length: 4096))
        // Damage block 2 behind the open file's back: block 0 was checked and is not read again.
        chmod(path, 0o644)
        let w = open(path, O_WRONLY)
        XCTAssertEqual(pwrite(w, [0xFF], 1, off_t(2 * BlockSums.blockSize + 5)), 1)
        close(w)
        XCTAssertNil(try check.firstBadBlock(fd: fd, offset: 10, length: 100))
        XCTAssertNil(try check.firstBadBlock(fd: fd, offset: Int64(BlockSums.blockSize), length: BlockSums.blockSize))
        XCTAssertEqual(try check.firstBadBlock(fd: fd, offset: Int64(BlockSums.blockSize) + 5, length: 2 * BlockSums.blockSize), 2)
        XCTAssertNil(try check.firstBadBlock(fd: fd, offset: Int64(size), length: 10), "past the end: nothing to check")
    }

    func testAOneBlockBlobIsCheckedByItsName() throws {
        let hash = try store.blobs.put(Array("one block".utf8))
        let path = store.blobs.path(of: hash)
        chmod(path, 0o644)
        try Data("One block".utf8).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        XCTAssertEqual(try BlobCheck(hash: hash, size: 9, sums: nil).firstBadBlock(fd: fd, offset: 0, length: 9), 0)
    }

    /// A reader of an older, damaged copy never moves a good copy stored at the name since.
    func testQuarantineMovesOnlyTheDamagedFile() throws {
        let hash = try store.blobs.put(Array("good".utf8))
        let path = store.blobs.path(of: hash)
        // Held open, as a reader holds it: its inode number cannot be taken by the new copy.
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var damaged = stat()
        XCTAssertEqual(fstat(fd, &damaged), 0)
        try FileManager.default.removeItem(atPath: path)
        _ = try store.blobs.put(Array("good".utf8))  // a good copy, a new inode
        try store.blobs.quarantine(hash, reason: "test", onlyIf: damaged)
        XCTAssertTrue(store.blobs.contains(hash))
        XCTAssertNil(store.blobs.quarantineReason(hash))
        // The file itself goes; a second quarantined copy keeps the first.
        try store.blobs.quarantine(hash, reason: "first")
        _ = try store.blobs.put(Array("good".utf8))
        try store.blobs.quarantine(hash, reason: "second")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.blobs.quarantineDir).sorted(), [hash.hex, hash.hex + ".1"])
    }

    /// A copy made from a blob (a stage's input, a working tree's copy-up) is checked: damaged
    /// content is never handed on, and the blob goes to quarantine.
    func testCopiesOfADamagedBlobAreRefused() throws {
        let hash = try store.blobs.put(Array("stage input".utf8))
        let path = store.blobs.path(of: hash)
        chmod(path, 0o644)
        try Data("stage INPUT".utf8).write(to: URL(fileURLWithPath: path))
        let target = root + "/copy"
        XCTAssertThrowsError(try store.blobs.copy(hash, to: PathBytes(target), mode: 0o444)) { error in
            XCTAssertEqual((error as? ArtifactError)?.code, .corrupt)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "no partial copy stays")
        XCTAssertNotNil(store.blobs.quarantineReason(hash))
        let good = try store.blobs.put(Array("fine".utf8))
        try store.blobs.copy(good, to: PathBytes(target), mode: 0o444)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), Data("fine".utf8))
    }
}
