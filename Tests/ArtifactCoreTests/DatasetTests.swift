@_spi(CatalogTables) import ArtifactCore
import Foundation
import TabularSchemas
import GRDB
import XCTest

/// The dataset core without FUSE: working trees, commits, branches, tags, log, diff, and the
/// O(k) commit cost.
final class DatasetTests: StoreTestCase {
    var trees: VersionTrees!
    var worktrees: Worktrees!
    var committer: DatasetCommitter!

    override func setUpWithError() throws {
        try super.setUpWithError()
        trees = VersionTrees(catalog: store.catalog)
        worktrees = Worktrees(store: store, trees: trees)
        committer = DatasetCommitter(worktrees: worktrees)
    }

    override func tearDownWithError() throws {
        trees = nil; worktrees = nil; committer = nil
        try super.tearDownWithError()
    }

    // MARK: helpers

    func makeDataset(_ name: String = "sales") throws -> (DatasetRecord, RefID) {
        let ds = try store.catalog.createDataset(name: name, uid: 1000, gid: 1000)
        let main = try XCTUnwrap(store.catalog.ref(datasetId: ds.id!, kind: .branch, name: "main"))
        return (ds, main.id!)
    }

    /// Writes `content` to `path` in the working tree, as `cp` would through the mount.
    func write(_ branch: RefID, _ path: String, _ content: String, append: Bool = false) throws {
        let upper: String
        if try worktrees.item(branch: branch, path: PathBytes(path)) == nil {
            upper = try worktrees.create(branch: branch, path: PathBytes(path), mode: 0o644, uid: 1000, gid: 1000, exclusive: true, truncate: true)
        } else {
            upper = try worktrees.openForWrite(branch: branch, path: PathBytes(path), truncate: !append)
        }
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: upper))
        if append { h.seekToEndOfFile() } else { h.truncateFile(atOffset: 0) }
        h.write(Data(content.utf8))
        h.closeFile()
    }

    func read(_ branch: RefID, _ path: String) throws -> String {
        let item = try XCTUnwrap(worktrees.item(branch: branch, path: PathBytes(path)), "no \(path)")
        if let upper = item.upper { return try String(contentsOfFile: worktrees.upperPath(branch, upper), encoding: .utf8) }
        return try String(contentsOfFile: store.blobs.path(of: item.blob!), encoding: .utf8)
    }

    func names(_ branch: RefID, _ dir: String = "") throws -> [String] {
        try worktrees.children(branch: branch, dir: PathBytes(dir)).map(\.name.description)
    }

    @discardableResult
    func commit(_ branch: RefID, _ message: String = "m") throws -> VersionRecord {
        guard case .committed(let v) = try committer.commit(branch: branch, message: message, author: 1000) else {
            XCTFail("nothing committed"); throw ArtifactError(.io, "no commit")
        }
        return v
    }

    func count(_ table: String) throws -> Int {
        try store.catalog.ownerRead { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)")! }
    }

    // MARK: tests

    func testNewDatasetHasEmptyMainAndRejectsBadNames() throws {
        let (ds, main) = try makeDataset()
        XCTAssertEqual(try names(main), [])
        XCTAssertNil(try store.catalog.ref(id: main)?.versionId)
        XCTAssertEqual(try store.catalog.refs(datasetId: ds.id!, kind: .branch).map(\.name), ["main"])
        XCTAssertArtifactError(.alreadyExists, try store.catalog.createDataset(name: "sales", uid: 0, gid: 0))
        for bad in ["", ".hidden", "@x", "a/b", "tab\there"] {
            XCTAssertArtifactError(.invalidName, try store.catalog.createDataset(name: bad, uid: 0, gid: 0), bad)
            XCTAssertArtifactError(.invalidName, try store.catalog.createBranch(datasetId: ds.id!, name: bad, at: nil), bad)
        }
        XCTAssertArtifactError(.nameTooLong, try store.catalog.createDataset(name: String(repeating: "x", count: 256), uid: 0, gid: 0))
    }

    func testCommitMakesAVersionAndUnchangedTreeCommitsNothing() throws {
        let (ds, main) = try makeDataset()
        try write(main, "q1.csv", "a,b\n1,2\n")
        try write(main, "q2.csv", "a,b\n3,4\n")
        let v1 = try commit(main, "first quarter")
        XCTAssertEqual(v1.parentId, nil)
        XCTAssertEqual(v1.changes, 2)
        XCTAssertEqual(try names(main), ["q1.csv", "q2.csv"])
        XCTAssertEqual(try read(main, "q1.csv"), "a,b\n1,2\n")
        XCTAssertEqual(try worktrees.hasChanges(branch: main), false)
        // Upper files are gone; the content lives in the blob store.
        XCTAssertEqual(try Syscalls.listDirectory(worktrees.upperDirectory(main)).count, 0)
        XCTAssertNotNil(try worktrees.item(branch: main, path: "q1.csv")?.blob)
        XCTAssertEqual(try committer.commit(branch: main, message: "again", author: 1000), .unchanged)
        // Rewriting identical bytes is no change either.
        try write(main, "q1.csv", "a,b\n1,2\n")
        XCTAssertEqual(try committer.commit(branch: main, message: "same", author: 1000), .unchanged)
        XCTAssertEqual(try store.catalog.versions(datasetId: ds.id!).count, 1)
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    func testForkIsolationAppendRemoveAndMoveCommitAsOneVersion() throws {
        let (ds, main) = try makeDataset()
        try write(main, "q1.csv", "a\n1\n")
        try write(main, "q2.csv", "a\n2\n")
        let v1 = try commit(main)
        let dev = try store.catalog.createBranch(datasetId: ds.id!, name: "dev", at: v1.id).id!
        try write(dev, "q1.csv", "3\n", append: true)
        try worktrees.unlink(branch: dev, path: "q2.csv")
        _ = try worktrees.mkdir(branch: dev, path: "archive", mode: 0o755, uid: 1000, gid: 1000)
        try worktrees.rename(branch: dev, from: "q1.csv", to: "archive/q1.csv", noReplace: false)
        let v2 = try commit(dev, "dev work")
        XCTAssertEqual(v2.parentId, v1.id)
        XCTAssertEqual(v2.branch, "dev")
        XCTAssertEqual(try names(dev), ["archive"])
        XCTAssertEqual(try read(dev, "archive/q1.csv"), "a\n1\n3\n")
        // main is untouched.
        XCTAssertEqual(try names(main), ["q1.csv", "q2.csv"])
        XCTAssertEqual(try read(main, "q1.csv"), "a\n1\n")
        XCTAssertEqual(try store.catalog.ref(id: main)?.versionId, v1.id)
        // The old version still has its tree.
        let old = try self.trees.allItems(version: v1.id!)
        XCTAssertEqual(Set(old.keys), ["q1.csv", "q2.csv"])
        let new = try self.trees.allItems(version: v2.id!)
        XCTAssertEqual(Set(new.keys), ["archive", "archive/q1.csv"])
    }

    func testRenameFolderMovesEverythingBelowIt() throws {
        let (_, main) = try makeDataset()
        _ = try worktrees.mkdir(branch: main, path: "a", mode: 0o755, uid: 1000, gid: 1000)
        _ = try worktrees.mkdir(branch: main, path: "a/b", mode: 0o755, uid: 1000, gid: 1000)
        try write(main, "a/b/x.txt", "x")
        try write(main, "a/y.txt", "y")
        try commit(main)
        try worktrees.rename(branch: main, from: "a", to: "c", noReplace: false)
        XCTAssertEqual(try names(main), ["c"])
        XCTAssertEqual(try names(main, "c"), ["b", "y.txt"])
        XCTAssertEqual(try read(main, "c/b/x.txt"), "x")
        try commit(main)
        XCTAssertEqual(try names(main), ["c"])
        XCTAssertNil(try worktrees.item(branch: main, path: "a/y.txt"))
        XCTAssertTrue(try Verifier(store: store).run().ok)
    }

    func testPosixErrorsInTheWorkingTree() throws {
        let (_, main) = try makeDataset()
        try write(main, "f", "1")
        _ = try worktrees.mkdir(branch: main, path: "d", mode: 0o755, uid: 0, gid: 0)
        try write(main, "d/g", "2")
        XCTAssertArtifactError(.alreadyExists, try worktrees.mkdir(branch: main, path: "f", mode: 0o755, uid: 0, gid: 0))
        XCTAssertArtifactError(.notFound, try worktrees.mkdir(branch: main, path: "nope/x", mode: 0o755, uid: 0, gid: 0))
        XCTAssertArtifactError(.notEmpty, try worktrees.rmdir(branch: main, path: "d"))
        XCTAssertArtifactError(.isDirectory, try worktrees.unlink(branch: main, path: "d"))
        XCTAssertArtifactError(.notDirectory, try worktrees.rmdir(branch: main, path: "f"))
        XCTAssertArtifactError(.notFound, try worktrees.unlink(branch: main, path: "missing"))
        XCTAssertArtifactError(.alreadyExists, try worktrees.rename(branch: main, from: "f", to: "d/g", noReplace: true))
        XCTAssertArtifactError(.invalidArgument, try worktrees.rename(branch: main, from: "d", to: "d/inside", noReplace: false))
        XCTAssertArtifactError(.nameTooLong, try worktrees.create(branch: main, path: PathBytes(String(repeating: "n", count: 256)), mode: 0o644, uid: 0, gid: 0, exclusive: true, truncate: true))
        // Replacing a file by rename drops the old bytes.
        try worktrees.rename(branch: main, from: "f", to: "d/g", noReplace: false)
        XCTAssertEqual(try read(main, "d/g"), "1")
        XCTAssertEqual(try Syscalls.listDirectory(worktrees.upperDirectory(main)).count, 1)
    }

    func testChmodOfCommittedFileKeepsItsBlobAndCommitsTheMode() throws {
        let (_, main) = try makeDataset()
        try write(main, "run.sh", "echo hi")
        try commit(main)
        let blob = try worktrees.item(branch: main, path: "run.sh")?.blob
        try worktrees.setAttributes(branch: main, path: "run.sh", mode: 0o755, uid: nil, gid: nil, size: nil, mtimeNs: nil)
        let item = try XCTUnwrap(worktrees.item(branch: main, path: "run.sh"))
        XCTAssertEqual(item.mode, 0o755)
        XCTAssertNil(item.upper, "a chmod must not copy bytes")
        let v = try commit(main)
        XCTAssertEqual(v.changes, 1)
        XCTAssertEqual(try worktrees.item(branch: main, path: "run.sh")?.blob, blob)
        // Like git, a version records content and mode: a new mtime alone (touch) is no change,
        // and the committed mtime shows again afterwards.
        let committedMtime = try XCTUnwrap(worktrees.item(branch: main, path: "run.sh")).mtimeNs
        try worktrees.setAttributes(branch: main, path: "run.sh", mode: nil, uid: nil, gid: nil, size: nil, mtimeNs: 1_700_000_000_123_456_789)
        XCTAssertEqual(try committer.commit(branch: main, message: "touch", author: 0), .unchanged)
        XCTAssertEqual(try worktrees.item(branch: main, path: "run.sh")?.mtimeNs, committedMtime)
        XCTAssertEqual(try worktrees.hasChanges(branch: main), false)
        // Truncating copies up, and never writes to the blob.
        try worktrees.setAttributes(branch: main, path: "run.sh", mode: nil, uid: nil, gid: nil, size: 2, mtimeNs: nil)
        XCTAssertEqual(try read(main, "run.sh"), "ec")
        XCTAssertEqual(try String(contentsOfFile: store.blobs.path(of: blob!), encoding: .utf8), "echo hi")
    }

    /// SPEC §3: committing k changed files to an n-file branch costs O(k). Counted in rows and
    /// blobs written, at n = 100,000, not timed.
    func testCommitOfOneFileOnAHundredThousandFileBranchWritesConstantRows() throws {
        let (ds, main) = try makeDataset()
        let n = 100_000
        let shared = try store.blobs.put(Array("same content\n".utf8))
        try store.catalog.ownerWrite { db in
            let insert = try db.makeStatement(sql: """
                INSERT INTO worktree_change (branch_id, path, dir, name, kind, blob, size, mode, mtime_ns, uid, gid)
                VALUES (?, ?, '', ?, 'file', ?, 13, 420, 0, 1000, 1000)
                """)
            for i in 0..<n {
                let name = String(format: "f%06d.txt", i)
                try insert.execute(arguments: [main, name, name, shared])
            }
        }
        try commit(main, "100k files")
        XCTAssertEqual(try count("entry"), n)

        let before = try tableCounts()
        let blobsBefore = try blobFileCount()
        try write(main, "f050000.txt", "changed\n")
        let changes0 = try store.catalog.ownerWrite { $0.totalChangesCount }
        let v = try commit(main, "one file")
        let changes = try store.catalog.ownerWrite { $0.totalChangesCount } - changes0
        let after = try tableCounts()

        XCTAssertEqual(v.changes, 1)
        XCTAssertEqual(after["entry"]! - before["entry"]!, 1, "one entry row for one changed file")
        XCTAssertEqual(after["version"]! - before["version"]!, 1)
        XCTAssertEqual(after["blob"]! - before["blob"]!, 1)
        XCTAssertEqual(after["ref"]! - before["ref"]!, 0)
        XCTAssertEqual(try blobFileCount() - blobsBefore, 1, "one new blob file")
        // Every row the commit inserted, updated or deleted: version, entry, blob, ref, change row.
        XCTAssertLessThanOrEqual(changes, 8, "the commit touched \(changes) rows")
        XCTAssertEqual(try self.trees.children(version: v.id!, dir: "").count, n)
        XCTAssertEqual(try read(main, "f050000.txt"), "changed\n")
        XCTAssertEqual(try read(main, "f050001.txt"), "same content\n")
        _ = ds
    }

    func tableCounts() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for t in ["entry", "version", "blob", "ref", "worktree_change"] { out[t] = try count(t) }
        return out
    }

    /// Trees resolve through long histories and forks from a cold cache (as after a remount),
    /// and a new head extends its parent's cached chain.
    func testDeepHistoryAndForkResolveFromAColdCache() throws {
        let (ds, main) = try makeDataset()
        try write(main, "keep.txt", "root")
        var fork: VersionRecord?
        for i in 1...400 {
            try write(main, "f.txt", "v\(i)")
            let v = try commit(main)
            if i == 150 { fork = v }
        }
        let dev = try store.catalog.createBranch(datasetId: ds.id!, name: "dev", at: fork!.id)
        try write(dev.id!, "f.txt", "dev")
        try commit(dev.id!)
        let head = try XCTUnwrap(store.catalog.ref(id: main)?.versionId)
        let devHead = try XCTUnwrap(store.catalog.ref(id: dev.id!)?.versionId)
        let cold = VersionTrees(catalog: store.catalog)
        func content(_ trees: VersionTrees, _ v: VersionID, _ path: String) throws -> String? {
            guard let item = try trees.item(version: v, path: PathBytes(path)) else { return nil }
            return try String(contentsOfFile: store.blobs.path(of: item.blob!), encoding: .utf8)
        }
        XCTAssertEqual(try content(cold, head, "f.txt"), "v400")
        XCTAssertEqual(try content(cold, devHead, "f.txt"), "dev")
        XCTAssertEqual(try content(cold, fork!.id!, "f.txt"), "v150")
        XCTAssertEqual(try content(cold, devHead, "keep.txt"), "root")
        XCTAssertEqual(try cold.allItems(version: devHead).keys.sorted(), ["f.txt", "keep.txt"])
        XCTAssertEqual(try cold.children(version: fork!.id!, dir: "").keys.sorted(), ["f.txt", "keep.txt"])
        // One more commit on main: its chain extends the cached one and still resolves.
        try write(main, "f.txt", "v401")
        let next = try commit(main)
        XCTAssertEqual(try content(cold, next.id!, "f.txt"), "v401")
        XCTAssertEqual(try content(cold, devHead, "f.txt"), "dev", "dev never sees main's commits")
    }

    func testTagsNeverMoveAndResolve() throws {
        let (ds, main) = try makeDataset()
        try write(main, "a", "1")
        let v1 = try commit(main)
        try write(main, "a", "2")
        let v2 = try commit(main)
        _ = try store.catalog.createTag(datasetId: ds.id!, name: "v1", at: v1.id!)
        XCTAssertArtifactError(.alreadyExists, try store.catalog.createTag(datasetId: ds.id!, name: "v1", at: v2.id!))
        XCTAssertEqual(try store.catalog.resolve(datasetId: ds.id!, reference: "v1").id, v1.id)
        XCTAssertEqual(try store.catalog.resolve(datasetId: ds.id!, reference: "main").id, v2.id)
        XCTAssertEqual(try store.catalog.resolve(datasetId: ds.id!, reference: v1.name).id, v1.id)
        XCTAssertArtifactError(.notFound, try store.catalog.resolve(datasetId: ds.id!, reference: "nope"))
        XCTAssertArtifactError(.invalidName, try store.catalog.createTag(datasetId: ds.id!, name: ".x", at: v1.id!))
        // A name means one thing: no tag named like a branch or a version, nor the other way round.
        XCTAssertArtifactError(.alreadyExists, try store.catalog.createTag(datasetId: ds.id!, name: "main", at: v1.id!))
        XCTAssertArtifactError(.alreadyExists, try store.catalog.createBranch(datasetId: ds.id!, name: "v1", at: v1.id!))
        XCTAssertArtifactError(.invalidArgument, try store.catalog.createTag(datasetId: ds.id!, name: v2.name, at: v1.id!))
        XCTAssertArtifactError(.invalidArgument, try store.catalog.createBranch(datasetId: ds.id!, name: v1.name, at: v1.id!))
        // `@NAME` is always a branch.
        XCTAssertEqual(try store.catalog.resolve(datasetId: ds.id!, reference: "@main").id, v2.id)
        XCTAssertArtifactError(.notFound, try store.catalog.resolve(datasetId: ds.id!, reference: "@v1"))
    }

    func testVersionIdsSortChronologicallyWithinOneSecond() throws {
        let (ds, main) = try makeDataset()
        for i in 0..<12 {
            try write(main, "a", "\(i)")
            _ = try committer.commit(branch: main, message: "\(i)", author: 1000, now: StoreTestCase.baseTime)
        }
        let names = try store.catalog.versions(datasetId: ds.id!).map(\.name)
        XCTAssertEqual(names.count, 12)
        XCTAssertEqual(names, names.sorted())
        XCTAssertEqual(names.first, "20261121T143005Z-001")
    }

    func testLogGraphShowsBothBranches() throws {
        let (ds, main) = try makeDataset()
        try write(main, "a", "1")
        let v1 = try commit(main, "base")
        let dev = try store.catalog.createBranch(datasetId: ds.id!, name: "dev", at: v1.id).id!
        try write(dev, "b", "2")
        try commit(dev, "on dev")
        try write(main, "c", "3")
        try commit(main, "on main")
        let entries = try DatasetHistory.log(catalog: store.catalog, datasetId: ds.id!)
        XCTAssertEqual(entries.map(\.message), ["on main", "on dev", "base"])
        XCTAssertEqual(entries[0].parents, [v1.name])
        XCTAssertEqual(entries[0].refs, ["@main"])
        let text = DatasetHistory.graph(entries)
        XCTAssertTrue(text.contains("|/"), text)
        XCTAssertTrue(text.contains("* version \(v1.name)"), text)
        XCTAssertTrue(text.contains("| * version"), text)
        XCTAssertEqual(DatasetHistory.graph([]), "(no versions yet)\n")
    }

    /// A version that adds many tabular files shows a few schemas in text and all in JSON.
    func testLogTextShowsAFewSchemasPerVersionAndJSONAll() throws {
        let (ds, main) = try makeDataset()
        for i in 0..<13 { try write(main, String(format: "t%02d.csv", i), "a,b\n\(i),x\n") }
        try commit(main)
        let all = try DatasetHistory.log(catalog: store.catalog, datasetId: ds.id!)
        XCTAssertEqual(all[0].schemas.count, 13)
        XCTAssertEqual(all[0].omittedSchemas, 0)
        let limited = try DatasetHistory.log(catalog: store.catalog, datasetId: ds.id!, schemaLimit: DatasetHistory.schemasShownPerVersion)
        XCTAssertEqual(limited[0].schemas.sorted.map { $0.name.description }, (0..<10).map { String(format: "t%02d.csv", $0) })
        let text = DatasetHistory.graph(limited)
        XCTAssertTrue(text.contains("schema t09.csv: 1 row [a:integer, b:string]"), text)
        XCTAssertFalse(text.contains("t10.csv"), text)
        XCTAssertTrue(text.contains("... and 3 more tabular files"), text)
        XCTAssertEqual(try DatasetHistory.logText(catalog: store.catalog, datasetId: ds.id!), text)
    }

    /// A first version (sales.csv, gone.txt, same.txt) committed, then one change of each
    /// kind staged: sales.csv gains a column, gone.txt goes, new.jsonl comes.
    func stageOneChangeOfEachKind(_ main: RefID, rewritingSame: Bool = false) throws -> VersionRecord {
        try write(main, "sales.csv", "region,amount\neu,1\n")
        try write(main, "gone.txt", "x")
        try write(main, "same.txt", "s")
        let v1 = try commit(main)
        if rewritingSame { try write(main, "same.txt", "s") }  // the same bytes: no change, like git
        try write(main, "sales.csv", "region,amount,currency\neu,1.5,EUR\n")
        try worktrees.unlink(branch: main, path: "gone.txt")
        try write(main, "new.jsonl", "{\"a\": 1}\n")
        return v1
    }

    /// A quiet-period commit (no author given) of deletions alone is the deleter's, not root's.
    func testACommitOfDeletionsAloneIsTheDeletersCommit() throws {
        let (_, main) = try makeDataset()
        try write(main, "a.txt", "a")
        _ = try commit(main)
        try worktrees.unlink(branch: main, path: "a.txt", by: 4242)
        guard case .committed(let v) = try committer.commit(branch: main, message: nil, author: nil) else { return XCTFail("nothing committed") }
        XCTAssertEqual(v.authorUid, 4242)
    }

    func testDiffListsFilesAndColumnChanges() throws {
        let (_, main) = try makeDataset()
        let v1 = try stageOneChangeOfEachKind(main)
        let v2 = try commit(main)
        let d = try DatasetHistory.diff(catalog: store.catalog, trees: trees, from: v1, to: v2)
        XCTAssertEqual(d.added.map(\.path), ["new.jsonl"])
        XCTAssertEqual(d.removed.map(\.path), ["gone.txt"])
        XCTAssertEqual(d.changed.map(\.path), ["sales.csv"])
        let cols = d.changed[0].columns
        XCTAssertTrue(cols.contains(ColumnChange(kind: .added, column: "currency", from: nil, to: "string")), "\(cols)")
        XCTAssertTrue(cols.contains(ColumnChange(kind: .typeChanged, column: "amount", from: "integer", to: "float")), "\(cols)")
        let text = DatasetHistory.diffText(d)
        XCTAssertTrue(text.contains("M sales.csv"), text)
        XCTAssertTrue(text.contains("+ column currency"), text)
        // The schema is stored with the version's entry.
        let schema = try XCTUnwrap(worktrees.item(branch: main, path: "sales.csv")?.schema)
        XCTAssertTrue(schema.contains("currency"), schema)
    }

    /// `pendingChanges` is what the next commit records, and looking changes nothing; the diff
    /// against the working tree agrees with the diff against the version that commit makes.
    func testPendingChangesAreWhatTheNextCommitRecords() throws {
        let (_, main) = try makeDataset()
        XCTAssertEqual(try committer.pendingChanges(branch: main), [])
        let v1 = try stageOneChangeOfEachKind(main, rewritingSame: true)
        let pending = try committer.pendingChanges(branch: main)
        XCTAssertEqual(pending.map(\.path), ["gone.txt", "new.jsonl", "sales.csv"])
        XCTAssertEqual(pending.map(\.kind), [.deleted, .added, .changed])
        XCTAssertEqual(pending[1].next?.size, 9)
        XCTAssertNotNil(pending[1].next?.blob, "written files are hashed")
        XCTAssertEqual(pending[2].head?.blob, try trees.item(version: v1.id!, path: "sales.csv")?.blob)
        func summary(_ changes: [WorkingTreeChange]) -> [String] {
            changes.map { "\($0.path) \($0.kind) \($0.next?.blob?.hex ?? "-") \($0.next?.mode ?? 0)" }
        }
        XCTAssertEqual(summary(try committer.pendingChanges(branch: main)), summary(pending), "looking changes nothing")
        let toWorkingTree = try DatasetHistory.diff(catalog: store.catalog, committer: committer, from: v1, workingTree: main)
        let v2 = try commit(main)
        let toVersion = try DatasetHistory.diff(catalog: store.catalog, trees: trees, from: v1, to: v2)
        XCTAssertEqual(toWorkingTree.to, "@main")
        XCTAssertEqual(toWorkingTree.added.map(\.path), toVersion.added.map(\.path))
        XCTAssertEqual(toWorkingTree.removed.map(\.path), toVersion.removed.map(\.path))
        XCTAssertEqual(toWorkingTree.changed.map(\.path), toVersion.changed.map(\.path))
        XCTAssertEqual(toWorkingTree.changed.map(\.toSha256), toVersion.changed.map(\.toSha256))
        XCTAssertEqual(toWorkingTree.changed.map(\.columns), toVersion.changed.map(\.columns))
        XCTAssertEqual(try committer.pendingChanges(branch: main), [])
    }

    /// `log`'s filters: a branch keeps what its head descends from; a path keeps the versions
    /// that wrote it or under it, by bytes (`sub-x` and `sub.x` are not under `sub`).
    func testLogFiltersByBranchPathAndCount() throws {
        let (ds, main) = try makeDataset()
        _ = try worktrees.mkdir(branch: main, path: "sub", mode: 0o755, uid: 1000, gid: 1000)
        try write(main, "sub/a", "1")
        let v1 = try commit(main)
        try write(main, "sub-x", "2")
        let v2 = try commit(main)
        try write(main, "sub.x", "3")
        let v3 = try commit(main)
        let dev = try store.catalog.createBranch(datasetId: ds.id!, name: "dev", at: v1.id!)
        try write(dev.id!, "sub/b", "4")
        let v4 = try commit(dev.id!)
        func ids(_ f: DatasetHistory.LogFilter) throws -> [String] {
            try DatasetHistory.log(catalog: store.catalog, datasetId: ds.id!, filter: f).map(\.id)
        }
        XCTAssertEqual(try ids(.init()), [v4, v3, v2, v1].map(\.name))
        XCTAssertEqual(try ids(.init(branch: "main")), [v3, v2, v1].map(\.name))
        XCTAssertEqual(try ids(.init(branch: "dev")), [v4, v1].map(\.name))
        XCTAssertEqual(try ids(.init(path: "sub")), [v4, v1].map(\.name))
        XCTAssertEqual(try ids(.init(path: "sub-x")), [v2.name])
        XCTAssertEqual(try ids(.init(branch: "main", path: "sub", limit: 5)), [v1.name])
        XCTAssertEqual(try ids(.init(limit: 2)), [v4, v3].map(\.name))
        XCTAssertArtifactError(.notFound, try ids(.init(branch: "nosuch")))
    }

    func testRecoverRemovesUnreferencedUpperFilesAndKeepsStagedChanges() throws {
        let (_, main) = try makeDataset()
        let stray = worktrees.upperPath(main, "stray")
        _ = try Syscalls.mkdirs(worktrees.upperDirectory(main))
        XCTAssertTrue(FileManager.default.createFile(atPath: stray, contents: Data("x".utf8)))
        // A change whose upper file a power loss took (created, never synced): dropped at
        // recovery, so the branch can still commit; a rewrite of a committed file shows the
        // committed bytes again.
        try write(main, "committed.txt", "old")
        try commit(main)
        try write(main, "committed.txt", "new, lost")
        try write(main, "lost.txt", "lost")
        for path in ["committed.txt", "lost.txt"] {
            let upper = try XCTUnwrap(worktrees.item(branch: main, path: PathBytes(path))?.upper)
            try FileManager.default.removeItem(atPath: worktrees.upperPath(main, upper))
        }
        try write(main, "keep.txt", "staged")
        let fresh = Worktrees(store: store, trees: VersionTrees(catalog: store.catalog))
        try fresh.recover()
        XCTAssertFalse(FileManager.default.fileExists(atPath: stray))
        XCTAssertEqual(try read(main, "keep.txt"), "staged")
        XCTAssertNil(try fresh.item(branch: main, path: "lost.txt"))
        XCTAssertEqual(try read(main, "committed.txt"), "old")
        let v = try XCTUnwrap({ () -> VersionRecord? in
            if case .committed(let v) = try DatasetCommitter(worktrees: fresh).commit(branch: main, message: "after", author: 0) { return v }
            return nil
        }())
        XCTAssertEqual(v.changes, 1, "only keep.txt")
        XCTAssertTrue(fresh.state(main).lock.withLock { $0.generation > 0 }, "pending after recovery")
    }

    func testCommitRefusesWhileAWriterIsOpen() throws {
        let (_, main) = try makeDataset()
        try write(main, "a", "1")
        _ = try worktrees.openForWrite(branch: main, path: "a", truncate: false, writer: true)
        XCTAssertEqual(try committer.commit(branch: main, message: "m", author: 0), .busy)
        worktrees.endWriting(branch: main)
        XCTAssertNotEqual(try committer.commit(branch: main, message: "m", author: 0), .busy)
    }

    /// The writer is counted in the same locked step that hands out the upper file, so a commit
    /// can never take that file into the blob store before the writer has it open.
    func testOpeningForWriteHoldsOffCommitsUntilTheWriterEnds() throws {
        let (_, main) = try makeDataset()
        try write(main, "a", "1")
        try commit(main)
        let upper = try worktrees.openForWrite(branch: main, path: "a", truncate: false, writer: true)
        XCTAssertEqual(try committer.commit(branch: main, message: "m", author: 0), .busy)
        let created = try worktrees.create(branch: main, path: "b", mode: 0o644, uid: 0, gid: 0, exclusive: true, truncate: true, writer: true)
        worktrees.endWriting(branch: main)
        XCTAssertEqual(try committer.commit(branch: main, message: "m", author: 0), .busy, "b's writer is still open")
        worktrees.endWriting(branch: main)
        XCTAssertTrue(FileManager.default.fileExists(atPath: upper) && FileManager.default.fileExists(atPath: created))
        guard case .committed = try committer.commit(branch: main, message: "m", author: 0) else { return XCTFail("b was not committed") }
        // Without `writer` nothing is counted (mknod, tests that write directly).
        _ = try worktrees.openForWrite(branch: main, path: "a", truncate: true)
        XCTAssertNotEqual(try committer.commit(branch: main, message: "m", author: 0), .busy)
    }
}
