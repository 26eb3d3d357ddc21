import ArtifactCore
import Foundation
import XCTest

final class NamespaceTests: StoreTestCase {
    var ns: Namespace!
    var p = ProjectID(0)
    var r1: RunRecord!, r2: RunRecord!

    /// Project "alpha": run 1 has data/a.csv (v1) and readme.txt; run 2 has data/a.csv (v2).
    override func setUpWithError() throws {
        try super.setUpWithError()
        ns = Namespace(store: store)
        p = try makeProject("alpha")
        r1 = try register(p, [try entry("data/a.csv", "v1,x\n"), try entry("readme.txt", "hello", mode: 0o640)],
                          now: Self.baseTime)
        r2 = try register(p, [try entry("data/a.csv", "v2,yy\n")], now: Self.baseTime.addingTimeInterval(60))
    }

    override func tearDownWithError() throws {
        ns = nil
        try super.tearDownWithError()
    }

    func names(_ node: Node) throws -> [String] { try ns.children(node).map(\.name.description) }

    func blobOf(_ node: Node?, file: StaticString = #filePath, line: UInt = #line) throws -> BlobHash? {
        guard let node else { XCTFail("no node", file: file, line: line); return nil }
        guard case .blob(let h, _) = try ns.content(node) else { XCTFail("not a blob", file: file, line: line); return nil }
        return h
    }

    func fileId(_ run: RunRecord, _ path: String) throws -> FileID {
        let f = try XCTUnwrap(store.catalog.runFile(runId: run.id!, dir: PathBytes(path).parent, name: PathBytes(path).lastComponent))
        return f.id!
    }

    // MARK: projects and runs

    func testLookupOfProjectsAndRuns() throws {
        XCTAssertEqual(try ns.lookup(.root, "projects"), .projects)
        XCTAssertEqual(try ns.lookup(.root, "datasets"), .datasets)
        XCTAssertNil(try ns.lookup(.root, "nothing"))
        XCTAssertEqual(try ns.lookup(.projects, "alpha"), .project(p))
        XCTAssertNil(try ns.lookup(.projects, "beta"))
        XCTAssertEqual(try ns.lookup(.project(p), "runs"), .runs(p))
        XCTAssertEqual(try ns.lookup(.project(p), "incoming"), .incoming(p))
        XCTAssertEqual(try ns.lookup(.project(p), "latest"), .latest(project: p, dir: ""))
        XCTAssertEqual(try ns.lookup(.project(p), "history"), .history(project: p, dir: ""))
        XCTAssertNil(try ns.lookup(.project(p), "pipeline.tomlx"))
        XCTAssertEqual(try ns.lookup(.runs(p), PathBytes(r1.name)), .run(r1.id!))
        XCTAssertNil(try ns.lookup(.runs(p), "20261121T143005Z-999"))
        XCTAssertEqual(try ns.lookup(.run(r1.id!), "raw_source"), .runSource(run: r1.id!, dir: ""))
        XCTAssertEqual(try ns.lookup(.run(r1.id!), ".run.json"), .runJSON(r1.id!))
        XCTAssertNil(try ns.lookup(.run(r1.id!), "markdown"))
    }

    /// Names that are not UTF-8 never find a project or a dataset, not even one named U+FFFD
    /// (what `String(decoding:)` would have turned them into).
    func testBytesThatAreNotUTF8NameNoProjectOrDataset() throws {
        let p = try makeProject("\u{FFFD}")
        _ = try store.catalog.createDataset(name: "\u{FFFD}", uid: 0, gid: 0)
        XCTAssertEqual(try ns.lookup(.projects, PathBytes("\u{FFFD}")), .project(p))
        XCTAssertNil(try ns.lookup(.projects, PathBytes([0xFF])))
        XCTAssertNotNil(try ns.lookup(.datasets, PathBytes("\u{FFFD}")))
        XCTAssertNil(try ns.lookup(.datasets, PathBytes([0xFF])))
    }

    func testChildrenOfProjectsAndRuns() throws {
        XCTAssertEqual(try names(.root), ["datasets", "projects"])
        _ = try store.createProject(name: "beta", uid: 0)
        XCTAssertEqual(try names(.projects), ["alpha", "beta"])
        XCTAssertEqual(try ns.children(.projects).first?.node, .project(p))
        XCTAssertEqual(try names(.project(p)), ["history", "latest", "runs"], "incoming/ is added by the adapter")
        XCTAssertEqual(try names(.runs(p)), [r1.name, r2.name])
        XCTAssertEqual(try names(.run(r1.id!)), [".run.json", "raw_source"])
    }

