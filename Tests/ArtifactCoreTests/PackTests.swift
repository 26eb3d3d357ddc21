@_spi(CatalogTables) import ArtifactCore
import Foundation
import XCTest

/// Small blobs an import stores in a batch live in pack files (`PackFile`): stored once, found
/// and read like loose blobs, checked against their names, quarantined, collected and
/// rewritten by gc, reported and repaired by verify.
final class PackTests: StoreTestCase {
    var blobs: BlobStore { store.blobs }

    /// `n` distinct small contents, adopted as one batch (as an import's), and released.
    @discardableResult
    func packBatch(_ n: Int, prefix: String = "small") throws -> [BlobStore.Adoption] {
        let adoptions = (0..<n).map { BlobStore.Adoption(content: Array("\(prefix) \($0)".utf8)) }
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        blobs.release(adopted)
        return adoptions
    }

    func packFiles() -> [String] { blobs.packFilesOnDisk().packs }

    /// Registers `adoptions` as files of a run of a new project (so that rows name them).
    func registerAll(_ adoptions: [BlobStore.Adoption], project: String = "alpha") throws -> RunRecord {
        let p = try makeProject(project)
        return try register(p, adoptions.enumerated().map { i, a in
            StagedEntry(path: PathBytes("f\(i)"), hash: a.hash, size: a.size, mode: 0o644, mtimeNs: 0, uid: 1000, gid: 1000)
        })
    }

    func releaseAll(_ hashes: [BlobHash], at time: Date) throws {
        try store.catalog.ownerWrite { db in
            for hash in hashes {
                let n = try Int.fetchOne(db, sql: "SELECT refcount FROM blob WHERE hash = ?", arguments: [hash]) ?? 0
                try BlobReferences.remove(db, Array(repeating: hash, count: n), now: time.timeIntervalSince1970)
            }
        }
    }

