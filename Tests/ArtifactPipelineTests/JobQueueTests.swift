import ArtifactCore
import ArtifactPipeline
import Foundation
import GRDB
import XCTest

private let twoStages = """
    [[stage]]
    name = "words"
    command = ["sh", "-c", "wc -w < {input} > {output_dir}/{stem}.count"]
    inputs = "raw_source/**/*.txt"
    retries = 2

    [[stage]]
    name = "report"
    command = ["cat", "{input}"]
    inputs = "words/*.count"
    depends_on = ["words"]

    """

/// The same stages with no retries.
private let twoStagesNoRetries = twoStages.replacingOccurrences(of: "retries = 2\n", with: "")

final class JobQueueTests: PipelineTestCase {

    /// Claims and completes every runnable job, writing what the stage command would: for
    /// words `<stem>.count`, for report `<stem>.report`. Backoffs are skipped.
    func drive(maxJobs: Int = 100) throws {
        var n = 0
        while let job = try queue.claim(now: Date().timeIntervalSince1970 + 3600) {
            n += 1
            XCTAssertLessThan(n, maxJobs, "the queue never ran dry")
            if n >= maxJobs { return }
            try queue.complete(job, outputs: [simulatedOutput(job)], memoized: false)
        }
    }

    func simulatedOutput(_ job: JobRecord) throws -> JobQueue.Output {
        let name = job.inputPath.lastComponent.description
        let stem = name.contains(".") ? String(name[..<name.lastIndex(of: ".")!]) : name
        let ext = job.stage == "words" ? "count" : job.stage
        return try output("\(stem).\(ext)", "\(job.stage) of \(job.inputPath)\n")
    }

    func pipelineHash(_ projectId: ProjectID) throws -> String? {
        try sql { try String.fetchOne($0, sql: "SELECT hash FROM pipeline WHERE project_id = ?", arguments: [projectId]) }
    }

    // MARK: definitions

    func testSetPipelineStoresItAndKeepsTheOldOneWhenTheNewOneIsInvalid() throws {
        let p = try makeProject()
        XCTAssertNil(try queue.definitionSource(projectId: p))
        let def = try queue.setPipeline(projectId: p, source: twoStages)
        XCTAssertEqual(def.stages.map(\.name), ["words", "report"])
        XCTAssertEqual(try queue.definitionSource(projectId: p), twoStages)
        XCTAssertEqual(try pipelineHash(p), def.hash)

        XCTAssertThrowsError(try queue.setPipeline(projectId: p, source: "[[stage]]\nname = \"x\"\n")) { error in
            XCTAssertTrue(error is PipelineDefinitionError || error is ArtifactError, "\(error)")
            XCTAssertTrue("\(error)".contains("needs a command"), "\(error)")
        }
        XCTAssertThrowsError(try queue.setPipeline(projectId: p, source: "not toml ["))
        XCTAssertEqual(try queue.definitionSource(projectId: p), twoStages)
        XCTAssertEqual(try pipelineHash(p), def.hash)
    }

    // MARK: starting runs

    func testStartWithoutPipelineCompletesTheRun() throws {
        let p = try makeProject()
        let r = try sealedRun(p, [("a.txt", "one two")])
        XCTAssertEqual(r.status, .inProgress)
        XCTAssertNil(r.pipelineHash)
        try queue.start(runId: r.id!)
        let after = try run(r.id)
        XCTAssertEqual(after.status, .completed)
        XCTAssertNotNil(after.completedAt)
        XCTAssertEqual(after.pipelineHash, "")
        XCTAssertEqual(try jobs(r.id), [])
        // Idempotent.
        try queue.start(runId: r.id!)
        XCTAssertEqual(try run(r.id), after)
    }