    func testRawSourceFolders() throws {
        let top = try ns.children(.runSource(run: r1.id!, dir: ""))
        XCTAssertEqual(top.map(\.name), ["data", "readme.txt"])
        XCTAssertEqual(top[0].node, .runSource(run: r1.id!, dir: "data"))
        XCTAssertTrue(top[0].attributes.isDirectory)
        XCTAssertEqual(top[1].node, .file(try fileId(r1, "readme.txt")))
        XCTAssertFalse(top[1].attributes.isDirectory)
        XCTAssertEqual(top[1].attributes.size, 5)

        let data = try XCTUnwrap(ns.lookup(.runSource(run: r1.id!, dir: ""), "data"))
        XCTAssertEqual(data, .runSource(run: r1.id!, dir: "data"))
        XCTAssertEqual(try names(data), ["a.csv"])
        let a1 = try ns.lookup(data, "a.csv")
        XCTAssertEqual(a1, .file(try fileId(r1, "data/a.csv")))
        XCTAssertEqual(try blobOf(a1), try hash("v1,x\n"), "a run shows its own version, even when superseded")
        XCTAssertNil(try ns.lookup(data, "b.csv"))
        XCTAssertEqual(try names(.runSource(run: r2.id!, dir: "")), ["data"])
    }

    func testAttributes() throws {
        let readme = Node.file(try fileId(r1, "readme.txt"))
        let attrs = try ns.attributes(readme)
        XCTAssertFalse(attrs.isDirectory)
        XCTAssertEqual(attrs.size, 5)
        XCTAssertEqual(attrs.mode, 0o640)
        XCTAssertEqual(attrs.uid, 1000)
        XCTAssertEqual(attrs.gid, 1000)
        XCTAssertEqual(attrs.mtimeNs, 1_700_000_000_000_000_000)

        for node: Node in [.project(p), .runs(p), .run(r1.id!), .runSource(run: r1.id!, dir: "data"),
                           .latest(project: p, dir: ""), .history(project: p, dir: "data")] {
            let a = try ns.attributes(node)
            XCTAssertTrue(a.isDirectory, "\(node)")
            XCTAssertEqual(a.mode & 0o222, 0, "\(node) is read-only")
        }
        XCTAssertEqual(try ns.attributes(.projects).mode, 0o1777, "anyone may mkdir a project under projects/, like /tmp")

        let json = try ns.attributes(.runJSON(r2.id!))
        XCTAssertFalse(json.isDirectory)
        XCTAssertEqual(json.mode, 0o444)
        XCTAssertEqual(json.size, Int64(try ns.runJSON(r2.id!).count))
        XCTAssertArtifactError(.notFound, try self.ns.attributes(.run(RunID(9_999))))
        XCTAssertArtifactError(.notFound, try self.ns.attributes(.file(FileID(9_999))))
    }

    // MARK: latest and history

    func testLatestShowsTheNewestVersion() throws {
        XCTAssertEqual(try names(.latest(project: p, dir: "")), ["data", "readme.txt"])
        let data = try XCTUnwrap(ns.lookup(.latest(project: p, dir: ""), "data"))
        XCTAssertEqual(data, .latest(project: p, dir: "data"))
        let entries = try ns.children(data)
        XCTAssertEqual(entries.map(\.name), ["a.csv"])
        XCTAssertEqual(entries.first?.node, .file(try fileId(r2, "data/a.csv")))
        XCTAssertEqual(entries.first?.attributes.size, 6)
        XCTAssertEqual(try blobOf(try ns.lookup(data, "a.csv")), try hash("v2,yy\n"))
        XCTAssertEqual(try blobOf(try ns.lookup(.latest(project: p, dir: ""), "readme.txt")), try hash("hello"))
        XCTAssertNil(try ns.lookup(data, "readme.txt"))
    }

    func testHistoryListsRunIdsOldestFirst() throws {
        let r3 = try register(p, [try entry("data/a.csv", "v3")], now: Self.baseTime.addingTimeInterval(-600))
        XCTAssertEqual(try names(.history(project: p, dir: "")), ["data", "readme.txt"])
        let data = try XCTUnwrap(ns.lookup(.history(project: p, dir: ""), "data"))
        XCTAssertEqual(data, .history(project: p, dir: "data"))
        let folder = try XCTUnwrap(ns.lookup(data, "a.csv"))
        XCTAssertEqual(folder, .historyOfFile(try XCTUnwrap(store.catalog.latestFile(projectId: p, dir: "data", name: "a.csv")?.id)))
        XCTAssertTrue(folder.isDirectory)
        XCTAssertTrue(try ns.children(data).allSatisfy(\.attributes.isDirectory), "history/<path>/ is a folder")

        let versions = try ns.children(folder)
        XCTAssertEqual(versions.map(\.name.description), [r1.name, r2.name, r3.name])
        XCTAssertEqual(versions.map(\.name), versions.map(\.name).sorted())
        XCTAssertEqual(try blobOf(try ns.lookup(folder, PathBytes(r1.name))), try hash("v1,x\n"))
        XCTAssertEqual(try blobOf(try ns.lookup(folder, PathBytes(r2.name))), try hash("v2,yy\n"))
        XCTAssertEqual(try blobOf(try ns.lookup(folder, PathBytes(r3.name))), try hash("v3"))
        XCTAssertEqual(try names(ns.lookup(.history(project: p, dir: ""), "readme.txt")!), [r1.name])
        XCTAssertNil(try ns.lookup(folder, "20000101T000000Z-001"))
    }