    /// Flips one byte of `hash`'s packed copy in its pack file.
    func damage(_ hash: BlobHash) throws {
        let loc = try XCTUnwrap(try store.catalog.packedLocations([hash])[hash])
        let fd = open(blobs.packPath(loc.pack), O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, off_t(loc.offset)), 1)
        byte ^= 0xff
        XCTAssertEqual(pwrite(fd, &byte, 1, off_t(loc.offset)), 1)
    }

    func testABatchOfSmallContentsGoesIntoOnePackStoredOnce() throws {
        let loose = try blobs.put(Array("small 3".utf8))  // one the store holds already, loose
        var adoptions = (0..<40).map { BlobStore.Adoption(content: Array("small \($0)".utf8)) }
        adoptions += adoptions.prefix(5)  // repeats cost nothing
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertTrue(adopted.syncedFilesystem)
        XCTAssertEqual(adopted.stored.count, 39, "each distinct content once, not the loose one")
        XCTAssertFalse(adopted.stored.contains(loose))
        XCTAssertEqual(adopted.stored, adoptions.prefix(40).map(\.hash).filter { $0 != loose }, "in the batch's order")
        blobs.release(adopted)

        XCTAssertEqual(packFiles().count, 1)
        let pack = blobs.packPath(packFiles()[0])
        let st = try Syscalls.lstat(pack)
        XCTAssertEqual(st.st_mode & 0o777, 0o444, "a pack is never written again")
        XCTAssertEqual(try blobFileCount(), 40)
        XCTAssertEqual(try store.catalog.allPackedHashes().count, 39)
        for a in adoptions {
            XCTAssertTrue(blobs.contains(a.hash))
            XCTAssertEqual(try blobs.read(a.hash), a.content)
        }
        XCTAssertEqual(blobs.location(of: loose), .loose(blobs.path(of: loose)))

        // The pack describes itself: its trailer lists what the index lists.
        let fd = open(pack, O_RDONLY)
        defer { close(fd) }
        let listed = try XCTUnwrap(PackFile.entries(fd: fd, size: Int64(st.st_size)))
        XCTAssertEqual(Set(listed.map(\.hash)), Set(try store.catalog.allPackedHashes()))

        // The same batch again stores nothing and writes no pack.
        let again = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertEqual(again.stored, [])
        blobs.release(again)
        XCTAssertEqual(packFiles().count, 1)
        XCTAssertEqual(blobs.tempFiles(), [])
    }

    /// A seal or commit of content the store holds packed links nothing: one file alone or a
    /// batch of staged files. Its discard (rows never committed) leaves the packed blobs, which
    /// it did not store, where they are.
    func testStagedFilesWithPackedContentAreNotStoredAgain() throws {
        let packed = try packBatch(40, prefix: "staged")
        func staged(_ i: Int) throws -> BlobStore.Adoption {
            let path = root + "/scratch-\(i)"
            try Data(packed[i].content!).write(to: URL(fileURLWithPath: path))
            return BlobStore.Adoption(path: PathBytes(path), hash: packed[i].hash, size: packed[i].size)
        }
        let one = try blobs.adopt([try staged(0)], referenced: { _ in [] })
        XCTAssertEqual(one.stored, [])
        blobs.discard(one, referenced: { _ in [] })
        let many = try blobs.adopt(try (0..<20).map(staged), referenced: { _ in [] })
        XCTAssertEqual(many.stored, [])
        blobs.discard(many, referenced: { _ in [] })
        XCTAssertEqual(Set(try store.catalog.allPackedHashes()), Set(packed.map(\.hash)))
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: blobs.root).filter { $0.count > 2 }, [], "no loose copy")
    }

    /// A pack that cannot be written (here `packs/` is a file) stops the batch with one line
    /// naming it; nothing is stored or indexed and no temp file stays. With `packs/` back,
    /// the same batch goes through.
    func testAFailedPackWriteStoresNothing() throws {
        try FileManager.default.removeItem(atPath: blobs.packsDir)
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: blobs.packsDir))
        let adoptions = (0..<40).map { BlobStore.Adoption(content: Array("p \($0)".utf8)) }
        XCTAssertThrowsError(try blobs.adopt(adoptions, referenced: { _ in [] })) { error in
            XCTAssertTrue("\(error)".contains(blobs.packsDir + "/.put-"), "\(error)")
            XCTAssertEqual("\(error)".split(separator: "\n").count, 1, "\(error)")
        }
        XCTAssertEqual(try blobFileCount(), 0)
        XCTAssertEqual(try store.catalog.packs(), [])
        try FileManager.default.removeItem(atPath: blobs.packsDir)
        try FileManager.default.createDirectory(atPath: blobs.packsDir, withIntermediateDirectories: false)
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertEqual(adopted.stored.count, 40)
        blobs.release(adopted)
        XCTAssertEqual(blobs.tempFiles(), [])
    }

    /// A batch whose rows are never committed: discard forgets the packed blobs it stored, and
    /// gc then removes the pack no row points into.
    func testDiscardForgetsPackedBlobsAndGcRemovesTheEmptyPack() throws {
        let adoptions = (0..<40).map { BlobStore.Adoption(content: Array("d \($0)".utf8)) }
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        blobs.discard(adopted, referenced: { _ in [] })
        XCTAssertEqual(try blobFileCount(), 0)
        XCTAssertFalse(blobs.contains(adoptions[0].hash))
        XCTAssertEqual(packFiles().count, 1, "the bytes stay until gc")
        let report = try GarbageCollector(store: store, grace: 3_600).run()
        XCTAssertEqual(report.packsRemoved, 1)
        XCTAssertEqual(packFiles(), [])
        XCTAssertEqual(try store.catalog.packs(), [])
    }

    /// Packed blobs no row names (a process died after indexing them), and a pack file never
    /// indexed (died between naming and indexing it) or left under its temp name: gc removes
    /// them at once, as it does loose leftovers.
    func testGcRemovesNeverNamedPackedBlobsAndUnindexedPacks() throws {
        let orphans = try packBatch(40, prefix: "orphan")
        let kept = try packBatch(40, prefix: "kept")
        _ = try registerAll(kept)
        let unindexed = blobs.packPath(PackFile.newName())
        try Data("leftover".utf8).write(to: URL(fileURLWithPath: unindexed))
        let temp = blobs.packsDir + "/" + BlobStore.fanoutTempPrefix + PackFile.newName()
        try Data("temp".utf8).write(to: URL(fileURLWithPath: temp))

        let dry = try GarbageCollector(store: store, grace: 3_600).run(dryRun: true)
        XCTAssertEqual(dry.orphansRemoved, 40)
        XCTAssertEqual(dry.packsRemoved, 2, "the unindexed pack, and the orphans' pack once empty")
        XCTAssertEqual(dry.tempFilesRemoved, 1)
        XCTAssertEqual(packFiles().count, 3, "a dry run deletes nothing")

        let report = try GarbageCollector(store: store, grace: 3_600).run()
        XCTAssertEqual(report.orphansRemoved, 40)
        XCTAssertEqual(report.bytesFreed, orphans.reduce(0) { $0 + $1.size })
        XCTAssertEqual(report.packsRemoved, 2)
        XCTAssertEqual(report.tempFilesRemoved, 1)
        XCTAssertFalse(Syscalls.exists(unindexed))
        XCTAssertFalse(Syscalls.exists(temp))
        XCTAssertEqual(packFiles().count, 1)
        for a in orphans { XCTAssertFalse(blobs.contains(a.hash)) }
        for a in kept { XCTAssertEqual(try blobs.read(a.hash), a.content) }
    }

    /// A pack more than half of which no row needs is rewritten with only what is still
    /// needed; the rest stays readable, and a pack all of which is needed is left alone.
    func testGcRewritesAMostlyDeadPack() throws {
        let all = try packBatch(40, prefix: "mixed")
        let run = try registerAll(all)
        XCTAssertNotNil(run.id)
        let old = try XCTUnwrap(packFiles().first)
        let t0 = StoreTestCase.baseTime
        try releaseAll(all.prefix(30).map(\.hash), at: t0)

        let report = try GarbageCollector(store: store, grace: 60, now: t0.addingTimeInterval(61)).run()
        XCTAssertEqual(report.blobsRemoved, 30)
        XCTAssertEqual(report.packsRewritten, 1)
        XCTAssertEqual(report.packsRemoved, 0)
        XCTAssertFalse(packFiles().contains(old))
        XCTAssertEqual(packFiles().count, 1)
        for a in all.prefix(30) { XCTAssertFalse(blobs.contains(a.hash)) }
        for a in all.suffix(10) { XCTAssertEqual(try blobs.read(a.hash), a.content) }
        let packs = try store.catalog.packs()
        XCTAssertEqual(packs.map(\.blobs), [10])

        let again = try GarbageCollector(store: store, grace: 60, now: t0.addingTimeInterval(61)).run()
        XCTAssertEqual(again.packsRewritten + again.packsRemoved, 0, "a pack that is all needed stays")
        for a in all.suffix(10) { XCTAssertEqual(blobs.check(a.hash, expectedSize: a.size), .ok) }
        XCTAssertEqual(Set(try store.catalog.allPackedHashes()), Set(all.suffix(10).map(\.hash)))
    }

    /// A packed blob whose bytes changed in its pack: verify --read-data names it; --fix moves
    /// a copy of it to quarantine/ and forgets it, so reads answer EIO (.corrupt); the same
    /// content adopted again is stored anew and heals it.
    func testVerifyFindsAndQuarantinesADamagedPackedBlob() throws {
        let all = try packBatch(40, prefix: "v")
        _ = try registerAll(all)
        let bad = all[4]
        try damage(bad.hash)
        XCTAssertEqual(blobs.check(bad.hash, expectedSize: bad.size, readData: false), .ok, "same size: only reading finds it")

        let report = try Verifier(store: store).run(.init(readData: 1))
        XCTAssertEqual(report.problems.map(\.kind), ["corrupt_blob"])
        XCTAssertEqual(report.problems.first?.blob, bad.hash.hex)

        let fixed = try Verifier(store: store).run(.init(readData: 1, fix: true))
        XCTAssertEqual(fixed.problems.first?.fixed, "moved to quarantine/")
        XCTAssertFalse(blobs.contains(bad.hash))
        XCTAssertNotNil(blobs.quarantineReason(bad.hash))
        XCTAssertArtifactError(.corrupt, try blobs.read(bad.hash))
        XCTAssertEqual(try Verifier(store: store).run(.init(readData: 1)).problems.map(\.kind), ["quarantined_blob"])

        let healed = try blobs.adopt([BlobStore.Adoption(content: bad.content!)], referenced: { Set($0) })
        blobs.release(healed)
        XCTAssertEqual(try blobs.read(bad.hash), bad.content)
        XCTAssertTrue(try Verifier(store: store).run(.init(readData: 1)).problems.isEmpty)
    }

    /// `readPacked` (what the mount serves a packed blob from) checks the bytes against the
    /// name and size at every open: damage quarantines the blob and throws `.corrupt` saying
    /// why; every later open throws too.
    func testReadingADamagedPackedBlobQuarantinesIt() throws {
        let all = try packBatch(40, prefix: "r")
        _ = try registerAll(all)
        XCTAssertEqual(try blobs.readPacked(all[0].hash, size: all[0].size), all[0].content)
        XCTAssertNil(try blobs.readPacked(try hash("in no pack"), size: 10), "not packed")
        try damage(all[1].hash)
        XCTAssertArtifactError(.corrupt, try blobs.readPacked(all[1].hash, size: all[1].size))
        XCTAssertNotNil(blobs.quarantineReason(all[1].hash))
        XCTAssertNil(try blobs.readPacked(all[1].hash, size: all[1].size), "forgotten: the mount answers EIO from now on")
        XCTAssertEqual(try blobs.readPacked(all[2].hash, size: all[2].size), all[2].content, "the pack's other blobs are fine")

        // A copy (a stage's input, a working tree's copy-up) is checked the same way.
        try damage(all[3].hash)
        let out = root + "/copy"
        XCTAssertArtifactError(.corrupt, try blobs.copy(all[3].hash, to: PathBytes(out), mode: 0o644))
        XCTAssertFalse(Syscalls.exists(out))
        try blobs.copy(all[5].hash, to: PathBytes(out), mode: 0o644)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: out))), all[5].content)
    }

    /// A pack whose file is gone: verify names each blob it held as missing; gc goes on (a
    /// pack due for a rewrite that cannot be read is counted and left); the same content
    /// stored again heals every blob.
    func testAMissingPackIsReportedBlobByBlobAndHealsWhenStoredAgain() throws {
        let all = try packBatch(40, prefix: "m")
        _ = try registerAll(all)
        try releaseAll(all.prefix(30).map(\.hash), at: StoreTestCase.baseTime)
        for name in packFiles() { try FileManager.default.removeItem(atPath: blobs.packPath(name)) }
        let report = try Verifier(store: store).run(.init())
        XCTAssertEqual(Set(report.problems.filter { $0.kind != "refcount_mismatch" }.map(\.kind)), ["missing_blob"])
        XCTAssertEqual(report.problems.filter { $0.kind == "missing_blob" }.count, 40)

        let gc = try GarbageCollector(store: store, grace: 60, now: StoreTestCase.baseTime.addingTimeInterval(61)).run()
        XCTAssertEqual(gc.blobsRemoved, 30)
        XCTAssertEqual(gc.packsUnreadable, 1)

        let again = try blobs.adopt(all, referenced: { _ in [] })
        XCTAssertEqual(Set(again.stored), Set(all.map(\.hash)), "a location whose pack is gone does not count as stored")
        blobs.release(again)
        for a in all.suffix(10) { XCTAssertEqual(try blobs.read(a.hash), a.content) }
    }

    /// A batch (a seal of many files) where a staged file has the same content as a symlink's
    /// target packed in the same call: stored once, packed; a discard then leaves no loose
    /// link to the staged file, which stays writable.
    func testAStagedFileWithTheContentOfABlobPackedInTheSameBatchIsNotLinked() throws {
        var adoptions = (0..<40).map { BlobStore.Adoption(content: Array("target \($0)".utf8)) }
        let path = root + "/staged-same"
        try Data("target 7".utf8).write(to: URL(fileURLWithPath: path))
        adoptions.append(BlobStore.Adoption(path: PathBytes(path), hash: adoptions[7].hash, size: 8))
        let adopted = try blobs.adopt(adoptions, referenced: { _ in [] })
        XCTAssertEqual(adopted.stored.count, 40, "each content once")
        XCTAssertEqual(blobs.location(of: adoptions[7].hash), .packed(try XCTUnwrap(try store.catalog.packedLocations([adoptions[7].hash]).values.first)))
        blobs.discard(adopted, referenced: { _ in [] })
        XCTAssertEqual(try Syscalls.lstat(path).st_nlink, 1, "the staged file is linked nowhere")
        XCTAssertEqual(try blobFileCount(), 0)
    }

    /// A discard leaves a packed blob that an import's journal names (another import found it
    /// stored and journaled it before this adopter failed), as gc would.
    func testDiscardKeepsWhatAnImportJournalNames() throws {
        let adoptions = (0..<40).map { BlobStore.Adoption(content: Array("journaled \($0)".utf8)) }
        let adopted = try blobs.adopt(adoptions, referenced: store.catalog.referencedBlobs)
        try store.catalog.ownerWrite { db in
            try db.execute(sql: """
                INSERT INTO import_journal (target, source, path, kind, blob, size, mode, mtime_ns, ctime_ns, uid, gid, ino, dev,
                                            nlink, rdev, stored, pass)
                VALUES ('project:x', x'2f', x'61', 'file', ?, 12, 420, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1)
                """, arguments: [adoptions[3].hash])
        }
        blobs.discard(adopted, referenced: store.catalog.referencedBlobs)
        XCTAssertTrue(blobs.contains(adoptions[3].hash), "journaled by another import")
        XCTAssertFalse(blobs.contains(adoptions[4].hash))
    }
}