    func testStartCreatesPendingJobsOnlyForStagesWithoutDependenciesOnePerMatchingInput() throws {
        let p = try makeProject()
        let def = try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one two"), ("sub/deeper/b.txt", "three"), ("c.md", "not text"), ("d.txt.bak", "x")])
        try queue.start(runId: r.id!)

        let after = try run(r.id)
        XCTAssertEqual(after.status, .inProgress)
        XCTAssertNil(after.completedAt)
        XCTAssertEqual(after.pipelineHash, def.hash)

        let all = try jobs(r.id)
        XCTAssertEqual(all.map(\.stage), ["words", "words"], "no report jobs before words finished")
        XCTAssertEqual(all.map(\.inputPath), ["raw_source/a.txt", "raw_source/sub/deeper/b.txt"])
        let files = try store.catalog.files(runId: r.id!)
        for job in all {
            XCTAssertEqual(job.status, .pending)
            XCTAssertEqual(job.attempts, 0)
            XCTAssertEqual(job.maxAttempts, 3, "retries 2 = three attempts")
            XCTAssertEqual(job.timeout, 3600)
            XCTAssertEqual(job.stageHash, def.stage(named: "words")!.definitionHash)
            XCTAssertNil(job.error)
            XCTAssertFalse(job.memoized)
            let file = try XCTUnwrap(files.first { PathBytes("raw_source").appending($0.path) == job.inputPath })
            XCTAssertEqual(job.inputBlob, file.blob)
        }
        // Idempotent.
        try queue.start(runId: r.id!)
        XCTAssertEqual(try jobs(r.id), all)
    }

