import ArtifactCore
import Foundation
import XCTest

final class BlobStoreTests: StoreTestCase {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    static let emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let millionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

    var blobs: BlobStore { store.blobs }

    func contents(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func writeScratch(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = root + "/scratch/" + name
        try FileManager.default.createDirectory(atPath: pathParent(path), withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: put

    func testPutIsContentAddressedAndIdempotent() throws {
        let h = try blobs.put(Array("abc".utf8))
        XCTAssertEqual(h.hex, Self.abc)
        XCTAssertTrue(blobs.contains(h))
        XCTAssertEqual(try contents(blobs.path(of: h)), Array("abc".utf8))

        let again = try blobs.put(Array("abc".utf8))
        XCTAssertEqual(again, h)
        XCTAssertEqual(try blobFileCount(), 1, "the same content is stored once")

        let other = try blobs.put(Array("abd".utf8))
        XCTAssertNotEqual(other, h)
        XCTAssertEqual(Set(try blobs.allHashes()), [h, other])

        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/tmp")
        XCTAssertEqual(leftovers, [], "put leaves no temp files behind")
    }

    func testPathUsesTwoCharacterFanOut() throws {
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        XCTAssertEqual(blobs.root, root + "/objects")
        XCTAssertEqual(blobs.path(of: h), root + "/objects/ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

        try blobs.put(Array("abc".utf8))
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/objects/ba", isDirectory: &isDir))
        XCTAssertTrue(isDir.boolValue)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/objects/ba"),
                       [String(Self.abc.dropFirst(2))])
    }

    func testBlobHashAcceptsOnlyLowercaseSHA256Hex() {
        XCTAssertNotNil(BlobHash(hex: Self.abc))
        XCTAssertNil(BlobHash(hex: Self.abc.uppercased()))
        XCTAssertNil(BlobHash(hex: String(Self.abc.dropLast())))
        XCTAssertNil(BlobHash(hex: String(Self.abc.dropLast()) + "g"))
        XCTAssertEqual(BlobHash.empty.hex, Self.emptySHA)
    }

    // MARK: adopt

    func testAdoptHardLinksTheStagedFile() throws {
        let staged = try writeScratch("staged", Array("abc".utf8))
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        let adopted = try blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: h, size: 3)], referenced: { _ in [] })
        XCTAssertEqual(adopted.stored, [h])
        XCTAssertTrue(blobs.contains(h))
        XCTAssertEqual(try inode(blobs.path(of: h)), try inode(staged), "adopt links, it does not copy")
        let touched = adopted.syncedFolders
        XCTAssertFalse(adopted.syncedFilesystem)
        XCTAssertTrue(touched.contains(pathParent(blobs.path(of: h))), "the fan-out folder must be fsynced: \(touched)")
        XCTAssertTrue(touched.contains(blobs.root), "a new fan-out folder makes objects/ need an fsync: \(touched)")
    }

