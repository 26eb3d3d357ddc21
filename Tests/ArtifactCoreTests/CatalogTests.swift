@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB
import XCTest

final class CatalogTests: StoreTestCase {
    /// A catalog that a newer release migrated further (its packs, say) is refused with one
    /// line naming it, for writing and for reading, rather than misread.
    func testACatalogFromANewerReleaseIsRefused() throws {
        try store.catalog.ownerWrite { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        let path = root + "/catalog.sqlite"
        XCTAssertArtifactError(.unsupported, try Catalog(path: path))
        XCTAssertArtifactError(.unsupported, try Catalog(path: path, readOnly: true))
        do { _ = try Catalog(path: path) } catch {
            XCTAssertTrue("\(error)".contains("written by a newer artifactfs"), "\(error)")
            XCTAssertEqual("\(error)".split(separator: "\n").count, 1)
        }
    }

    var catalog: Catalog { store.catalog }

    // MARK: projects

    func testCreateProject() throws {
        let project = try store.createProject(name: "alpha", uid: 1000)
        let id = try XCTUnwrap(project.id)
        XCTAssertEqual(project.name, "alpha")
        XCTAssertEqual(project.ownerUid, 1000)
        XCTAssertEqual(try catalog.project(named: "alpha"), project)
        XCTAssertEqual(try catalog.project(id: id), project)
        XCTAssertNil(try catalog.project(named: "beta"))

        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.staging.incomingPath(projectId: id), isDirectory: &isDir))
        XCTAssertTrue(isDir.boolValue, "createProject makes the incoming/ folder")

