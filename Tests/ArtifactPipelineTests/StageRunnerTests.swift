import ArtifactCore
import ArtifactPipeline
import Foundation
import Logging
import XCTest

/// A store with a running `StageRunner`, and a scratch folder outside it. Waiting is a liveness
/// loop with a generous cap, never a timing assertion.
class RunnerTestCase: PipelineTestCase {
    private(set) var scratch: String!
    private var runner: StageRunner!

    override func setUpWithError() throws {
        try super.setUpWithError()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("artifactfs-pipeline-scratch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        // The runner's worker threads have no stop; they idle on their own store, which the
        // next lines delete (open descriptors keep working).
        runner = nil
        if let scratch { try? FileManager.default.removeItem(atPath: scratch) }
        try super.tearDownWithError()
    }

    func startRunner(workers: Int = 1) throws -> StageRunner {
        var logger = Logger(label: "artifactfs.test")
        logger.logLevel = .critical
        let r = StageRunner(store: store, workers: workers, sandbox: try StageSandbox(), logger: logger)
        try r.start()
        runner = r
        return r
    }

    /// Polls the catalog until the run has left in_progress.
    @discardableResult
    func waitForRun(_ id: RunID?, file: StaticString = #filePath, line: UInt = #line) throws -> RunRecord {
        for _ in 0..<3000 {   // 3000 × 50 ms: a liveness cap, not a bound on the runner's speed
            let r = try run(id)
            if r.status != .inProgress { return r }
            usleep(50_000)
        }
        XCTFail("run never finished; jobs: \(try jobs(id).map { "\($0.stage) \($0.inputPath) \($0.status.rawValue)" })", file: file, line: line)
        return try run(id)
    }

    func seal(_ projectId: ProjectID, _ files: [(String, String)]) throws -> RunRecord {
        let r = try sealedRun(projectId, files)
        runner.runSealed(r)
        return r
    }

    func pipeline(_ stages: String) throws -> ProjectID {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: stages)
        return p
    }
}

/// The runner end to end, without a mount: real commands from coreutils and sh, run by the
/// runner's worker threads against a temp store, in their sandbox.
final class StageRunnerTests: RunnerTestCase {
    func testSuccessfulStagesProduceOutputsAndFeedDependents() throws {
        let p = try pipeline("""
            [[stage]]
            name = "upper"
            command = ["sh", "-c", "tr a-z A-Z < {input} > {output_dir}/{stem}.out; mkdir -p {output_dir}/nested/deeper; cp {input} {output_dir}/nested/deeper/{stem}.copy"]
            inputs = "raw_source/**/*.txt"

            [[stage]]
            name = "words"
            command = ["sh", "-c", "wc -w < {input} | tr -d ' ' > {output_dir}/{stem}.count; echo {name} {run} {project} > {output_dir}/{stem}.info"]
            inputs = "upper/*.out"
            depends_on = ["upper"]
            """)
        _ = try startRunner(workers: 2)
        let r = try seal(p, [("a.txt", "hello big world\n"), ("sub/b.txt", "just two\n"), ("skip.md", "ignored")])
        let done = try waitForRun(r.id)
        let states = try jobs(r.id).map { "\($0.stage) \($0.inputPath): \($0.status.rawValue) \($0.error ?? "")" }
        XCTAssertEqual(done.status, .completed, "\(states)")

        let all = try outputs(r.id, stage: "upper")
        XCTAssertEqual(all.map(\.path), ["a.out", "b.out", "nested/deeper/a.copy", "nested/deeper/b.copy"])
        XCTAssertTrue(try store.catalog.outputHasDirectory(runId: r.id!, stage: "upper", parent: "nested", name: "deeper"))
        XCTAssertEqual(try blobContent(all[3].blob), "just two\n")
        let upper = all.filter { $0.path.hasSuffix(".out") }
        XCTAssertEqual(upper.map(\.path), ["a.out", "b.out"])
        XCTAssertEqual(upper.map(\.inputPath), ["raw_source/a.txt", "raw_source/sub/b.txt"])
        XCTAssertEqual(try blobContent(upper[0].blob), "HELLO BIG WORLD\n")
        XCTAssertEqual(try blobContent(upper[1].blob), "JUST TWO\n")
        XCTAssertEqual(upper[0].size, 16)
        for o in upper { XCTAssertEqual(try refcount(o.blob), 1) }

        let words = try outputs(r.id, stage: "words")
        XCTAssertEqual(words.map(\.path), ["a.count", "a.info", "b.count", "b.info"])
        XCTAssertEqual(try blobContent(words[0].blob), "3\n")
        XCTAssertEqual(try blobContent(words[2].blob), "2\n")
        XCTAssertEqual(try blobContent(words[1].blob), "a.out \(done.name) alpha\n")
        for j in try jobs(r.id) {
            XCTAssertEqual(j.status, .completed)
            XCTAssertEqual(j.attempts, 1)
            XCTAssertFalse(j.memoized)
            XCTAssertNil(j.error)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/tmp/jobs/\(try jobs(r.id)[0].id!)-1"),
                       "the job's working folder is removed")
    }