    func testAdoptReturnsFalseWhenTheContentIsAlreadyStored() throws {
        let h = try blobs.put(Array("abc".utf8))
        let storedInode = try inode(blobs.path(of: h))
        let staged = try writeScratch("staged", Array("abc".utf8))
        XCTAssertEqual(try blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: h, size: 3)], referenced: { _ in [] }).stored, [])
        XCTAssertEqual(try inode(blobs.path(of: h)), storedInode, "the stored copy is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: staged), "adopt never removes the staged name")
        XCTAssertEqual(try blobFileCount(), 1)
    }

    func testAdoptReplacesAStoredCopyOfTheWrongSize() throws {
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        let target = blobs.path(of: h)
        try FileManager.default.createDirectory(atPath: pathParent(target), withIntermediateDirectories: true)
        try Data("ab".utf8).write(to: URL(fileURLWithPath: target))  // damaged: truncated
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .wrongSize(actual: 2))

        let staged = try writeScratch("staged", Array("abc".utf8))
        XCTAssertEqual(try blobs.adopt([BlobStore.Adoption(path: PathBytes(staged), hash: h, size: 3)], referenced: { _ in [] }).stored, [h])
        XCTAssertEqual(try contents(target), Array("abc".utf8))
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .ok)
        XCTAssertEqual(try inode(target), try inode(staged))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/tmp"), [],
                       "the replacement's temp name is gone")
    }

    func testAdoptCopiesWhenAskedAndDiscardRemovesOnlyWhatItStored() throws {
        let kept = try writeScratch("kept", Array("abc".utf8))
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        let adopted = try blobs.adopt([BlobStore.Adoption(path: PathBytes(kept), hash: h, size: 3, copying: true)], referenced: { _ in [] })
        XCTAssertEqual(adopted.stored, [h])
        XCTAssertNotEqual(try inode(blobs.path(of: h)), try inode(kept), "a copy: writes to the kept name never reach the blob")
        try Data("xyz".utf8).write(to: URL(fileURLWithPath: kept))
        XCTAssertEqual(try contents(blobs.path(of: h)), Array("abc".utf8))
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .ok)
        blobs.discard(adopted, referenced: { _ in [] })
        XCTAssertFalse(blobs.contains(h))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/tmp"), [])
    }

    /// Two adopters of the same content: the second found the first's blob and may commit
    /// rows naming it, so the first's failure must not remove it; nor a blob a committed
    /// row names. Only when neither holds does discard remove what it stored.
    func testDiscardNeverRemovesABlobSomeoneElseNeeds() throws {
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        let first = try blobs.adopt([BlobStore.Adoption(path: PathBytes(try writeScratch("a", Array("abc".utf8))), hash: h, size: 3)],
                                    referenced: { _ in [] })
        let second = try blobs.adopt([BlobStore.Adoption(path: PathBytes(try writeScratch("b", Array("abc".utf8))), hash: h, size: 3)],
                                     referenced: { _ in [] })
        XCTAssertEqual(first.stored, [h])
        XCTAssertEqual(second.stored, [], "found stored")
        blobs.discard(first, referenced: { _ in [] })
        XCTAssertTrue(blobs.contains(h), "the second adopter still holds it")
        blobs.release(second)  // its rows are committed

        let third = try blobs.adopt([BlobStore.Adoption(path: PathBytes(try writeScratch("c", Array("xyz".utf8))),
                                                        hash: try BlobStore.hash(fileAt: PathBytes(root + "/scratch/c")).0, size: 3)],
                                    referenced: { _ in [] })
        blobs.discard(third, referenced: { Set($0) })
        XCTAssertTrue(blobs.contains(third.held[0]), "a committed row names it")
        let fourth = try blobs.adopt([BlobStore.Adoption(path: PathBytes(try writeScratch("d", Array("123".utf8))),
                                                         hash: try BlobStore.hash(fileAt: PathBytes(root + "/scratch/d")).0, size: 3)],
                                     referenced: { _ in [] })
        blobs.discard(fourth, referenced: { _ in [] })
        XCTAssertFalse(blobs.contains(fourth.held[0]), "nobody needs it")
    }

    /// Past `syncfsThreshold` files one syncfs replaces the fsyncs; every file is stored, and
    /// identical content counts once.
    func testAdoptOfManyFilesSyncsTheFilesystemOnce() throws {
        var adoptions: [BlobStore.Adoption] = []
        for i in 0...BlobStore.syncfsThreshold {
            let bytes = Array("file \(i % 10)".utf8)
            let path = try writeScratch("many-\(i)", bytes)
            let (hash, size) = try BlobStore.hash(fileAt: PathBytes(path))
            adoptions.append(BlobStore.Adoption(path: PathBytes(path), hash: hash, size: size))
        }
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertTrue(adopted.syncedFilesystem)
        XCTAssertEqual(adopted.stored.count, 10)
        XCTAssertEqual(Set(adopted.stored), Set(adoptions.map(\.hash)))
        XCTAssertEqual(try blobFileCount(), 10)
    }

    /// Content in memory past `PackFile.sizeLimit` bytes, so not packed: `bytes` and then as
    /// many filler bytes.
    static func unpackable(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 7, count: PackFile.sizeLimit) }

    /// Content in memory, many at once, too large to pack (an import's files up to 1 MiB): each
    /// distinct content is written once (a repeat and a blob already stored cost no write), the
    /// filesystem is synced, and no temp file stays in `tmp/`.
    func testAdoptOfManyContentsWritesEachOnceAndLeavesNoTempFile() throws {
        let before = try blobs.put(Self.unpackable(Array("content 0".utf8)))
        var adoptions: [BlobStore.Adoption] = []
        for i in 0...BlobStore.syncfsThreshold * 2 { adoptions.append(BlobStore.Adoption(content: Self.unpackable(Array("content \(i % 10)".utf8)))) }
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertTrue(adopted.syncedFilesystem)
        XCTAssertEqual(adopted.stored.count, 9)
        XCTAssertFalse(adopted.stored.contains(before))
        XCTAssertEqual(Set(adopted.stored).count, 9)
        XCTAssertEqual(try blobFileCount(), 10)
        for i in 0..<10 {
            let path = blobs.path(of: BlobStore.Adoption(content: Self.unpackable(Array("content \(i)".utf8))).hash)
            XCTAssertEqual(try contents(path), Self.unpackable(Array("content \(i)".utf8)))
            // Read-only, and known by its blob name only (no temp name left linked to it).
            let st = try Syscalls.lstat(path)
            XCTAssertEqual(st.st_mode & 0o777, 0o444, path)
            XCTAssertEqual(st.st_nlink, 1, path)
        }
        XCTAssertEqual(blobs.tempFiles(), [])
        blobs.release(adopted)
    }

    /// Many contents too large to pack are written on several threads, each beside its blob: when some writes
    /// fail (here one fan-out folder is a file), the batch throws one error naming that temp
    /// path, stores nothing and leaves no temp file; with the folder back, the same batch goes
    /// through, its blobs in the batch's order.
    func testAFailedWriteOfManyContentsStoresNothing() throws {
        let adoptions = (0...BlobStore.syncfsThreshold * 4).map { BlobStore.Adoption(content: Self.unpackable(Array("many \($0)".utf8))) }
        let blocked = pathParent(blobs.path(of: adoptions[7].hash))
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: blocked))
        XCTAssertThrowsError(try blobs.adopt(adoptions, referenced: { _ in [] })) { error in
            XCTAssertTrue("\(error)".contains(blocked + "/.put-"), "\(error)")
            XCTAssertEqual("\(error)".split(separator: "\n").count, 1, "\(error)")
        }
        XCTAssertEqual(try blobFileCount(), 0)
        XCTAssertEqual(blobs.tempFiles(), [])
        try FileManager.default.removeItem(atPath: blocked)
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertEqual(adopted.stored, adoptions.map(\.hash), "stored in the batch's order")
        XCTAssertEqual(try blobFileCount(), adoptions.count)
        for a in adoptions { XCTAssertEqual(try contents(blobs.path(of: a.hash)), a.content) }
        XCTAssertEqual(blobs.tempFiles(), [])
        blobs.release(adopted)
    }

    /// A file that is gone stops the batch with its path, and what the batch had stored so far
    /// is removed again (no blob without the row that would have named it).
    func testAFailedAdoptLeavesNothingItStored() throws {
        let good = try writeScratch("good", Array("abc".utf8))
        let h = try XCTUnwrap(BlobHash(hex: Self.abc))
        let missing = PathBytes(root + "/no-such-file")
        XCTAssertThrowsError(try blobs.adopt([BlobStore.Adoption(path: PathBytes(good), hash: h, size: 3),
                                              BlobStore.Adoption(path: missing, hash: .empty, size: 0)],
                                             referenced: { _ in [] })) { error in
            XCTAssertTrue("\(error)".contains("no-such-file"), "\(error)")
        }
        XCTAssertFalse(blobs.contains(h))
        XCTAssertEqual(try blobFileCount(), 0)
    }

    // MARK: hash(fileAt:)

    func testHashOfFileAgreesWithKnownSHA256() throws {
        let (h, size) = try BlobStore.hash(fileAt: PathBytes(try writeScratch("abc", Array("abc".utf8))))
        XCTAssertEqual(h.hex, Self.abc)
        XCTAssertEqual(size, 3)

        let (e, esize) = try BlobStore.hash(fileAt: PathBytes(try writeScratch("empty", [])))
        XCTAssertEqual(e.hex, Self.emptySHA)
        XCTAssertEqual(e, BlobHash.empty)
        XCTAssertEqual(esize, 0)

        let (m, msize) = try BlobStore.hash(fileAt: PathBytes(try writeScratch("million", [UInt8](repeating: 0x61, count: 1_000_000))))
        XCTAssertEqual(m.hex, Self.millionA)
        XCTAssertEqual(msize, 1_000_000)
    }

    func testHashOfFileAcrossReadBufferBoundaries() throws {
        // The hasher reads 1 MiB at a time: exactly one buffer, and several plus one byte.
        for count in [1 << 20, 3 << 20 + 1] {
            var bytes = [UInt8](repeating: 0, count: count)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }
            let (h, size) = try BlobStore.hash(fileAt: PathBytes(try writeScratch("big-\(count)", bytes)))
            XCTAssertEqual(size, Int64(count))
            XCTAssertEqual(h, try blobs.put(bytes), "file hash and in-memory hash agree for \(count) bytes")
        }
    }

    func testHashOfMissingFileThrowsNotFound() {
        XCTAssertArtifactError(.notFound, try BlobStore.hash(fileAt: PathBytes(self.root + "/no-such-file")))
    }

    // MARK: check

    func testCheckReportsOkMissingWrongSizeAndWrongHash() throws {
        let h = try blobs.put(Array("abc".utf8))
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .ok)

        let absent = try XCTUnwrap(BlobHash(hex: String(repeating: "0", count: 64)))
        XCTAssertEqual(blobs.check(absent, expectedSize: 3), .missing)

        let path = blobs.path(of: h)
        try Data("abcd".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .wrongSize(actual: 4))

        try Data("abd".utf8).write(to: URL(fileURLWithPath: path))
        let actual = try XCTUnwrap(BlobHash(hex: "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9"))
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .wrongHash(actual: actual))

        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(blobs.check(h, expectedSize: 3), .missing)
    }
}

