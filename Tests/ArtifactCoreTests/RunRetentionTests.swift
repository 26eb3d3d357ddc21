@_spi(CatalogTables) import ArtifactCore
import Foundation
import XCTest

final class RunRetentionTests: StoreTestCase {
    private let day: Double = 86_400

    func testPolicyReasonsMatchResticsRules() {
        // Runs at day 0 (two that day), 1, 3, 10 and 40, oldest first.
        let times: [Int64] = [0, 3_600, 86_400, 3 * 86_400, 10 * 86_400, 40 * 86_400].map { 1_795_000_000 + $0 }
        func kept(_ p: KeepPolicy) -> [Int] { p.reasons(for: times, timestamp: { $0 }).enumerated().filter { !$0.element.isEmpty }.map(\.offset) }
        XCTAssertEqual(kept(KeepPolicy(last: 2)), [4, 5])
        XCTAssertEqual(kept(KeepPolicy(within: 31 * day)), [4, 5])
        XCTAssertEqual(kept(KeepPolicy(within: 37 * day)), [3, 4, 5])
        XCTAssertEqual(kept(KeepPolicy(daily: 4)), [2, 3, 4, 5], "the newest run of each of the last 4 days that have runs")
        XCTAssertEqual(kept(KeepPolicy(last: 1, daily: 2)), [4, 5])
        XCTAssertEqual(kept(KeepPolicy(yearly: 5)), [5])
        XCTAssertEqual(kept(KeepPolicy(daily: 100)), [1, 2, 3, 4, 5])
        XCTAssertTrue(KeepPolicy().isEmpty)
        XCTAssertEqual(KeepPolicy(last: 3, within: 7 * day, daily: 2).description, "--keep-last 3 --keep-within 7d --keep-daily 2")
    }

    /// r1 writes a (v1) and b; r2 writes a (v2) and c; r3 writes a (v1 again). Forgetting r2
    /// hands r2's successor down (r1.a is superseded by r3.a), and c, which only r2 had, leaves
    /// latest/. Forgetting r3 then makes r1.a current again.
    func testForgetHandsSupersedingDownAndLatestFollows() throws {
        let p = try makeProject()
        let t = StoreTestCase.baseTime
        let r1 = try register(p, [try entry("a", "v1"), try entry("b", "b")], now: t)
        let r2 = try register(p, [try entry("a", "v2"), try entry("dir/c", "c")], now: t.addingTimeInterval(60))
        let r3 = try register(p, [try entry("a", "v1")], now: t.addingTimeInterval(120))
        let project = try XCTUnwrap(store.catalog.project(id: p))

        let dry = try RunRetention(store: store).forget(project: project, policy: KeepPolicy(last: 1), dryRun: true)
        XCTAssertEqual(dry.0.forgotten.map(\.run), [r2.name, r1.name])
        XCTAssertNil(dry.1)
        XCTAssertEqual(try store.catalog.runs(projectId: p).count, 3, "a dry run changes nothing")

        let gone = try store.catalog.forgetRuns(projectId: p, [r2.id!])
        XCTAssertEqual(gone.runs, [r2.name])
        XCTAssertEqual(Set(gone.paths.keys), [PathBytes("a"), PathBytes("dir/c")])
        XCTAssertEqual(gone.paths[PathBytes("a")]?.ids.count, 3)
        XCTAssertEqual(try store.catalog.latestFiles(projectId: p, dir: .empty).map(\.name.description), ["a", "b"])
        XCTAssertEqual(try store.catalog.latestFiles(projectId: p, dir: PathBytes("dir")), [])
        XCTAssertEqual(try store.catalog.history(projectId: p, path: PathBytes("a")).map(\.run), [r1.name, r3.name])
        let a1 = try XCTUnwrap(store.catalog.historyVersion(projectId: p, path: PathBytes("a"), runName: r1.name))
        let a3 = try XCTUnwrap(store.catalog.latestFile(projectId: p, dir: .empty, name: PathBytes("a")))
        XCTAssertEqual(a1.supersededBy, a3.id)
        XCTAssertEqual(a3.runId, r3.id)
        XCTAssertEqual(a3.status, .duplicate, "r3 wrote what r1 had")

        _ = try store.catalog.forgetRuns(projectId: p, [r3.id!])
        let current = try XCTUnwrap(store.catalog.latestFile(projectId: p, dir: .empty, name: PathBytes("a")))
        XCTAssertEqual(current.runId, r1.id)
        XCTAssertEqual(current.status, .new)
        let report = try Verifier(store: store).run()
        XCTAssertEqual(report.problems, [])
        // v2 and c are now used by nothing; v1 and b still are.
        XCTAssertEqual(try store.catalog.collectableBlobs(releasedBefore: Date().timeIntervalSince1970 + 1).count, 2)
    }

    func testInProgressRunsAreKeptAndEmptyPolicyRefused() throws {
        let p = try makeProject()
        let t = StoreTestCase.baseTime
        _ = try register(p, [try entry("a", "1")], completed: false, now: t)
        _ = try register(p, [try entry("a", "2")], now: t.addingTimeInterval(60))
        let project = try XCTUnwrap(store.catalog.project(id: p))
        let (report, _) = try RunRetention(store: store).forget(project: project, policy: KeepPolicy(last: 1))
        XCTAssertEqual(report.forgotten, [])
        XCTAssertEqual(report.kept.last?.reasons, ["pipeline running"])
        XCTAssertThrowsError(try RunRetention(store: store).forget(project: project, policy: KeepPolicy()))
    }

    func testStoredPolicyIsAppliedByGC() throws {
        let p = try makeProject()
        let t = StoreTestCase.baseTime
        for i in 0..<4 { _ = try register(p, [try entry("a", "v\(i)")], now: t.addingTimeInterval(Double(i) * 60)) }
        try KeepPolicy(last: 2).store(for: p, in: store.catalog)
        XCTAssertEqual(try KeepPolicy.stored(for: p, in: store.catalog), KeepPolicy(last: 2))
        let report = try GarbageCollector(store: store, grace: 0, now: Date().addingTimeInterval(1)).run()
        XCTAssertEqual(report.runsForgotten, 2)
        XCTAssertEqual(report.blobsRemoved, 2)
        XCTAssertEqual(try store.catalog.runs(projectId: p).count, 2)
        try KeepPolicy().store(for: p, in: store.catalog)
        XCTAssertNil(try KeepPolicy.stored(for: p, in: store.catalog))
    }
}
