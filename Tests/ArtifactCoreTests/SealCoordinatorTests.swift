import ArtifactCore
import Foundation
import GRDB
import Synchronization
import XCTest

private struct NotSealed: Error {}

final class SealCoordinatorTests: StoreTestCase {
    var coordinator: SealCoordinator!

    override func setUpWithError() throws {
        try super.setUpWithError()
        coordinator = SealCoordinator(catalog: store.catalog, blobs: store.blobs, staging: store.staging)
    }

    override func tearDownWithError() throws {
        coordinator = nil
        try super.tearDownWithError()
    }

    func incoming(_ p: ProjectID) -> String { store.staging.incomingPath(projectId: p) }

    func incomingContents(_ p: ProjectID) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: incoming(p)).sorted()
    }

    func sealedRun(_ outcome: SealCoordinator.Outcome, file: StaticString = #filePath, line: UInt = #line) throws -> RunRecord {
        guard case .sealed(let run) = outcome else {
            XCTFail("expected .sealed, got \(outcome)", file: file, line: line)
            throw NotSealed()  // ends this test; the failure above is what counts
        }
        return run
    }

    func cleanupRows() throws -> Int {
        try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM seal_cleanup") ?? -1 }
    }

    static let tree: [(String, String)] = [
        ("top.txt", "top level"),
        ("a/one.csv", "1,2,3\n"),
        ("a/b/c/deep.json", "{\"deep\": true}"),
        ("a/b/sibling.txt", "sibling"),
    ]

    func stageTree(_ p: ProjectID) throws {
        for (path, content) in Self.tree { try stage(p, path, content) }
    }

    // MARK: sealing

    func testSealRegistersEveryFileStoresBlobsAndEmptiesIncoming() throws {
        let p = try makeProject()
        try stageTree(p)
        try stage(p, "modes/private.bin", "secret", mode: 0o600)
        try FileManager.default.createDirectory(atPath: incoming(p) + "/empty/inner", withIntermediateDirectories: true)

        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(run.projectId, p)
        XCTAssertEqual(run.status, .completed, "no sink, nothing left to do")
        XCTAssertEqual(run.filesNew, 5)
        XCTAssertEqual(run.filesSuperseded, 0)
        XCTAssertEqual(run.filesDuplicate, 0)
        XCTAssertEqual(run.bytes, Int64(Self.tree.map { $0.1.utf8.count }.reduce(0, +) + 6))
        XCTAssertEqual(try store.catalog.runs(projectId: p).map(\.name), [run.name])

        let files = try store.catalog.files(runId: run.id!)
        XCTAssertEqual(files.map(\.path), ["a/b/c/deep.json", "a/b/sibling.txt", "a/one.csv", "modes/private.bin", "top.txt"])
        for (path, content) in Self.tree + [("modes/private.bin", "secret")] {
            let f = try XCTUnwrap(files.first { $0.path == PathBytes(path) }, path)
            XCTAssertEqual(f.blob, try hash(content), path)
            XCTAssertEqual(f.size, Int64(content.utf8.count), path)
            XCTAssertTrue(store.blobs.contains(f.blob), "blob of \(path) is in objects/")
            XCTAssertEqual(store.blobs.check(f.blob, expectedSize: f.size), .ok, path)
            XCTAssertEqual(try String(contentsOfFile: store.blobs.path(of: f.blob), encoding: .utf8), content)
        }
        XCTAssertEqual(files.first { $0.path == "modes/private.bin" }?.mode, 0o600)
        XCTAssertEqual(files.first { $0.path == "top.txt" }?.mode, 0o644)

        XCTAssertEqual(try store.catalog.runSubdirectories(runId: run.id!, parent: "").map(\.name), ["a", "empty", "modes"])
        XCTAssertEqual(try store.catalog.runSubdirectories(runId: run.id!, parent: "a/b").map(\.name), ["c"])
        XCTAssertEqual(try store.catalog.runSubdirectories(runId: run.id!, parent: "empty").map(\.name), ["inner"])

        XCTAssertEqual(try incomingContents(p), [], "incoming/ is empty again, nested folders included")
        XCTAssertEqual(try cleanupRows(), 0, "the cleanup record is forgotten once the files are gone")
        for blob in try store.catalog.blobs() { XCTAssertEqual(blob.refcount, 1) }
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    func testSealingIdenticalContentAgainIsDuplicateAndAddsNoBlob() throws {
        let p = try makeProject()
        try stageTree(p)
        let first = try sealedRun(try coordinator.seal(projectId: p))
        let blobsBefore = try blobFileCount()
        XCTAssertEqual(blobsBefore, Self.tree.count)

        try stageTree(p)
        let second = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertGreaterThan(second.name, first.name)
        XCTAssertEqual(second.filesDuplicate, Int64(Self.tree.count))
        XCTAssertEqual(second.filesNew, 0)
        XCTAssertEqual(second.filesSuperseded, 0)
        XCTAssertEqual(try blobFileCount(), blobsBefore, "no new blob files")
        XCTAssertEqual(try store.catalog.files(runId: second.id!).map(\.status), Array(repeating: .duplicate, count: Self.tree.count))
        for blob in try store.catalog.blobs() { XCTAssertEqual(blob.refcount, 2) }
        XCTAssertEqual(try incomingContents(p), [])

        // One changed file among the same ones: superseded, and exactly one new blob.
        try stageTree(p)
        try stage(p, "top.txt", "top level, edited")
        let third = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(third.filesSuperseded, 1)
        XCTAssertEqual(third.filesDuplicate, Int64(Self.tree.count - 1))
        XCTAssertEqual(try blobFileCount(), blobsBefore + 1)
    }

    func testIdenticalFilesInOneSealShareOneBlob() throws {
        let p = try makeProject()
        try stage(p, "x/copy1", "same bytes")
        try stage(p, "y/copy2", "same bytes")
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(run.filesNew, 2)
        XCTAssertEqual(try blobFileCount(), 1)
        XCTAssertEqual(try store.catalog.blob(try hash("same bytes"))?.refcount, 2)
        XCTAssertEqual(try incomingContents(p), [])
    }

    func testSealUsesAHashComputedWhileWriting() throws {
        let p = try makeProject()
        let path = try stage(p, "f.txt", "abc")
        let h = try hash("abc")
        coordinator.hashes.store(ino: try inode(path), hash: h, size: 3)
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(try store.catalog.files(runId: run.id!).first?.blob, h)
        XCTAssertNil(coordinator.hashes.lookup(ino: try inode(store.blobs.path(of: h)), size: 3),
                     "the cached hash is forgotten after the seal")
    }

    func testACachedHashOfAnotherSizeIsIgnored() throws {
        let p = try makeProject()
        let path = try stage(p, "f.txt", "abc")
        coordinator.hashes.store(ino: try inode(path), hash: try hash("ab"), size: 2)
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(try store.catalog.files(runId: run.id!).first?.blob, try hash("abc"))
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    func testSealIsBusyWhileAWriterIsOpen() throws {
        let p = try makeProject()
        try stageTree(p)
        let state = coordinator.state(p)
        state.lock.withLock { $0.openWriters = 1 }

        guard case .busy = try coordinator.seal(projectId: p) else { return XCTFail("expected .busy") }
        XCTAssertEqual(try store.catalog.runs(projectId: p), [])
        XCTAssertEqual(try incomingContents(p), ["a", "top.txt"], "the staged files stay")
        XCTAssertEqual(try store.catalog.blobs(), [])

        state.lock.withLock { $0.openWriters = 0 }
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(run.filesNew, Int64(Self.tree.count))
    }

    func testSealOfAnEmptyIncomingIsEmpty() throws {
        let p = try makeProject()
        guard case .empty = try coordinator.seal(projectId: p) else { return XCTFail("expected .empty") }
        XCTAssertEqual(try store.catalog.runs(projectId: p), [])

        // Folders are part of the tree (SPEC §1), empty ones too: they seal as a run of folders.
        try FileManager.default.createDirectory(atPath: incoming(p) + "/only/folders", withIntermediateDirectories: true)
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(try store.catalog.runSubdirectories(runId: run.id!, parent: "only").map(\.name), ["folders"])
        XCTAssertEqual(try incomingContents(p), [])
    }

    func testSealTellsTheSinkAndLeavesTheRunInProgress() throws {
        final class Sink: RunSealedSink, Sendable {
            let runs = Mutex<[RunRecord]>([])
            func runSealed(_ run: RunRecord) { runs.withLock { $0.append(run) } }
        }
        let sink = Sink()
        coordinator.sink = sink
        let p = try makeProject()
        try stage(p, "f", "x")
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(run.status, .inProgress, "its stages have yet to run")
        XCTAssertNil(run.completedAt)
        XCTAssertEqual(sink.runs.withLock { $0.map(\.name) }, [run.name])
    }

    // MARK: failure and recovery

    func testAFailureInTheMiddleLeavesStagedFilesAndRegistersNoRun() throws {
        let p = try makeProject()
        let firstPath = try stage(p, "first.txt", "first staged file")
        let secondPath = try stage(p, "sub/second.txt", "second staged file")
        let first = try hash("first staged file"), second = try hash("second staged file")
        XCTAssertNotEqual(first.hex.prefix(2), second.hex.prefix(2))

        // A regular file where the second blob's fan-out folder belongs: mkdir/link fail with
        // ENOTDIR whatever our privileges, after the first file may already have been adopted.
        let blocker = pathParent(store.blobs.path(of: second))
        XCTAssertTrue(FileManager.default.createFile(atPath: blocker, contents: Data("not a folder".utf8)))

        XCTAssertThrowsError(try coordinator.seal(projectId: p))
        XCTAssertEqual(try store.catalog.runs(projectId: p), [], "no run is registered")
        XCTAssertEqual(try store.catalog.blobs(), [], "no blob is referenced")
        XCTAssertEqual(try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM file") }, 0)
        XCTAssertEqual(try cleanupRows(), 0)
        XCTAssertEqual(try String(contentsOfFile: firstPath, encoding: .utf8), "first staged file")
        XCTAssertEqual(try String(contentsOfFile: secondPath, encoding: .utf8), "second staged file")
        XCTAssertEqual(try incomingContents(p), ["first.txt", "sub"])

        // Once the cause is gone, the same staged files seal normally.
        try FileManager.default.removeItem(atPath: blocker)
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(run.filesNew, 2)
        XCTAssertEqual(try incomingContents(p), [])
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    func testRecoverRemovesOnlyStagedFilesOfACommittedRun() throws {
        let p = try makeProject()
        // A seal that committed its run and then died before removing the staged files: one
        // whose inode still matches, and one name that now holds a newer file (other inode).
        let committed = try stage(p, "done/committed.txt", "committed")
        let replaced = try stage(p, "replaced.txt", "newer content written after the crash")
        let untouched = try stage(p, "untouched.txt", "never sealed")
        let committedIno = try inode(committed), replacedIno = try inode(replaced)
        _ = try register(p, [try entry("done/committed.txt", "committed"), try entry("replaced.txt", "old")],
                         cleanup: [(committed, committedIno), (replaced, replacedIno &+ 1_000_003)])
        XCTAssertEqual(try cleanupRows(), 2)

        try coordinator.recover()

        XCTAssertFalse(FileManager.default.fileExists(atPath: committed), "registered and same inode: removed")
        XCTAssertEqual(try String(contentsOfFile: replaced, encoding: .utf8), "newer content written after the crash")
        XCTAssertEqual(try String(contentsOfFile: untouched, encoding: .utf8), "never sealed")
        XCTAssertEqual(try cleanupRows(), 0)
        XCTAssertEqual(try store.catalog.runs(projectId: p).count, 1, "recover registers nothing itself")

        // What is left seals as a new run; the committed file is not registered twice.
        let run = try sealedRun(try coordinator.seal(projectId: p))
        XCTAssertEqual(try store.catalog.files(runId: run.id!).map(\.path), ["replaced.txt", "untouched.txt"])
        XCTAssertEqual(run.filesSuperseded, 1)
        XCTAssertEqual(run.filesNew, 1)
        XCTAssertEqual(try incomingContents(p), [])
    }

    func testRecoverQueuesStagedFilesForTheNextQuietSeal() throws {
        let p = try makeProject()
        let idle = try makeProject("idle")
        try stage(p, "left/over.txt", "staged before a restart")
        XCTAssertNoThrow(try coordinator.recover())
        XCTAssertEqual(try incomingContents(p), ["left"], "recover itself seals nothing")
        XCTAssertEqual(try store.catalog.runs(projectId: p), [])

        coordinator.sealQuietProjects(quietPeriod: 3_600_000_000_000)
        XCTAssertEqual(try store.catalog.runs(projectId: p), [], "not quiet for an hour yet")

        let state = coordinator.state(p)
        state.lock.withLock { $0.openWriters = 1 }
        coordinator.sealQuietProjects(quietPeriod: 0)
        XCTAssertEqual(try store.catalog.runs(projectId: p), [], "never while a writer is open")

        state.lock.withLock { $0.openWriters = 0 }
        coordinator.sealQuietProjects(quietPeriod: 0)
        let runs = try store.catalog.runs(projectId: p)
        XCTAssertEqual(runs.count, 1)
        XCTAssertEqual(try store.catalog.files(runId: runs[0].id!).map(\.path), ["left/over.txt"])
        XCTAssertEqual(try incomingContents(p), [])
        XCTAssertEqual(try store.catalog.runs(projectId: idle), [], "a project with nothing staged gets no run")

        coordinator.sealQuietProjects(quietPeriod: 0)
        XCTAssertEqual(try store.catalog.runs(projectId: p).count, 1, "nothing pending, nothing sealed")
    }
}