    func testFailingCommandRecordsExitStatusAndStderrTail() throws {
        let p = try pipeline("""
            [[stage]]
            name = "bad"
            command = ["sh", "-c", "echo starting; echo 'cannot parse {name}: unexpected token' >&2; exit 3"]
            inputs = "raw_source/*.txt"
            retries = 1

            [[stage]]
            name = "good"
            command = ["cp", "{input}", "{output_dir}/{name}"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        let done = try waitForRun(r.id)
        XCTAssertEqual(done.status, .completedWithErrors)
        let bad = try XCTUnwrap(jobs(r.id, stage: "bad").first)
        XCTAssertEqual(bad.status, .failed)
        XCTAssertEqual(bad.attempts, 2, "retries = 1 gives two attempts")
        let error = try XCTUnwrap(bad.error)
        XCTAssertTrue(error.contains("exit status 3"), error)
        XCTAssertTrue(error.contains("cannot parse a.txt: unexpected token"), error)
        XCTAssertFalse(error.contains("starting"), "stdout is not the error: \(error)")
        XCTAssertEqual(try outputs(r.id, stage: "bad"), [])
        // The independent stage still ran.
        XCTAssertEqual(try jobs(r.id, stage: "good").map(\.status), [.completed])
        XCTAssertEqual(try outputs(r.id, stage: "good").map(\.path), ["a.txt"])
        let report = try XCTUnwrap(RunReport.load(catalog: store.catalog, pipeline: queue, runId: r.id!))
        XCTAssertEqual(report.stages["bad"]?.status, "failed")
        XCTAssertEqual(report.stages["bad"]?.inputs["raw_source/a.txt"]?.attempts, 2)
        XCTAssertEqual(report.stages["good"]?.status, "completed")
        XCTAssertEqual(report.errors.count, 1)
    }

    func testTimeoutKillsTheCommand() throws {
        let p = try pipeline("""
            [[stage]]
            name = "slow"
            command = ["sleep", "30"]
            inputs = "raw_source/*.txt"
            timeout = "1s"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        let done = try waitForRun(r.id)
        XCTAssertEqual(done.status, .completedWithErrors)
        let job = try XCTUnwrap(jobs(r.id).first)
        XCTAssertEqual(job.status, .failed)
        XCTAssertTrue(job.error?.contains("timed out") ?? false, job.error ?? "nil")
        XCTAssertEqual(try outputs(r.id), [])
    }

    func testSymlinkInOutputFolderIsRefused() throws {
        let p = try pipeline("""
            [[stage]]
            name = "links"
            command = ["sh", "-c", "echo ok > {output_dir}/{stem}.out; ln -s /etc/passwd {output_dir}/escape"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        let done = try waitForRun(r.id)
        XCTAssertEqual(done.status, .completedWithErrors)
        let job = try XCTUnwrap(jobs(r.id).first)
        XCTAssertEqual(job.status, .failed)
        XCTAssertTrue(job.error?.contains("symbolic link") ?? false, job.error ?? "nil")
        XCTAssertTrue(job.error?.contains("links/escape") ?? false, job.error ?? "nil")
        XCTAssertEqual(try outputs(r.id), [], "nothing of the job is registered")
    }

    func testWritingOutsideTheOutputFolderFails() throws {
        let p = try pipeline("""
            [[stage]]
            name = "stray"
            command = ["sh", "-c", "echo x > stray.txt; echo ok > {output_dir}/{stem}.out"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "hidden"
            command = ["sh", "-c", "mkdir .cache; echo ok > {output_dir}/{stem}.out"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        let done = try waitForRun(r.id)
        XCTAssertEqual(done.status, .completedWithErrors)
        let job = try XCTUnwrap(jobs(r.id, stage: "stray").first)
        XCTAssertEqual(job.status, .failed)
        XCTAssertTrue(job.error?.contains("outside") ?? false, job.error ?? "nil")
        XCTAssertTrue(job.error?.contains("stray.txt") ?? false, job.error ?? "nil")
        let hidden = try XCTUnwrap(jobs(r.id, stage: "hidden").first)
        XCTAssertEqual(hidden.status, .failed)
        XCTAssertTrue(hidden.error?.contains(".cache") ?? false, hidden.error ?? "nil")
        XCTAssertEqual(try outputs(r.id), [])
    }

    /// A sandboxed command cannot leave a trace outside its job, so each run writes a random
    /// nonce beside its output: a command that ran again would have written a new one.
    func testIdenticalInputIsNeverProcessedTwice() throws {
        let p = try pipeline("""
            [[stage]]
            name = "words"
            command = ["sh", "-c", "wc -w < {input} | tr -d ' ' > {output_dir}/{stem}.count; od -An -N16 -tx1 /dev/urandom > {output_dir}/{stem}.nonce"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let first = try seal(p, [("a.txt", "one two three")])
        XCTAssertEqual(try waitForRun(first.id).status, .completed)
        let out1 = try outputs(first.id)
        XCTAssertEqual(out1.map(\.path), ["a.count", "a.nonce"])
        XCTAssertEqual(try blobContent(out1[0].blob), "3\n")
        XCTAssertEqual(try blobContent(out1[1].blob).count, 49, "16 random bytes in hex")
        XCTAssertEqual(try jobs(first.id).first?.memoized, false)

        let second = try seal(p, [("a.txt", "one two three")])
        XCTAssertEqual(try waitForRun(second.id).status, .completed)
        let job = try XCTUnwrap(jobs(second.id).first)
        XCTAssertEqual(job.status, .completed)
        XCTAssertTrue(job.memoized)
        let out2 = try outputs(second.id)
        XCTAssertEqual(out2.map(\.path), ["a.count", "a.nonce"])
        XCTAssertEqual(out2.map(\.blob), out1.map(\.blob), "the same nonce: the command did not run again")
        XCTAssertEqual(try refcount(out1[0].blob), 2, "one reference per output row")

        // Different content runs the command.
        let third = try seal(p, [("a.txt", "one two three four")])
        XCTAssertEqual(try waitForRun(third.id).status, .completed)
        let out3 = try outputs(third.id)
        XCTAssertNotEqual(out3[1].blob, out1[1].blob, "a new nonce: the command ran")
        XCTAssertEqual(try jobs(third.id).first?.memoized, false)
    }

    /// Two inputs with the same content but different names: each gets its own outputs, named
    /// from its own {stem}, and both succeed.
    func testSameContentUnderTwoNamesInOneRun() throws {
        let p = try pipeline("""
            [[stage]]
            name = "words"
            command = ["sh", "-c", "wc -w < {input} | tr -d ' ' > {output_dir}/{stem}.count"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner(workers: 1)
        let r = try seal(p, [("a.txt", "same words"), ("b.txt", "same words")])
        let done = try waitForRun(r.id)
        let states = try jobs(r.id).map { "\($0.inputPath): \($0.status.rawValue) \($0.error ?? "")" }
        XCTAssertEqual(done.status, .completed, "\(states)")
        XCTAssertEqual(try outputs(r.id).map(\.path), ["a.count", "b.count"])
    }
}