    func testStageWithoutMatchingInputsGetsASkippedJob() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: """
            [[stage]]
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "tables"
            command = ["true"]
            inputs = "raw_source/**/*.csv"
            timeout = "30s"
            """)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)
        let tables = try jobs(r.id, stage: "tables")
        XCTAssertEqual(tables.count, 1)
        XCTAssertEqual(tables.first?.status, .skipped)
        XCTAssertEqual(tables.first?.inputPath, "")
        XCTAssertNil(tables.first?.inputBlob)
        XCTAssertEqual(try jobs(r.id, stage: "words").map(\.status), [.pending])
        XCTAssertEqual(try run(r.id).status, .inProgress)
    }

    func testRunWhereNothingMatchesCompletesWithEveryStageSkipped() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("c.md", "nothing to count")])
        try queue.start(runId: r.id!)
        let all = try jobs(r.id)
        XCTAssertEqual(all.map(\.stage).sorted(), ["report", "words"])
        XCTAssertEqual(all.map(\.status), [.skipped, .skipped])
        let after = try run(r.id)
        XCTAssertEqual(after.status, .completed)
        XCTAssertNotNil(after.completedAt)
        XCTAssertNil(try queue.claim(now: Date().timeIntervalSince1970 + 3600))
    }

    // MARK: claiming and finishing

    func testClaimMarksInProgressAndCountsAnAttempt() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one"), ("b.txt", "two")])
        try queue.start(runId: r.id!)

        let now = Date().timeIntervalSince1970
        let first = try XCTUnwrap(queue.claim(now: now))
        XCTAssertEqual(first.status, .inProgress)
        XCTAssertEqual(first.attempts, 1)
        XCTAssertEqual(first.startedAt, now)
        XCTAssertNil(first.endedAt)
        XCTAssertEqual(try jobs(r.id).first { $0.id == first.id }, first, "the claim is stored")

        let second = try XCTUnwrap(queue.claim(now: now))
        XCTAssertNotEqual(second.id, first.id)
        XCTAssertEqual(Set([first.inputPath, second.inputPath]), ["raw_source/a.txt", "raw_source/b.txt"])
        XCTAssertNil(try queue.claim(now: now), "nothing else is runnable")
        XCTAssertEqual(try jobs(r.id).map(\.status), [.inProgress, .inProgress])
    }

    func testCompleteRecordsOutputsRefcountsMemoAndQueuesDependents() throws {
        let p = try makeProject()
        let def = try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one two three"), ("sub/b.txt", "four")])
        try queue.start(runId: r.id!)
        let rawA = try XCTUnwrap(store.catalog.files(runId: r.id!).first { $0.path == "a.txt" })
        XCTAssertEqual(try refcount(rawA.blob), 1)

        let jobA = try XCTUnwrap(queue.claim())
        XCTAssertEqual(jobA.inputPath, "raw_source/a.txt")
        let outA = try output("a.count", "3\n")
        XCTAssertNil(try refcount(outA.blob), "put() alone does not reference a blob")
        try queue.complete(jobA, outputs: [outA], memoized: false)

        let doneA = try XCTUnwrap(jobs(r.id).first { $0.id == jobA.id })
        XCTAssertEqual(doneA.status, .completed)
        XCTAssertNotNil(doneA.endedAt)
        XCTAssertFalse(doneA.memoized)
        XCTAssertNil(doneA.error)
        let rows = try outputs(r.id)
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?.stage, "words")
        XCTAssertEqual(rows.first?.path, "a.count")
        XCTAssertEqual(rows.first?.dir, "")
        XCTAssertEqual(rows.first?.name, "a.count")
        XCTAssertEqual(rows.first?.blob, outA.blob)
        XCTAssertEqual(rows.first?.size, 2)
        XCTAssertEqual(rows.first?.inputPath, "raw_source/a.txt")
        XCTAssertEqual(rows.first?.jobId, jobA.id)
        XCTAssertEqual(try refcount(outA.blob), 1)
        XCTAssertEqual(try queue.memo(key: jobA.memoKey, inputBlob: rawA.blob), [outA])
        XCTAssertEqual(try jobs(r.id, stage: "report"), [], "report waits until every words job finished")

        // The second input writes a .count and a nested copy of a raw file's content.
        let jobB = try XCTUnwrap(queue.claim())
        XCTAssertEqual(jobB.inputPath, "raw_source/sub/b.txt")
        let outB = try output("b.count", "1\n")
        let copy = try output("nested/deep/copy.txt", "one two three")
        XCTAssertEqual(copy.blob, rawA.blob)
        try queue.complete(jobB, outputs: [outB, copy], memoized: false)
        XCTAssertEqual(try refcount(rawA.blob), 2, "+1 for the output row that holds the raw file's content")
        XCTAssertEqual(try refcount(outB.blob), 1)
        XCTAssertEqual(try outputs(r.id, stage: "words").map(\.path), ["b.count", "a.count", "nested/deep/copy.txt"].sorted())
        XCTAssertTrue(try store.catalog.outputHasDirectory(runId: r.id!, stage: "words", parent: "", name: "nested"))
        XCTAssertTrue(try store.catalog.outputHasDirectory(runId: r.id!, stage: "words", parent: "nested", name: "deep"))
        XCTAssertEqual(try store.catalog.outputs(runId: r.id!, stage: "words", dir: "nested/deep").map(\.name), ["copy.txt"])
        XCTAssertEqual(try store.catalog.countedReferences()[rawA.blob.hex], 2)

        // Now report's jobs exist, one per words output matching words/*.count.
        let report = try jobs(r.id, stage: "report")
        XCTAssertEqual(report.map(\.inputPath), ["words/a.count", "words/b.count"])
        XCTAssertEqual(report.map(\.inputBlob), [outA.blob, outB.blob])
        XCTAssertEqual(report.map(\.status), [.pending, .pending])
        XCTAssertEqual(report.map(\.maxAttempts), [1, 1])
        XCTAssertEqual(report.map(\.stageHash), [def.stage(named: "report")!.definitionHash, def.stage(named: "report")!.definitionHash])
        XCTAssertEqual(try run(r.id).status, .inProgress)

        // Completing report finishes the run.
        try drive()
        let after = try run(r.id)
        XCTAssertEqual(after.status, .completed)
        XCTAssertNotNil(after.completedAt)
        XCTAssertEqual(try outputs(r.id, stage: "report").map(\.path), ["a.report", "b.report"])
        XCTAssertEqual(try jobs(r.id).map(\.status), Array(repeating: .completed, count: 4))
    }

    func testMemoizedCompletionWritesNoMemoRowAndCompletingTwiceIsHarmless() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStagesNoRetries)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)
        let job = try XCTUnwrap(queue.claim())
        let out = try output("a.count", "1\n")
        try queue.complete(job, outputs: [out], memoized: true)
        XCTAssertNil(try queue.memo(key: job.memoKey, inputBlob: job.inputBlob!))
        XCTAssertEqual(try jobs(r.id, stage: "words").first?.memoized, true)
        // A second completion of a job no longer in progress changes nothing.
        try queue.complete(job, outputs: [out], memoized: false)
        XCTAssertEqual(try outputs(r.id).count, 1)
        XCTAssertEqual(try refcount(out.blob), 1)
    }

    func testMemoLookup() throws {
        let p = try makeProject()
        let def = try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)
        let job = try XCTUnwrap(queue.claim())
        let words = job.memoKey
        XCTAssertNil(try queue.memo(key: words, inputBlob: job.inputBlob!))
        let outs = [try output("a.count", "1\n"), try output("more/a.extra", "extra")]
        try queue.complete(job, outputs: outs, memoized: false)
        XCTAssertEqual(try queue.memo(key: words, inputBlob: job.inputBlob!), outs)
        XCTAssertNil(try queue.memo(key: def.stage(named: "report")!.definitionHash, inputBlob: job.inputBlob!))
        XCTAssertNil(try queue.memo(key: words, inputBlob: outs[0].blob))
    }

    func testFailRetriesWithBackoffUntilMaxAttemptsThenFails() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)

        var job = try XCTUnwrap(queue.claim())
        try queue.fail(job, error: "boom 1")
        var row = try XCTUnwrap(jobs(r.id).first)
        XCTAssertEqual(row.status, .pending)
        XCTAssertEqual(row.attempts, 1)
        XCTAssertEqual(row.error, "boom 1")
        let ended1 = try XCTUnwrap(row.endedAt)
        XCTAssertGreaterThan(row.notBefore, ended1, "retried later, not at once")
        let backoff1 = row.notBefore - ended1
        XCTAssertNil(try queue.claim(now: row.notBefore - 0.001), "not before its backoff")
        XCTAssertEqual(try run(r.id).status, .inProgress)

        job = try XCTUnwrap(queue.claim(now: row.notBefore))
        XCTAssertEqual(job.attempts, 2)
        try queue.fail(job, error: "boom 2")
        row = try XCTUnwrap(jobs(r.id).first)
        XCTAssertEqual(row.status, .pending)
        XCTAssertEqual(row.error, "boom 2")
        let ended2 = try XCTUnwrap(row.endedAt)
        XCTAssertGreaterThan(row.notBefore, ended2)
        XCTAssertGreaterThan(row.notBefore - ended2, backoff1, "the backoff grows")
        XCTAssertNil(try queue.claim(now: row.notBefore - 0.001))

        job = try XCTUnwrap(queue.claim(now: row.notBefore + 60))
        XCTAssertEqual(job.attempts, 3)
        try queue.fail(job, error: "boom 3")
        row = try XCTUnwrap(jobs(r.id, stage: "words").first)
        XCTAssertEqual(row.status, .failed)
        XCTAssertEqual(row.attempts, 3)
        XCTAssertEqual(row.error, "boom 3")
        XCTAssertNil(try queue.claim(now: Date().timeIntervalSince1970 + 86400))

        // report has nothing to read and is skipped; the run ends with errors.
        XCTAssertEqual(try jobs(r.id, stage: "report").map(\.status), [.skipped])
        let after = try run(r.id)
        XCTAssertEqual(after.status, .completedWithErrors)
        XCTAssertNotNil(after.completedAt)
    }

    func testFailWithoutRetriesFailsAtOnce() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStagesNoRetries)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)
        let job = try XCTUnwrap(queue.claim())
        XCTAssertEqual(job.maxAttempts, 1)
        try queue.fail(job, error: "exit status 1")
        XCTAssertEqual(try jobs(r.id, stage: "words").first?.status, .failed)
        XCTAssertEqual(try run(r.id).status, .completedWithErrors)
    }

    func testAFailedInputDoesNotStopOthersAndTheRunEndsCompletedWithErrors() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStagesNoRetries)
        let r = try sealedRun(p, [("a.txt", "one"), ("b.txt", "two")])
        try queue.start(runId: r.id!)
        let a = try XCTUnwrap(queue.claim())
        let b = try XCTUnwrap(queue.claim())
        try queue.fail(a, error: "bad input")
        XCTAssertEqual(try run(r.id).status, .inProgress)
        try queue.complete(b, outputs: [try simulatedOutput(b)], memoized: false)
        XCTAssertEqual(try jobs(r.id, stage: "report").map(\.inputPath), ["words/b.count"])
        try drive()
        XCTAssertEqual(try jobs(r.id, stage: "report").map(\.status), [.completed])
        XCTAssertEqual(try run(r.id).status, .completedWithErrors)
    }

    // MARK: recovery

    func testRecoverRetriesJobsThatWereInProgressEvenWithAttemptsUsedUp() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStagesNoRetries)
        let r = try sealedRun(p, [("a.txt", "one"), ("b.txt", "two")])
        try queue.start(runId: r.id!)
        let a = try XCTUnwrap(queue.claim())
        XCTAssertEqual(a.attempts, a.maxAttempts, "its only attempt")
        // b stays pending: recovery leaves it alone.

        try queue.recover()
        let row = try XCTUnwrap(jobs(r.id).first { $0.id == a.id })
        XCTAssertEqual(row.status, .pending)
        XCTAssertEqual(row.notBefore, 0)
        XCTAssertGreaterThanOrEqual(row.maxAttempts, row.attempts + 1)
        XCTAssertEqual(try jobs(r.id).first { $0.inputPath == "raw_source/b.txt" }?.status, .pending)

        var claimed: [JobRecord] = []
        while let j = try queue.claim() { claimed.append(j) }
        XCTAssertEqual(Set(claimed.map(\.inputPath)), ["raw_source/a.txt", "raw_source/b.txt"])
        let again = try XCTUnwrap(claimed.first { $0.id == a.id })
        XCTAssertEqual(again.attempts, 2)
        try queue.complete(again, outputs: [try simulatedOutput(again)], memoized: false)
        XCTAssertEqual(try jobs(r.id).first { $0.id == a.id }?.status, .completed)
    }

    func testRecoverStartsRunsSealedButNeverHandedToThePipeline() throws {
        let p = try makeProject("with-pipeline")
        let def = try queue.setPipeline(projectId: p, source: twoStages)
        let q = try makeProject("without")
        let r = try sealedRun(p, [("a.txt", "one")])
        let s = try sealedRun(q, [("a.txt", "one")])
        XCTAssertNil(try run(r.id).pipelineHash)

        try queue.recover()
        XCTAssertEqual(try run(r.id).pipelineHash, def.hash)
        XCTAssertEqual(try run(r.id).status, .inProgress)
        XCTAssertEqual(try jobs(r.id).map(\.inputPath), ["raw_source/a.txt"])
        XCTAssertEqual(try jobs(r.id).map(\.status), [.pending])
        XCTAssertEqual(try run(s.id).status, .completed)
        XCTAssertEqual(try run(s.id).pipelineHash, "")

        // Again: nothing doubles.
        try queue.recover()
        XCTAssertEqual(try jobs(r.id).count, 1)
    }

    // MARK: rerun and pipeline changes

    /// Two outputs of one stage with the same content are two references, and a rerun takes
    /// both back (before the one refcount writer, it took back one: the count drifted).
    func testRerunTakesBackEveryReferenceOfIdenticalOutputs() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: r.id!)
        let job = try XCTUnwrap(queue.claim())
        let first = try output("x.count", "same"), second = try output("y.count", "same")
        XCTAssertEqual(first.blob, second.blob)
        try queue.complete(job, outputs: [first, second], memoized: false)
        XCTAssertEqual(try refcount(first.blob), 2)
        try queue.rerun(runId: r.id!, stage: "words")
        XCTAssertEqual(try refcount(first.blob), 0)
        XCTAssertEqual(try store.catalog.countedReferences()[first.blob.hex] ?? 0, 0)
    }

    func testRerunStageRemovesItAndItsDependentsAndQueuesThemAgain() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("a.txt", "one"), ("b.txt", "two")])
        try queue.start(runId: r.id!)
        try drive()
        XCTAssertEqual(try run(r.id).status, .completed)
        let wordsBlobs = try outputs(r.id, stage: "words").map(\.blob)
        let reportBlobs = try outputs(r.id, stage: "report").map(\.blob)
        XCTAssertEqual(wordsBlobs.count, 2)
        XCTAssertEqual(reportBlobs.count, 2)
        for b in wordsBlobs + reportBlobs { XCTAssertEqual(try refcount(b), 1) }

        // Rerunning report leaves words alone.
        try queue.rerun(runId: r.id!, stage: "report")
        var after = try run(r.id)
        XCTAssertEqual(after.status, .inProgress)
        XCTAssertNil(after.completedAt)
        XCTAssertEqual(try outputs(r.id, stage: "words").map(\.blob), wordsBlobs)
        XCTAssertEqual(try outputs(r.id, stage: "report"), [])
        XCTAssertEqual(try jobs(r.id, stage: "words").map(\.status), [.completed, .completed])
        XCTAssertEqual(try jobs(r.id, stage: "report").map(\.status), [.pending, .pending])
        XCTAssertEqual(try jobs(r.id, stage: "report").map(\.attempts), [0, 0])
        for b in wordsBlobs { XCTAssertEqual(try refcount(b), 1) }
        for b in reportBlobs { XCTAssertEqual(try refcount(b), 0) }
        try drive()
        XCTAssertEqual(try run(r.id).status, .completed)
        for b in reportBlobs { XCTAssertEqual(try refcount(b), 1) }

        // Rerunning words takes report with it.
        try queue.rerun(runId: r.id!, stage: "words")
        after = try run(r.id)
        XCTAssertEqual(after.status, .inProgress)
        XCTAssertEqual(try outputs(r.id), [])
        XCTAssertEqual(try jobs(r.id, stage: "words").map(\.status), [.pending, .pending])
        XCTAssertEqual(try jobs(r.id, stage: "report"), [])
        for b in wordsBlobs + reportBlobs { XCTAssertEqual(try refcount(b), 0) }
        XCTAssertEqual(try store.catalog.countedReferences().filter { (wordsBlobs + reportBlobs).map(\.hex).contains($0.key) }, [:])
        try drive()
        XCTAssertEqual(try run(r.id).status, .completed)
        XCTAssertEqual(try outputs(r.id).count, 4)
        for b in wordsBlobs + reportBlobs { XCTAssertEqual(try refcount(b), 1) }

        // All stages.
        try queue.rerun(runId: r.id!, stage: nil)
        XCTAssertEqual(try outputs(r.id), [])
        XCTAssertEqual(try jobs(r.id).map(\.stage), ["words", "words"])
        try drive()
        XCTAssertEqual(try run(r.id).status, .completed)

        XCTAssertArtifactError(.notFound, try queue.rerun(runId: r.id!, stage: "nope"))
        XCTAssertArtifactError(.notFound, try queue.rerun(runId: RunID(987_654), stage: nil))
        let bare = try makeProject("bare")
        let s = try sealedRun(bare, [("a.txt", "x")])
        try queue.start(runId: s.id!)
        XCTAssertArtifactError(.notFound, try queue.rerun(runId: s.id!, stage: nil))
    }

    func testChangingThePipelineNeverTouchesOldRunsAndRerunUsesTheCurrentOne() throws {
        let p = try makeProject()
        let v1 = try queue.setPipeline(projectId: p, source: twoStages)
        let done = try sealedRun(p, [("a.txt", "one")])
        try queue.start(runId: done.id!)
        try drive()
        let inFlight = try sealedRun(p, [("b.txt", "two")])
        try queue.start(runId: inFlight.id!)
        let oldJobs = try jobs(done.id)

        // v2: a different words command and no report stage.
        let v2Source = """
            [[stage]]
            name = "words"
            command = ["sh", "-c", "wc -l < {input} > {output_dir}/{stem}.count"]
            inputs = "raw_source/**/*.txt"
            """
        let v2 = try queue.setPipeline(projectId: p, source: v2Source)
        XCTAssertNotEqual(v1.hash, v2.hash)
        XCTAssertNotEqual(v1.stage(named: "words")!.definitionHash, v2.stage(named: "words")!.definitionHash)

        XCTAssertEqual(try run(done.id).pipelineHash, v1.hash)
        XCTAssertEqual(try run(done.id).status, .completed)
        XCTAssertEqual(try jobs(done.id), oldJobs)
        XCTAssertEqual(try run(inFlight.id).pipelineHash, v1.hash)

        // The run in flight finishes under v1: report still follows words.
        try drive()
        XCTAssertEqual(try jobs(inFlight.id, stage: "report").map(\.status), [.completed])
        XCTAssertEqual(try jobs(inFlight.id, stage: "words").map(\.stageHash), [v1.stage(named: "words")!.definitionHash])
        XCTAssertEqual(try run(inFlight.id).status, .completed)

        // A new run uses v2.
        let fresh = try sealedRun(p, [("c.txt", "three")])
        try queue.start(runId: fresh.id!)
        XCTAssertEqual(try run(fresh.id).pipelineHash, v2.hash)
        XCTAssertEqual(try jobs(fresh.id).map(\.stageHash), [v2.stage(named: "words")!.definitionHash])
        try drive()
        XCTAssertEqual(try jobs(fresh.id).map(\.stage), ["words"])
        XCTAssertEqual(try run(fresh.id).status, .completed)

        // Rerunning the old run moves it to v2; the stage v2 lacks goes with its outputs.
        let oldReportBlob = try XCTUnwrap(outputs(done.id, stage: "report").first?.blob)
        let before = try XCTUnwrap(refcount(oldReportBlob))
        try queue.rerun(runId: done.id!, stage: nil)
        XCTAssertEqual(try run(done.id).pipelineHash, v2.hash)
        XCTAssertEqual(try jobs(done.id).map(\.stage), ["words"])
        XCTAssertEqual(try jobs(done.id).map(\.stageHash), [v2.stage(named: "words")!.definitionHash])
        XCTAssertEqual(try outputs(done.id, stage: "report"), [])
        XCTAssertEqual(try refcount(oldReportBlob), before - 1)
        XCTAssertEqual(try run(inFlight.id).pipelineHash, v1.hash, "other runs stay as they were")
        try drive()
        XCTAssertEqual(try run(done.id).status, .completed)
    }

    // MARK: report

    func testRunReportShowsStageAndInputStatus() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages.replacingOccurrences(of: "retries = 2", with: "retries = 1"))
        let r = try sealedRun(p, [("a.txt", "one"), ("b.txt", "two")])
        try queue.start(runId: r.id!)

        var report = try XCTUnwrap(RunReport.load(catalog: store.catalog, pipeline: queue, runId: r.id!))
        XCTAssertEqual(report.status, "in_progress")
        XCTAssertEqual(report.stages.keys.sorted(), ["words"])
        XCTAssertEqual(report.stages["words"]?.status, "pending")
        XCTAssertEqual(report.stages["words"]?.inputs.names, ["raw_source/a.txt", "raw_source/b.txt"])

        let a = try XCTUnwrap(queue.claim())
        report = try XCTUnwrap(RunReport.load(catalog: store.catalog, pipeline: queue, runId: r.id!))
        XCTAssertEqual(report.stages["words"]?.status, "in_progress")
        XCTAssertEqual(report.stages["words"]?.inputs["raw_source/a.txt"]?.status, "in_progress")
        XCTAssertEqual(report.stages["words"]?.inputs["raw_source/a.txt"]?.attempts, 1)
        XCTAssertNotNil(report.stages["words"]?.inputs["raw_source/a.txt"]?.startedAt)
        try queue.complete(a, outputs: [try simulatedOutput(a)], memoized: false)

        var b = try XCTUnwrap(queue.claim())
        try queue.fail(b, error: "first try\nstderr says no")
        b = try XCTUnwrap(queue.claim(now: Date().timeIntervalSince1970 + 3600))
        try queue.fail(b, error: "second try\nstderr says no")
        try drive()

        report = try XCTUnwrap(RunReport.load(catalog: store.catalog, pipeline: queue, runId: r.id!))
        XCTAssertEqual(report.status, "completed_with_errors")
        XCTAssertNotNil(report.completedAt)
        XCTAssertEqual(report.stages.keys.sorted(), ["report", "words"])
        let words = try XCTUnwrap(report.stages["words"])
        XCTAssertEqual(words.status, "failed")
        XCTAssertEqual(words.inputs["raw_source/a.txt"]?.status, "completed")
        XCTAssertEqual(words.inputs["raw_source/a.txt"]?.attempts, 1)
        XCTAssertNil(words.inputs["raw_source/a.txt"]?.error)
        XCTAssertNotNil(words.inputs["raw_source/a.txt"]?.endedAt)
        XCTAssertEqual(words.inputs["raw_source/a.txt"]?.memoized, false)
        XCTAssertEqual(words.inputs["raw_source/b.txt"]?.status, "failed")
        XCTAssertEqual(words.inputs["raw_source/b.txt"]?.attempts, 2)
        XCTAssertEqual(words.inputs["raw_source/b.txt"]?.error, "second try\nstderr says no")
        XCTAssertEqual(report.stages["report"]?.status, "completed")
        XCTAssertEqual(report.stages["report"]?.inputs.names, ["words/a.count"])
        XCTAssertEqual(report.errors, ["words raw_source/b.txt: second try\nstderr says no"])

        // JSON shape: every key present.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
        let stages = try XCTUnwrap(json["stages"] as? [String: Any])
        let jsonWords = try XCTUnwrap(stages["words"] as? [String: Any])
        XCTAssertEqual(jsonWords["status"] as? String, "failed")
        let inputs = try XCTUnwrap(jsonWords["inputs"] as? [String: Any])
        let jsonA = try XCTUnwrap(inputs["raw_source/a.txt"] as? [String: Any])
        XCTAssertEqual(Set(jsonA.keys), ["status", "attempts", "started_at", "ended_at", "error", "memoized"])
    }

    func testRunReportOfSkippedStage() throws {
        let p = try makeProject()
        try queue.setPipeline(projectId: p, source: twoStages)
        let r = try sealedRun(p, [("c.md", "x")])
        try queue.start(runId: r.id!)
        let report = try XCTUnwrap(RunReport.load(catalog: store.catalog, pipeline: queue, runId: r.id!))
        XCTAssertEqual(report.status, "completed")
        XCTAssertEqual(report.stages["words"]?.status, "skipped")
        XCTAssertEqual(report.stages["words"]?.inputs.count, 0)
        XCTAssertEqual(report.stages["report"]?.status, "skipped")
        XCTAssertEqual(report.errors, [])
    }
}

/// Asserts that `body` throws an `ArtifactError` with `code`.
func XCTAssertArtifactError<T>(_ code: ArtifactError.Code, _ body: @autoclosure () throws -> T,
                               file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected ArtifactError(.\(code)) but nothing was thrown", file: file, line: line)
    } catch let error as ArtifactError {
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
    } catch {
        XCTFail("expected ArtifactError(.\(code)), got \(error)", file: file, line: line)
    }
}