    // MARK: metadata

    func testRunJSON() throws {
        guard case .bytes(let bytes) = try ns.content(.runJSON(r2.id!)) else { return XCTFail("not bytes") }
        XCTAssertEqual(bytes, try ns.runJSON(r2.id!))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        for key in ["id", "project", "action", "status", "created_at", "completed_at", "files", "bytes", "stages", "errors"] {
            XCTAssertNotNil(object[key], "key \(key) in \(object.keys.sorted())")
        }
        XCTAssertEqual(object["id"] as? String, r2.name)
        XCTAssertEqual(object["project"] as? String, "alpha")
        XCTAssertEqual(object["action"] as? String, "ingest")
        XCTAssertEqual(object["status"] as? String, "completed")
        XCTAssertEqual(object["created_at"] as? String, "2026-11-21T14:31:05.000Z")
        XCTAssertEqual(object["completed_at"] as? String, "2026-11-21T14:31:05.000Z")
        XCTAssertEqual(object["bytes"] as? Int, 6)
        XCTAssertNotNil(object["stages"] as? [String: Any])
        XCTAssertEqual((object["errors"] as? [Any])?.count, 0)
        let files = try XCTUnwrap(object["files"] as? [String: Any])
        XCTAssertEqual(files["new"] as? Int, 0)
        XCTAssertEqual(files["superseded"] as? Int, 1)
        XCTAssertEqual(files["duplicate"] as? Int, 0)

        let first = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try ns.runJSON(r1.id!))) as? [String: Any])
        XCTAssertEqual((first["files"] as? [String: Any])?["new"] as? Int, 2)
        XCTAssertEqual(first["bytes"] as? Int, 10)
    }

    /// SPEC §2 lists `completed_at` among the keys every .run.json has; a run whose stages are
    /// still going has none yet, which JSON says with null.
    func testRunJSONOfARunInProgressStillHasCompletedAt() throws {
        let run = try register(p, [try entry("late.txt", "late")], completed: false,
                               now: Self.baseTime.addingTimeInterval(120))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try ns.runJSON(run.id!))) as? [String: Any])
        XCTAssertEqual(object["status"] as? String, "in_progress")
        XCTAssertTrue(object.keys.contains("completed_at"), "keys: \(object.keys.sorted())")
        XCTAssertTrue(object["completed_at"] is NSNull, "completed_at: \(String(describing: object["completed_at"]))")
    }

    func testExtendedAttributesOfFiles() throws {
        let old = try ns.extendedAttributes(.file(try fileId(r1, "data/a.csv")))
        let oldMap = Dictionary(uniqueKeysWithValues: old)
        XCTAssertEqual(old.first?.0, "user.artifactfs.sha256")
        XCTAssertEqual(oldMap["user.artifactfs.sha256"], try hash("v1,x\n").hex)
        XCTAssertEqual(oldMap["user.artifactfs.project"], "alpha")
        XCTAssertEqual(oldMap["user.artifactfs.run"], r1.name)
        XCTAssertEqual(oldMap["user.artifactfs.path"], "data/a.csv")
        XCTAssertEqual(oldMap["user.artifactfs.status"], "superseded")
        XCTAssertEqual(oldMap["user.artifactfs.superseded"], "true")
        XCTAssertEqual(oldMap["user.artifactfs.superseded_by"], r2.name)

        let current = Dictionary(uniqueKeysWithValues: try ns.extendedAttributes(.file(try fileId(r2, "data/a.csv"))))
        XCTAssertEqual(current["user.artifactfs.sha256"], try hash("v2,yy\n").hex)
        XCTAssertEqual(current["user.artifactfs.run"], r2.name)
        XCTAssertEqual(current["user.artifactfs.superseded"], "false")
        XCTAssertNil(current["user.artifactfs.superseded_by"])

        let run = Dictionary(uniqueKeysWithValues: try ns.extendedAttributes(.run(r1.id!)))
        XCTAssertEqual(run["user.artifactfs.run"], r1.name)
        XCTAssertEqual(run["user.artifactfs.status"], "completed")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: try ns.extendedAttributes(.root))["user.artifactfs.store"], root)
    }

    func testNodeKinds() {
        XCTAssertFalse(Node.file(FileID(1)).isDirectory)
        XCTAssertFalse(Node.runJSON(RunID(1)).isDirectory)
        XCTAssertTrue(Node.historyOfFile(FileID(1)).isDirectory)
    }
}
