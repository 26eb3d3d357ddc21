import ArtifactCore
import Crypto
import Foundation
import XCTest

/// The streaming hash of staged writes, now computed behind the writer on the
/// `BackgroundHasher`'s thread: what it leaves for the seal is the hash of the file's bytes,
/// or nothing (the seal reads the file again), never a wrong hash.
final class StagedFileWritesTests: StoreTestCase {
    var coordinator: SealCoordinator!
    var incoming: IncomingChanges!

    override func setUpWithError() throws {
        try super.setUpWithError()
        coordinator = SealCoordinator(catalog: store.catalog, blobs: store.blobs, staging: store.staging)
        incoming = IncomingChanges(seals: coordinator)
    }

    override func tearDownWithError() throws {
        incoming = nil
        coordinator = nil
        try super.tearDownWithError()
    }

    /// A staged file open for writing, as the FUSE adapter makes one at create(2).
    struct Writer: Sendable {
        let file: StagedFileWrites
        let fd: Int32
        let path: String
    }

    func openWriter(_ p: ProjectID, _ name: String) throws -> Writer {
        let path = try stage(p, name, "")
        let fd = open(path, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let file = StagedFileWrites(projectId: p, ino: try inode(path))
        incoming.changing(p) { $0.beginWriting(file, fd: fd, truncated: true) }
        return Writer(file: file, fd: fd, path: path)
    }

    /// pwrite, then record, as the WRITE handler does.
    func write(_ w: Writer, _ bytes: [UInt8], at offset: Int) { Self.write(w, bytes, at: offset) }

    static func write(_ w: Writer, _ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { raw in
            let generation = w.file.generation
            XCTAssertEqual(pwrite(w.fd, raw.baseAddress, raw.count, off_t(offset)), raw.count)
            w.file.record(raw, at: Int64(offset), through: w.fd, since: generation)
        }
    }

    func close(_ w: Writer) -> BlobHash? {
        incoming.endWriting(w.file, fd: w.fd)
        Foundation.close(w.fd)  // before the hashing is done: it must not need the writer's descriptor
        coordinator.waitForHashing()
        let size = (try? FileManager.default.attributesOfItem(atPath: w.path)[.size] as? NSNumber)?.int64Value ?? -1
        return coordinator.hashes.lookup(ino: w.file.ino, size: size)?.hash
    }

    func sha(_ path: String) throws -> BlobHash {
        BlobHash(digest: SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    func randomBytes(_ n: Int) -> [UInt8] { Self.randomBytes(n) }
    static func randomBytes(_ n: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: n)
        bytes.withUnsafeMutableBytes { raw in
            var i = 0
            while i < n {
                var word = generator.next()
                let take = min(8, n - i)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: i).copyMemory(from: $0.baseAddress!, byteCount: take) }
                i += take
            }
        }
        return bytes
    }

    func testLargeAndSmallWritesInOrderLeaveTheFilesHash() throws {
        let p = try makeProject()
        let w = try openWriter(p, "big.bin")
        var offset = 0
        // Large writes go to the hashing thread; the small ones between them must queue
        // behind them, not be hashed first.
        for size in [1 << 20, 100, 300 << 10, 7, 1 << 20, 64 << 10, 1, 2 << 20] {
            write(w, randomBytes(size), at: offset)
            offset += size
        }
        let cached = try XCTUnwrap(close(w), "writes in order leave a hash for the seal")
        XCTAssertEqual(cached, try sha(w.path))
        // And the block checksums a seal records, the same as one read of the file gives.
        let size = Int64(offset)
        let blocks = try XCTUnwrap(coordinator.hashes.lookup(ino: w.file.ino, size: size)?.blocks)
        XCTAssertEqual(blocks.sums.count, BlockSums.count(forSize: size))
        XCTAssertEqual(blocks, try BlobStore.digest(fileAt: PathBytes(w.path)).blocks)
    }

    func testATruncationDropsQueuedWritesOfTheOldContent() throws {
        let p = try makeProject()
        let w = try openWriter(p, "t.bin")
        for i in 0..<8 { write(w, randomBytes(1 << 20), at: i << 20) }
        XCTAssertEqual(ftruncate(w.fd, 0), 0)
        incoming.truncated(w.file, to: 0)
        write(w, randomBytes(512 << 10), at: 0)
        write(w, randomBytes(10), at: 512 << 10)
        let cached = try XCTUnwrap(close(w), "the writes after the truncation are in order from byte 0")
        XCTAssertEqual(cached, try sha(w.path))
    }