        _ = try store.createProject(name: "Beta", uid: 0)
        _ = try catalog.createProject(name: "aardvark", uid: 0)
        XCTAssertEqual(try catalog.projects().map(\.name), ["Beta", "aardvark", "alpha"])
    }

    /// What an unmount leaves: the catalog file alone, its WAL emptied into it.
    func testCheckpointEmptiesTheWAL() throws {
        let p = try makeProject()
        let entries = try (0..<2_000).map { try entry("f\($0).txt", "content \($0)") }
        _ = try register(p, entries)
        let wal = store.root + "/catalog.sqlite-wal"
        func walSize() -> Int { ((try? FileManager.default.attributesOfItem(atPath: wal))?[.size] as? NSNumber)?.intValue ?? 0 }
        XCTAssertGreaterThan(walSize(), 0, "the run was written to the WAL")
        try catalog.checkpoint()
        XCTAssertEqual(walSize(), 0)
        XCTAssertEqual(try catalog.files(runId: try XCTUnwrap(catalog.runs(projectId: p).first?.id)).count, 2_000)
    }

    func testDuplicateProjectNameIsAlreadyExists() throws {
        _ = try store.createProject(name: "alpha", uid: 1000)
        XCTAssertArtifactError(.alreadyExists, try self.store.createProject(name: "alpha", uid: 1000))
        XCTAssertArtifactError(.alreadyExists, try self.catalog.createProject(name: "alpha", uid: 0))
        XCTAssertEqual(try catalog.projects().count, 1)
    }

    func testBadProjectNamesAreRejected() throws {
        for name in ["", ".x", "@x", "a/b", "a\u{0}b", "a\nb"] {
            XCTAssertArtifactError(.invalidName, try self.store.createProject(name: name, uid: 0), name.debugDescription)
        }
        XCTAssertArtifactError(.nameTooLong, try self.store.createProject(name: String(repeating: "n", count: 256), uid: 0))
        XCTAssertEqual(try catalog.projects(), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.staging.root), [],
                       "no incoming/ folder for a refused project")
    }

    // MARK: run ids

    func testRunIdIsUTCTimeAndSequence() throws {
        let p = try makeProject()
        let run = try register(p, [], now: Self.baseTime.addingTimeInterval(0.75))
        XCTAssertEqual(run.name, "20261121T143005Z-001")
        XCTAssertEqual(run.timestamp, 1_795_271_405)
        XCTAssertEqual(run.seq, 1)
        XCTAssertEqual(run.projectId, p)
        XCTAssertEqual(run.action, "ingest")
        XCTAssertEqual(run.status, .completed)
        XCTAssertNotNil(run.completedAt)
        XCTAssertEqual(RunRegistrar.runName(timestamp: 0, seq: 7), "19700101T000000Z-007")
    }

    func testTwoRunsInTheSameSecondGetIncreasingSequence() throws {
        let p = try makeProject()
        let first = try register(p, [], now: Self.baseTime)
        let second = try register(p, [], now: Self.baseTime)
        XCTAssertEqual(first.name, "20261121T143005Z-001")
        XCTAssertEqual(second.name, "20261121T143005Z-002")
        XCTAssertLessThan(first.name, second.name)
        XCTAssertEqual(try catalog.runs(projectId: p).map(\.name), [first.name, second.name])
        XCTAssertEqual(try catalog.run(projectId: p, name: second.name)?.id, second.id)
    }

    func testSequenceIsPerProject() throws {
        let a = try makeProject("a"), b = try makeProject("b")
        XCTAssertEqual(try register(a, [], now: Self.baseTime).name, "20261121T143005Z-001")
        XCTAssertEqual(try register(b, [], now: Self.baseTime).name, "20261121T143005Z-001")
        XCTAssertEqual(try register(a, [], now: Self.baseTime).name, "20261121T143005Z-002")
    }

    func testAClockThatStepsBackStillGivesIncreasingIds() throws {
        let p = try makeProject()
        var names: [String] = []
        for offset in [0.0, -3600, -1, 0, 1, -86400, 2] {
            names.append(try register(p, [], now: Self.baseTime.addingTimeInterval(offset)).name)
        }
        XCTAssertEqual(names, [
            "20261121T143005Z-001", "20261121T143005Z-002", "20261121T143005Z-003", "20261121T143005Z-004",
            "20261121T143006Z-001", "20261121T143006Z-002", "20261121T143007Z-001",
        ])
        XCTAssertEqual(names, names.sorted(), "ids sort in registration order")
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(try catalog.runs(projectId: p).map(\.name), names)
    }

    /// SPEC §1: "Ids sort chronologically under plain `ls`", which compares bytes. More than
    /// 999 runs can share one second, e.g. after the clock steps back an hour while seals go on.
    func testIdsStillSortInOrderPastSequence999() throws {
        let p = try makeProject()
        var previous = ""
        for i in 1...1001 {
            let name = try register(p, [], now: Self.baseTime).name
            if i >= 998 {
                XCTAssertLessThan(previous, name, "run \(i) must sort after run \(i - 1)")
            }
            previous = name
        }
        let names = try catalog.runs(projectId: p).map(\.name)
        XCTAssertEqual(names.count, 1001)
        let disorder = zip(names, names.dropFirst()).first { !($0 < $1) }
        XCTAssertNil(disorder, "catalog order and byte order of run ids disagree at \(String(describing: disorder))")
    }

    /// `user.artifactfs.last_run` reads one row: the newest by time, then by sequence within
    /// a second (and after a clock step back), per project.
    func testLastRunIsTheNewestOfItsProject() throws {
        let p = try makeProject(), q = try makeProject("other")
        XCTAssertNil(try catalog.lastRun(projectId: p))
        let first = try register(p, [], now: Self.baseTime)
        let second = try register(p, [], now: Self.baseTime)
        let stepBack = try register(p, [], now: Self.baseTime.addingTimeInterval(-3600))
        _ = try register(q, [], now: Self.baseTime.addingTimeInterval(60))
        XCTAssertEqual([first.seq, second.seq, stepBack.seq], [1, 2, 3])
        XCTAssertEqual(try catalog.lastRun(projectId: p)?.name, stepBack.name)
        XCTAssertEqual(try catalog.lastRun(projectId: p)?.name, try catalog.runs(projectId: p).last?.name)
    }

    // MARK: new / duplicate / superseded

    func testNewDuplicateAndSupersededCounts() throws {
        let p = try makeProject()
        let run1 = try register(p, [try entry("a.txt", "A"), try entry("b.txt", "B")], now: Self.baseTime)
        XCTAssertEqual(run1.filesNew, 2)
        XCTAssertEqual(run1.filesSuperseded, 0)
        XCTAssertEqual(run1.filesDuplicate, 0)
        XCTAssertEqual(run1.bytes, 2)

        let run2 = try register(p, [try entry("a.txt", "A"), try entry("b.txt", "B2"), try entry("c.txt", "CCC")],
                                now: Self.baseTime.addingTimeInterval(60))
        XCTAssertEqual(run2.filesNew, 1, "c.txt")
        XCTAssertEqual(run2.filesSuperseded, 1, "b.txt changed")
        XCTAssertEqual(run2.filesDuplicate, 1, "a.txt is the same content again")
        XCTAssertEqual(run2.bytes, 1 + 2 + 3)
        XCTAssertEqual(try catalog.run(id: run2.id!), run2, "the counts are stored")

        let old = Dictionary(uniqueKeysWithValues: try catalog.files(runId: run1.id!).map { ($0.path, $0) })
        let new = Dictionary(uniqueKeysWithValues: try catalog.files(runId: run2.id!).map { ($0.path, $0) })
        XCTAssertEqual(new["a.txt"]?.status, .duplicate)
        XCTAssertEqual(new["b.txt"]?.status, .new)
        XCTAssertEqual(new["c.txt"]?.status, .new)
        for f in new.values { XCTAssertNil(f.supersededBy, "\(f.path) is current") }

        XCTAssertEqual(old["a.txt"]?.status, .superseded)
        XCTAssertEqual(old["a.txt"]?.supersededBy, new["a.txt"]?.id)
        XCTAssertEqual(old["b.txt"]?.status, .superseded)
        XCTAssertEqual(old["b.txt"]?.supersededBy, new["b.txt"]?.id)
        XCTAssertEqual(try catalog.supersedingRunName(of: old["b.txt"]!), run2.name)
        XCTAssertNil(try catalog.supersedingRunName(of: new["b.txt"]!))
    }

    func testFileRowsKeepWhatWasStaged() throws {
        let p = try makeProject()
        let e = try entry("data/x.csv", "1,2\n", mode: 0o640)
        let run = try register(p, [e])
        let file = try XCTUnwrap(catalog.files(runId: run.id!).first)
        XCTAssertEqual(file.projectId, p)
        XCTAssertEqual(file.runId, run.id)
        XCTAssertEqual(file.path, "data/x.csv")
        XCTAssertEqual(file.dir, "data")
        XCTAssertEqual(file.name, "x.csv")
        XCTAssertEqual(file.blob, e.hash)
        XCTAssertEqual(file.size, 4)
        XCTAssertEqual(file.mode, 0o640)
        XCTAssertEqual(file.mtimeNs, e.mtimeNs)
        XCTAssertEqual(file.uid, 1000)
        XCTAssertEqual(file.gid, 1000)
        XCTAssertEqual(try catalog.file(id: file.id!), file)
    }

    // MARK: latest and history

    func testLatestAndHistory() throws {
        let p = try makeProject()
        let r1 = try register(p, [try entry("data/x.csv", "v1"), try entry("top.txt", "t")], now: Self.baseTime)
        let r2 = try register(p, [try entry("data/x.csv", "v2")], now: Self.baseTime.addingTimeInterval(10))
        let r3 = try register(p, [try entry("data/x.csv", "v3"), try entry("data/y.csv", "y")],
                              now: Self.baseTime.addingTimeInterval(20))

        let latest = try catalog.latestFiles(projectId: p, dir: "data")
        XCTAssertEqual(latest.map(\.name), ["x.csv", "y.csv"])
        XCTAssertEqual(latest.first?.blob, try hash("v3"))
        XCTAssertEqual(latest.first?.runId, r3.id)
        XCTAssertEqual(try catalog.latestFiles(projectId: p, dir: "").map(\.name), ["top.txt"])
        XCTAssertEqual(try catalog.latestFile(projectId: p, dir: "data", name: "x.csv")?.runId, r3.id)
        XCTAssertNil(try catalog.latestFile(projectId: p, dir: "data", name: "nope.csv"))
        XCTAssertEqual(try catalog.latestSubdirectories(projectId: p, parent: "").map(\.name), ["data"])
        XCTAssertTrue(try catalog.latestHasDirectory(projectId: p, parent: "", name: "data"))
        XCTAssertFalse(try catalog.latestHasDirectory(projectId: p, parent: "", name: "x.csv"))

        let history = try catalog.history(projectId: p, path: "data/x.csv")
        XCTAssertEqual(history.map(\.run), [r1.name, r2.name, r3.name], "oldest first")
        XCTAssertEqual(history.map(\.file.blob), [try hash("v1"), try hash("v2"), try hash("v3")])
        XCTAssertEqual(history.map(\.file.status), [.superseded, .superseded, .new])
        XCTAssertEqual(try catalog.history(projectId: p, path: "top.txt").map(\.run), [r1.name])
        XCTAssertTrue(try catalog.history(projectId: p, path: "missing").isEmpty)

        XCTAssertEqual(try catalog.historyVersion(projectId: p, path: "data/x.csv", runName: r2.name)?.blob, try hash("v2"))
        XCTAssertNil(try catalog.historyVersion(projectId: p, path: "data/y.csv", runName: r1.name))
    }

    func testHistoryIsOldestFirstEvenWhenTheClockStepsBack() throws {
        let p = try makeProject()
        let r1 = try register(p, [try entry("f", "1")], now: Self.baseTime)
        let r2 = try register(p, [try entry("f", "2")], now: Self.baseTime.addingTimeInterval(-7200))
        let r3 = try register(p, [try entry("f", "3")], now: Self.baseTime.addingTimeInterval(5))
        XCTAssertEqual(try catalog.history(projectId: p, path: "f").map(\.run), [r1.name, r2.name, r3.name])
        XCTAssertEqual(try catalog.latestFile(projectId: p, dir: "", name: "f")?.blob, try hash("3"))
    }

    func testProjectsDoNotSeeEachOthersFiles() throws {
        let a = try makeProject("a"), b = try makeProject("b")
        _ = try register(a, [try entry("f", "in a")])
        _ = try register(b, [try entry("f", "in b")])
        XCTAssertEqual(try catalog.latestFile(projectId: a, dir: "", name: "f")?.blob, try hash("in a"))
        XCTAssertEqual(try catalog.latestFile(projectId: b, dir: "", name: "f")?.blob, try hash("in b"))
        XCTAssertEqual(try catalog.latestFile(projectId: b, dir: "", name: "f")?.status, .new)
    }

    // MARK: blobs and folders

    func testBlobRefcountsEqualTheRowsThatReferToThem() throws {
        let p = try makeProject("p"), q = try makeProject("q")
        _ = try register(p, [try entry("a", "X"), try entry("b", "X"), try entry("c", "YY")], now: Self.baseTime)
        _ = try register(p, [try entry("a", "X"), try entry("d", "YY")], now: Self.baseTime.addingTimeInterval(1))
        _ = try register(q, [try entry("z", "X")], now: Self.baseTime)

        let x = try hash("X"), y = try hash("YY")
        XCTAssertEqual(try catalog.blob(x)?.refcount, 4)
        XCTAssertEqual(try catalog.blob(x)?.size, 1)
        XCTAssertEqual(try catalog.blob(y)?.refcount, 2)
        XCTAssertEqual(try catalog.blob(y)?.size, 2)
        XCTAssertEqual(try catalog.blobs().map(\.hash), [x, y].sorted())

        let counted = try catalog.countedReferences()
        XCTAssertEqual(counted, [x.hex: 4, y.hex: 2])
        for blob in try catalog.blobs() {
            XCTAssertEqual(blob.refcount, counted[blob.hash.hex], blob.hash.hex)
        }
        let rows = try sql { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM file") }
        XCTAssertEqual(rows, 6)
    }

    func testDirectoryRowsForNestedPaths() throws {
        let p = try makeProject()
        let run = try register(p, [
            try entry("a/b/c/deep.txt", "deep"),
            try entry("a/side.txt", "side"),
            try entry("top.txt", "top"),
        ], directories: ["empty/inner", "a/b"])
        let r = try XCTUnwrap(run.id)

        XCTAssertEqual(try catalog.runSubdirectories(runId: r, parent: "").map(\.name), ["a", "empty"])
        XCTAssertEqual(try catalog.runSubdirectories(runId: r, parent: "a").map(\.name), ["b"])
        XCTAssertEqual(try catalog.runSubdirectories(runId: r, parent: "a/b").map(\.name), ["c"])
        XCTAssertEqual(try catalog.runSubdirectories(runId: r, parent: "a/b/c").map(\.name), [])
        XCTAssertEqual(try catalog.runSubdirectories(runId: r, parent: "empty").map(\.name), ["inner"])
        XCTAssertTrue(try catalog.runHasDirectory(runId: r, parent: "a/b", name: "c"))
        XCTAssertFalse(try catalog.runHasDirectory(runId: r, parent: "a", name: "side.txt"))

        XCTAssertEqual(try catalog.runFiles(runId: r, dir: "").map(\.name), ["top.txt"])
        XCTAssertEqual(try catalog.runFiles(runId: r, dir: "a").map(\.name), ["side.txt"])
        XCTAssertEqual(try catalog.runFiles(runId: r, dir: "a/b/c").map(\.name), ["deep.txt"])
        XCTAssertEqual(try catalog.runFile(runId: r, dir: "a/b/c", name: "deep.txt")?.path, "a/b/c/deep.txt")

        let dirRows = try sql {
            try Row.fetchAll($0, sql: "SELECT parent, name FROM dir WHERE run_id = ? ORDER BY parent, name", arguments: [r])
                .map { "\($0["parent"] as String)|\($0["name"] as String)" }
        }
        XCTAssertEqual(dirRows, ["|a", "|empty", "a|b", "a/b|c", "empty|inner"], "one row per folder, no duplicates")
    }

    func testRegisterRecordsCleanupEntries() throws {
        let p = try makeProject()
        _ = try register(p, [try entry("f", "x")], cleanup: [("/staged/f", 42)])
        let rows = try sql { try Row.fetchAll($0, sql: "SELECT project_id, staged_path, ino FROM seal_cleanup") }
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["project_id"], p)
        XCTAssertEqual(rows.first?["staged_path"], "/staged/f")
        XCTAssertEqual(rows.first?["ino"], 42 as Int64)
    }

    func testInProgressRunHasNoCompletionTime() throws {
        let p = try makeProject()
        let run = try register(p, [], completed: false)
        XCTAssertEqual(run.status, .inProgress)
        XCTAssertNil(run.completedAt)
    }

    /// A blob name in the catalog that is not a SHA-256 (a damaged catalog) is reported as
    /// corrupt where it is read, never a crash of the daemon.
    func testABlobNameThatIsNotASHA256IsCorruptNotACrash() throws {
        let p = try makeProject()
        let run = try register(p, [try entry("a.txt", "x")])
        try store.catalog.ownerWrite { db in
            try db.execute(sql: "INSERT INTO blob (hash, size, refcount, created_at) VALUES ('not-a-hash', 1, 1, 0)")
            try db.execute(sql: "UPDATE file SET blob = 'not-a-hash'")
        }
        XCTAssertThrowsError(try store.catalog.runFiles(runId: run.id!, dir: "")) { error in
            XCTAssertEqual((error as? ArtifactError)?.code, .corrupt)
            XCTAssertTrue("\(error)".contains("a.txt"), "\(error)")
        }
    }

    /// A run is registered by a few statements over all of its files; each must reach the
    /// project's rows by path (`file_current` searched by project, folder and name) or by run,
    /// never by reading the whole project: a seal of one file into a project of a million
    /// would otherwise read a million rows. Checked on the plans SQLite makes for them.
    func testRunRegistrationReadsTheProjectByPathOnly() throws {
        let p = try makeProject()
        let first = try register(p, [try entry("a/x.txt", "one"), try entry("a/y.txt", "two")])
        let second = try register(p, [try entry("a/x.txt", "one"), try entry("a/y.txt", "changed"), try entry("b.txt", "new")])
        XCTAssertEqual([second.filesDuplicate, second.filesSuperseded, second.filesNew], [1, 1, 1])
        XCTAssertEqual(try store.catalog.files(runId: first.id!).map(\.status), [.superseded, .superseded])

        let statements: [(String, StatementArguments)] = [
            (RunRegistrationSQL.fileRows, [p, 99, 0]), (RunRegistrationSQL.linkedFiles, [99]), (RunRegistrationSQL.supersede, [p, 99]),
        ]
        func plan(_ sql: String, _ arguments: StatementArguments) throws -> [String] {
            try store.catalog.ownerWrite { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
            }
        }
        // SQLite lists the foreign-key check of rows inserted into `file` (the parent of
        // `superseded_by`) as a scan of it; that step runs only while a deferred violation is
        // pending, never here. Any plain INSERT ... SELECT into `file` shows it.
        let foreignKeyCheck = try plan("""
            INSERT INTO file (project_id, run_id, dir, name, blob, size, mode, mtime_ns, uid, gid, status, created_at)
            SELECT 1, 2, dir, name, blob, 0, 0, 0, 0, 0, 'new', 0 FROM temp.run_entry
            """, [])
        XCTAssertEqual(foreignKeyCheck, ["SCAN temp.run_entry", "SCAN file"])
        for (sql, arguments) in statements {
            var plan = try plan(sql, arguments)
            if sql == RunRegistrationSQL.fileRows, plan.last == "SCAN file" { plan.removeLast() }
            for step in plan {
                XCTAssertFalse(step.hasPrefix("SCAN file") || step.hasPrefix("SCAN c") || step.hasPrefix("SCAN n") || step.hasPrefix("SCAN f"),
                               "\(step) in \(plan)")
                if step.contains("file_current") { XCTAssertTrue(step.contains("dir=? AND name=?"), "\(step) in \(plan)") }
            }
        }
    }
}