final class StreamingHasherTests: XCTestCase {
    func update(_ hasher: inout StreamingHasher, _ text: String, at offset: Int64) {
        Array(text.utf8).withUnsafeBytes { hasher.update($0, at: offset) }
    }

    func testInOrderUpdatesGiveTheTrueHash() {
        var hasher = StreamingHasher()
        update(&hasher, "a", at: 0)
        update(&hasher, "", at: 1)
        update(&hasher, "bc", at: 1)
        XCTAssertFalse(hasher.spoiled)
        XCTAssertEqual(hasher.length, 3)
        XCTAssertEqual(hasher.finalize()?.hex, BlobStoreTests.abc)
    }

    func testNoUpdatesIsTheEmptyHash() {
        XCTAssertEqual(StreamingHasher().finalize(), BlobHash.empty)
    }

    func testAWriteAheadOfTheEndSpoilsIt() {
        var hasher = StreamingHasher()
        update(&hasher, "bc", at: 1)
        update(&hasher, "a", at: 0)
        XCTAssertTrue(hasher.spoiled)
        XCTAssertNil(hasher.finalize())
    }

    func testARewriteOfEarlierBytesSpoilsIt() {
        var hasher = StreamingHasher()
        update(&hasher, "abc", at: 0)
        update(&hasher, "x", at: 1)
        XCTAssertTrue(hasher.spoiled)
        XCTAssertNil(hasher.finalize())
        update(&hasher, "d", at: 3)
        XCTAssertNil(hasher.finalize(), "once spoiled, it stays spoiled")
    }

    func testSpoilByHand() {
        var hasher = StreamingHasher()
        update(&hasher, "abc", at: 0)
        hasher.spoil()
        XCTAssertNil(hasher.finalize())
    }
}
