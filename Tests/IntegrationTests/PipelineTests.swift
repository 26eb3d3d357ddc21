import Foundation
import XCTest

/// Sealed runs flow through the project's stages on a real mount (SPEC §4).
final class PipelineTests: MountTestCase {
    override var quietPeriod: Double { 0.3 }

    /// Writes a pipeline file and sets it with the CLI.
    @discardableResult
    private func setPipeline(_ toml: String, project: String = "demo", expectOK: Bool = true) -> ShellResult {
        let file = "\(work!)/pipeline-\(UUID().uuidString.prefix(6)).toml"
        _ = FileManager.default.createFile(atPath: file, contents: Data(toml.utf8))
        let r = fsx.cli("pipeline set --store \(q(fsx.store)) \(project) \(q(file))")
        if expectOK { XCTAssertEqual(r.status, 0, r.stderr) }
        return r
    }

    /// A sandboxed command leaves nothing outside its job, so each invocation writes a random
    /// nonce beside its output: a command that ran again writes a new one.
    private static let nonce = "od -An -N16 -tx1 /dev/urandom > {output_dir}/{stem}.nonce"

    /// The nonces of a run's stage outputs, by path.
    private func nonces(_ project: String, _ run: String) -> [String: String] {
        var found: [String: String] = [:]
        let runDir = "\(fsx.project(project))/runs/\(run)"
        for stage in (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? [] where stage != "raw_source" {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: "\(runDir)/\(stage)")) ?? [] where f.hasSuffix(".nonce") {
                found["\(stage)/\(f)"] = try? String(contentsOfFile: "\(runDir)/\(stage)/\(f)", encoding: .utf8)
            }
        }
        return found
    }

    /// The SPEC's example; each command also writes a nonce.
    private var wordsAndReport: String {
        """
        [[stage]]
        name = "words"
        command = ["sh", "-c", "wc -w < {input} > {output_dir}/{stem}.count; \(Self.nonce)"]
        inputs = "raw_source/**/*.txt"

        [[stage]]
        name = "report"
        command = ["sh", "-c", "echo \\"{name}: $(cat {input})\\" > {output_dir}/{stem}.report; \(Self.nonce)"]
        inputs = "words/*.count"
        depends_on = ["words"]
        retries = 2
        timeout = "30s"
        """
    }

    /// Waits (liveness only) until the run's status is no longer in_progress.
    private func waitForCompletion(_ project: String, _ run: String) throws -> [String: Any] {
        for _ in 0..<600 {
            let json = fsx.runJSON(project, run)
            if let s = json["status"] as? String, s != "in_progress" { return json }
            usleep(100_000)
        }
        throw NSError(domain: "wait", code: 1, userInfo: [NSLocalizedDescriptionKey: "run \(run) never finished: \(fsx.runJSON(project, run)) \(fsx.daemonLog.suffix(1500))"])
    }

    private func stage(_ json: [String: Any], _ name: String) -> [String: Any] {
        (json["stages"] as? [String: Any])?[name] as? [String: Any] ?? [:]
    }

    private func input(_ json: [String: Any], _ stageName: String, _ path: String) -> [String: Any] {
        (stage(json, stageName)["inputs"] as? [String: Any])?[path] as? [String: Any] ?? [:]
    }

    func testScenarioOutputsStatusAndMemoization() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline(wordsAndReport)
        XCTAssertTrue(run("cat \(q(p))/pipeline.toml").stdout.contains("name = \"words\""))
        XCTAssertTrue(sh("echo x > \(q(p))/pipeline.toml").stderr.contains("Read-only file system"))
        XCTAssertEqual(fsx.cli("pipeline show --store \(q(fsx.store)) demo").stdout, run("cat \(q(p))/pipeline.toml").stdout + "\n")
        XCTAssertEqual(run("ls \(q(p))").stdout, "history\nincoming\nlatest\npipeline.toml\nruns\n")

        run("mkdir -p \(q(work))/src/sub && echo 'one two three' > \(q(work))/src/a.txt && echo 'four five' > \(q(work))/src/sub/b.txt && echo skip > \(q(work))/src/c.csv")
        run("cp -r \(q(work))/src/. \(q(p))/incoming/")
        let r1 = try fsx.waitForRuns("demo", count: 1)[0]
        let json = try waitForCompletion("demo", r1)
        XCTAssertEqual(json["status"] as? String, "completed")
        XCTAssertEqual(run("cat \(q(p))/runs/\(r1)/words/a.count").stdout, "3\n")
        XCTAssertEqual(run("cat \(q(p))/runs/\(r1)/words/b.count").stdout, "2\n")
        XCTAssertEqual(run("cat \(q(p))/runs/\(r1)/report/a.report").stdout, "a.count: 3\n")
        XCTAssertEqual(stage(json, "words")["status"] as? String, "completed")
        XCTAssertEqual(input(json, "words", "raw_source/sub/b.txt")["attempts"] as? Int, 1)
        XCTAssertNotNil(input(json, "report", "words/b.count")["ended_at"] as? String)
        let first = nonces("demo", r1)
        XCTAssertEqual(first.keys.sorted(), ["report/a.nonce", "report/b.nonce", "words/a.nonce", "words/b.nonce"])
        XCTAssertEqual(Set(first.values).count, 4, "four invocations: \(first)")
        let x = run("getfattr -d -m - \(q(p))/runs/\(r1)/words/a.count").stdout
        XCTAssertTrue(x.contains("user.artifactfs.stage=\"words\""), x)
        XCTAssertTrue(x.contains("user.artifactfs.input=\"raw_source/a.txt\""), x)
        XCTAssertTrue(sh("rm \(q(p))/runs/\(r1)/words/a.count").stderr.contains("Read-only file system"))
        let status = run("\(q(artifactfsBinary)) status --store \(q(fsx.store)) demo \(r1)").stdout
        XCTAssertTrue(status.contains("stage words: completed"), status)

        // The same files again: no command runs, the outputs appear at once.
        run("cp -r \(q(work))/src/. \(q(p))/incoming/")
        let r2 = try fsx.waitForRuns("demo", count: 2)[1]
        let json2 = try waitForCompletion("demo", r2)
        XCTAssertEqual(json2["status"] as? String, "completed")
        XCTAssertEqual(nonces("demo", r2), first, "memoized: identical input is never processed twice")
        XCTAssertEqual(input(json2, "words", "raw_source/a.txt")["memoized"] as? Bool, true)
        XCTAssertEqual(run("cat \(q(p))/runs/\(r2)/report/b.report").stdout, "b.count: 2\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    func testInvalidPipelinesAreRejectedWithLineAndTheOldOneStays() throws {
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline(wordsAndReport)
        let cases: [(String, String)] = [
            ("[[stage]]\nname = \"a\"\ncommand = [\"x\", \"{nope}\"]\ninputs = \"raw_source/*\"\n", "line 3: stage 'a': unknown placeholder {nope}"),
            ("[[stage]]\nname = \"a\"\ncommand = [\"x\"]\ninputs = \"raw_source/*\"\ndepends_on = [\"b\"]\n[[stage]]\nname = \"b\"\ncommand = [\"x\"]\ninputs = \"raw_source/*\"\ndepends_on = [\"a\"]\n", "dependency cycle"),
            ("[[stage]]\nname = \"a\"\ncommand = [\"x\"]\ninputs = \"raw_source/*\"\ncolour = 1\n", "line 5: unknown key 'colour'"),
            ("[[stage]]\nname = \"a\"\ncommand = [\"x\"]\ninputs = \"raw_source/*\"\ndepends_on = [\"ghost\"]\n", "unknown stage 'ghost'"),
            ("[[stage]]\nname = \"a\"\ncommand = [\"x\"]\ninputs = \"/etc/*\"\n", "line 4: stage 'a': bad glob"),
            ("[[stage]\nname = \"a\"\n", "line 1:"),
        ]
        for (toml, expected) in cases {
            let r = setPipeline(toml, expectOK: false)
            XCTAssertNotEqual(r.status, 0, toml)
            XCTAssertTrue(r.stderr.contains(expected), "\(expected) not in: \(r.stderr)")
        }
        XCTAssertTrue(run("cat \(q(fsx.project("demo")))/pipeline.toml").stdout.contains("name = \"report\""), "the old pipeline stays")
        XCTAssertEqual(fsx.cli("pipeline set --store \(q(fsx.store)) nosuch \(q(work))/x.toml").status, 4)
    }

    func testFailingHangingAndEscapingStagesAreRecordedAndOthersGoOn() throws {
        let p = fsx.project("demo")
        // A nap no other test run on this machine uses, so the check below sees only ours.
        let nap = "60.\(Int.random(in: 100_000...999_999))"
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline("""
            [[stage]]
            name = "fails"
            command = ["sh", "-c", "echo broken input $(od -An -N8 -tx1 /dev/urandom | tr -d ' ') >&2; exit 3"]
            inputs = "raw_source/*.txt"
            retries = 2

            [[stage]]
            name = "hangs"
            command = ["sh", "-c", "sleep \(nap) & sleep \(nap)"]
            inputs = "raw_source/a.txt"
            timeout = "1s"

            [[stage]]
            name = "escapes"
            command = ["sh", "-c", "ln -s /etc/passwd {output_dir}/pw; echo ok > {output_dir}/fine.txt"]
            inputs = "raw_source/a.txt"

            [[stage]]
            name = "strays"
            command = ["sh", "-c", "echo out > stray.txt; echo ok > {output_dir}/x.txt"]
            inputs = "raw_source/a.txt"

            [[stage]]
            name = "copies"
            command = ["cp", "{input}", "{output_dir}/{name}"]
            inputs = "raw_source/*.txt"
            """)
        run("echo a > \(q(p))/incoming/a.txt && echo b > \(q(p))/incoming/b.txt")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        let json = try waitForCompletion("demo", r)
        XCTAssertEqual(json["status"] as? String, "completed_with_errors")
        XCTAssertEqual(stage(json, "fails")["status"] as? String, "failed")
        XCTAssertEqual(input(json, "fails", "raw_source/a.txt")["attempts"] as? Int, 3, "retries = 2 means three attempts")
        // Each attempt ran: the daemon logged each failure with its own command's stderr.
        let log = fsx.daemonLog
        let attempts = log.components(separatedBy: "broken input ").dropFirst().map { $0.prefix(16) }
        XCTAssertEqual(Set(attempts).count, 6, "\(attempts) in \(log.suffix(3000))")
        XCTAssertTrue((input(json, "fails", "raw_source/b.txt")["error"] as? String ?? "").contains("broken input"))
        XCTAssertTrue((input(json, "hangs", "raw_source/a.txt")["error"] as? String ?? "").contains("timed out"))
        XCTAssertTrue((input(json, "escapes", "raw_source/a.txt")["error"] as? String ?? "").contains("symbolic link"))
        XCTAssertTrue((input(json, "strays", "raw_source/a.txt")["error"] as? String ?? "").contains("outside its output folder"))
        XCTAssertEqual(run("ls -A \(q(p))/runs/\(r)/escapes").stdout, "", "nothing of a refused job is registered")
        XCTAssertEqual(run("ls -A \(q(p))/runs/\(r)/strays").stdout, "")
        XCTAssertEqual(run("ls \(q(p))/runs/\(r)/copies").stdout, "a.txt\nb.txt\n")
        XCTAssertEqual((json["errors"] as? [Any])?.count, 5)
        // The hanging command's whole process group was killed.
        XCTAssertEqual(sh("pgrep -f '^sleep \(nap)'").status, 1, "a stage process outlived its timeout")
    }

    func testKillDuringAStageResumesAndRetriesOnlyTheInterruptedInput() throws {
        // Two workers whatever the machine, so the fast input finishes while the slow one runs.
        fsx.unmount()
        fsx.extraMountArgs = ["--workers", "2"]
        try fsx.mount()
        let nap = "3.\(Int.random(in: 100_000...999_999))"
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline("""
            [[stage]]
            name = "slow"
            command = ["sh", "-c", "case {name} in slow*) sleep \(nap);; esac; cp {input} {output_dir}/{name}; \(Self.nonce)"]
            inputs = "raw_source/*.txt"
            """)
        run("echo fast > \(q(p))/incoming/fast.txt && echo slow > \(q(p))/incoming/slow.txt")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        // Wait until the fast input is done and the slow one is running, then kill -9.
        for _ in 0..<300 where input(fsx.runJSON("demo", r), "slow", "raw_source/slow.txt")["status"] as? String != "in_progress" { usleep(50_000) }
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: "\(p)/runs/\(r)/slow/fast.nonce") { usleep(50_000) }
        let fastNonce = try String(contentsOfFile: "\(p)/runs/\(r)/slow/fast.nonce", encoding: .utf8)
        XCTAssertEqual(fsx.runJSON("demo", r)["status"] as? String, "in_progress")
        fsx.crash()
        // The sandbox dies with the daemon, and the stage's processes with it.
        var left = sh("pgrep -f '^sleep \(nap)'")
        for _ in 0..<100 where left.status == 0 { usleep(50_000); left = sh("pgrep -f '^sleep \(nap)'") }
        XCTAssertEqual(left.status, 1, "a stage process outlived its daemon")
        try fsx.mount()
        let json = try waitForCompletion("demo", r)
        XCTAssertEqual(json["status"] as? String, "completed")
        XCTAssertEqual(run("cat \(q(p))/runs/\(r)/slow/slow.txt").stdout, "slow\n")
        XCTAssertEqual(input(json, "slow", "raw_source/slow.txt")["attempts"] as? Int, 2, "the interrupted input was retried")
        XCTAssertEqual(input(json, "slow", "raw_source/fast.txt")["attempts"] as? Int, 1)
        XCTAssertEqual(try String(contentsOfFile: "\(p)/runs/\(r)/slow/fast.nonce", encoding: .utf8), fastNonce,
                       "nothing that completed runs again")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    /// Inputs keep their names byte for byte: a stage gets the exact name in `{input}` and
    /// `{stem}`, its outputs are named from them, and `.run.json` lists each input once, NFC
    /// and NFD spellings apart (issue 9).
    func testInputNamesReachStagesByteForByte() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline("""
            [[stage]]
            name = "copy"
            command = ["cp", "{input}", "{output_dir}/{stem}.out"]
            inputs = "raw_source/*.txt"
            """)
        run("cd \(q(p))/incoming && printf A > caf$'\\xc3\\xa9'.txt && printf B > cafe$'\\xcc\\x81'.txt && printf C > $'\\xe9'.txt")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        _ = try waitForCompletion("demo", r)
        XCTAssertEqual(run("cd \(q(p))/runs/\(r)/copy && cat caf$'\\xc3\\xa9'.out cafe$'\\xcc\\x81'.out $'\\xe9'.out").stdout, "ABC")
        XCTAssertEqual(run("ls \(q(p))/runs/\(r)/copy | wc -l").stdout.trimmingCharacters(in: .whitespaces), "3\n")
        let report = "import json, sys; s = json.load(open(sys.argv[1]))['stages']['copy']; print(s['status'], len(s['inputs']))"
        XCTAssertEqual(run("python3 -c \(q(report)) \(q(p))/runs/\(r)/.run.json").stdout, "completed 3\n")
    }

    func testRerunProcessesAnOldRunWithTheCurrentPipelineOnly() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        setPipeline(wordsAndReport)
        run("echo 'a b c d' > \(q(p))/incoming/a.txt")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        _ = try waitForCompletion("demo", r)
        setPipeline("""
            [[stage]]
            name = "upper"
            command = ["sh", "-c", "tr a-z A-Z < {input} > {output_dir}/{name}"]
            inputs = "raw_source/*.txt"
            """)
        XCTAssertEqual(run("ls \(q(p))/runs/\(r)").stdout, "raw_source\nreport\nwords\n", "changing the pipeline alone touches no old run")
        run("\(q(artifactfsBinary)) pipeline rerun --store \(q(fsx.store)) demo \(r)")
        var json: [String: Any] = [:]
        for _ in 0..<300 {
            json = fsx.runJSON("demo", r)
            if (json["status"] as? String) == "completed", stage(json, "upper")["status"] as? String == "completed" { break }
            usleep(100_000)
        }
        XCTAssertEqual(run("cat \(q(p))/runs/\(r)/upper/a.txt").stdout, "A B C D\n")
        XCTAssertEqual(run("ls \(q(p))/runs/\(r)").stdout, "raw_source\nupper\n")
        XCTAssertEqual(fsx.cli("pipeline rerun --store \(q(fsx.store)) demo \(r) --stage ghost").status, 4)
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    func testExampleDocumentPipeline() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let p = fsx.project("docs")
        run("mkdir \(q(fsx.mnt))/projects/docs")
        XCTAssertEqual(fsx.cli("pipeline set --store \(q(fsx.store)) docs \(q(repo))/examples/document-pipeline.toml").status, 0)
        run("cp -r \(q(repo))/examples/documents/. \(q(p))/incoming/")
        let r = try fsx.waitForRuns("docs", count: 1)[0]
        let json = try waitForCompletion("docs", r)
        XCTAssertEqual(json["status"] as? String, "completed", "\(json)")
        let facts = run("""
            python3 -c 'import sqlite3,sys; db=sqlite3.connect("file:\(p)/runs/\(r)/ingest/quarterly-report-001.sqlite?mode=ro", uri=True); print(sorted(v for k,v in db.execute("select kind, value from facts") if k=="email"))'
            """).stdout
        XCTAssertEqual(facts, "['finance@example.com']\n")
        XCTAssertTrue(run("cat \(q(p))/runs/\(r)/markdown/quarterly-report.md").stdout.contains("# Third quarter report"))
    }
}