    func testAHoleOrAWriteOutOfOrderLeavesNoHash() throws {
        let p = try makeProject()
        let hole = try openWriter(p, "hole.bin")
        write(hole, randomBytes(1 << 20), at: 0)
        write(hole, randomBytes(1 << 20), at: 3 << 20)
        XCTAssertNil(close(hole))

        let back = try openWriter(p, "back.bin")
        write(back, randomBytes(1 << 20), at: 1 << 20)
        write(back, randomBytes(1 << 20), at: 0)
        XCTAssertNil(close(back))

        // A range overwritten, perhaps before the hashing thread has read it back.
        let over = try openWriter(p, "over.bin")
        write(over, randomBytes(1 << 20), at: 0)
        write(over, randomBytes(100), at: 0)
        XCTAssertNil(close(over))

        // The seal hashes all three again from disk and names their blobs right.
        let outcome = try coordinator.seal(projectId: p)
        guard case .sealed(let run) = outcome else { return XCTFail("expected a seal, got \(outcome)") }
        XCTAssertEqual(try store.catalog.files(runId: run.id!).count, 3)
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    /// Truncating a closed file by path (no writer) drops the hash its last writer left:
    /// `cp a f; truncate -s 0 f; truncate -s N f` must not be sealed under a's hash.
    func testATruncationWithoutAWriterForgetsTheHashLeftBefore() throws {
        let p = try makeProject()
        let w = try openWriter(p, "f.bin")
        write(w, randomBytes(4096), at: 0)
        XCTAssertNotNil(close(w), "the writer left its hash")
        XCTAssertEqual(truncate(w.path, 0), 0)
        incoming.truncated(w.file, to: 0)
        XCTAssertEqual(truncate(w.path, 4096), 0)
        incoming.truncated(w.file, to: 4096)
        XCTAssertNil(coordinator.hashes.lookup(ino: w.file.ino, size: 4096))
        let outcome = try coordinator.seal(projectId: p)
        guard case .sealed(let run) = outcome else { return XCTFail("expected a seal, got \(outcome)") }
        XCTAssertEqual(try store.catalog.files(runId: run.id!).first?.blob, try hash(String(repeating: "\0", count: 4096)))
    }

    /// A writer that opens a file again while the hash of its last close is still being
    /// computed, and changes it in place (same size): the late hash of the old content must
    /// never be kept for the new one, whether the new writer comes through the same
    /// `StagedFileWrites` or a new one for the same inode (the kernel forgot and found it again).
    func testALateHashOfOldContentIsNeverKeptForNewContent() throws {
        let p = try makeProject()
        for round in 0..<20 {
            let w = try openWriter(p, "again\(round).bin")
            for i in 0..<8 { write(w, randomBytes(1 << 20), at: i << 20) }
            incoming.endWriting(w.file, fd: w.fd)  // hashing goes on behind
            let file = round % 2 == 0 ? w.file : StagedFileWrites(projectId: p, ino: w.file.ino)
            let fd = open(w.path, O_RDWR)
            incoming.changing(p) { $0.beginWriting(file, fd: fd, truncated: false) }
            Self.write(Writer(file: file, fd: fd, path: w.path), [0x42], at: 5)
            incoming.endWriting(file, fd: fd)
            Foundation.close(fd)
            Foundation.close(w.fd)
            coordinator.waitForHashing()
            if let cached = coordinator.hashes.lookup(ino: w.file.ino, size: 8 << 20) {
                XCTAssertEqual(cached.hash, try sha(w.path), "round \(round): a hash of content the file no longer has")
            }
        }
    }

    func testManyFilesWrittenAtOnceEachGetTheirOwnHash() throws {
        let p = try makeProject()
        // 8 files of 6 MiB written at once, each by its own thread.
        let writers = try (0..<8).map { try openWriter(p, "f\($0).bin") }
        DispatchQueue.concurrentPerform(iterations: writers.count) { i in
            for chunk in 0..<12 { Self.write(writers[i], Self.randomBytes(512 << 10), at: chunk * (512 << 10)) }
        }
        for w in writers {
            let cached = try XCTUnwrap(close(w))
            XCTAssertEqual(cached, try sha(w.path))
        }
    }
}
