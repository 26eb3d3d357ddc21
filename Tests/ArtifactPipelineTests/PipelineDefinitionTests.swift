import ArtifactCore
import ArtifactPipeline
import Crypto
import Foundation
import XCTest

/// A one-stage pipeline whose lines are numbered from 1 at `[[stage]]`; `body` replaces lines 2…
private func oneStage(_ body: String) -> String { "[[stage]]\n" + body + "\n" }

final class PipelineDefinitionTests: XCTestCase {

    // MARK: accepted

    func testSpecExampleParses() throws {
        let p = try PipelineDefinition.parse(specExample)
        XCTAssertEqual(p.stages.map(\.name), ["words", "report"])
        let words = try XCTUnwrap(p.stage(named: "words"))
        XCTAssertEqual(words.command, ["sh", "-c", "wc -w < {input} > {output_dir}/{stem}.count"])
        XCTAssertEqual(words.inputs, "raw_source/**/*.txt")
        XCTAssertEqual(words.inputRoot, "raw_source")
        XCTAssertEqual(words.dependsOn, [])
        XCTAssertEqual(words.retries, 0)
        XCTAssertEqual(words.timeoutSeconds, 3600)
        let report = try XCTUnwrap(p.stage(named: "report"))
        XCTAssertEqual(report.command, ["python3", "report.py", "{input}", "{output_dir}"])
        XCTAssertEqual(report.inputs, "words/*.count")
        XCTAssertEqual(report.inputRoot, "words")
        XCTAssertEqual(report.dependsOn, ["words"])
        XCTAssertEqual(report.retries, 2)
        XCTAssertEqual(report.timeoutSeconds, 30)
        XCTAssertEqual(p.source, specExample)
        XCTAssertEqual(p.hash.count, 64)
        XCTAssertNil(p.stage(named: "nope"))
    }

    func testStagesComeOutInDependencyOrderWhenWrittenInReverse() throws {
        let text = """
            [[stage]]
            name = "summary"
            command = ["cat", "{input}"]
            inputs = "report/*.txt"
            depends_on = ["report"]

            [[stage]]
            name = "report"
            command = ["cat", "{input}"]
            inputs = "words/*.count"
            depends_on = ["words"]

            [[stage]]
            name = "words"
            command = ["wc", "-w", "{input}"]
            inputs = "raw_source/**/*.txt"

            [[stage]]
            name = "lines"
            command = ["wc", "-l", "{input}"]
            inputs = "raw_source/*.txt"
            """
        let p = try PipelineDefinition.parse(text)
        let names = p.stages.map(\.name)
        XCTAssertEqual(Set(names), ["summary", "report", "words", "lines"])
        for stage in p.stages {
            let at = try XCTUnwrap(names.firstIndex(of: stage.name))
            for dep in stage.dependsOn {
                XCTAssertLessThan(try XCTUnwrap(names.firstIndex(of: dep)), at, "\(dep) must come before \(stage.name): \(names)")
            }
        }
        XCTAssertEqual(names, ["words", "report", "summary", "lines"], "stable in file order otherwise")
    }

    // MARK: rejected, with line and reason

    func testTOMLSyntaxError() {
        let text = """
            [[stage]]
            name = "words
            command = ["true"]
            inputs = "raw_source/*.txt"
            """
        assertRejected(text, line: 2, [])
        do { _ = try PipelineDefinition.parse(text) } catch let e as PipelineDefinitionError {
            XCTAssertFalse(e.message.isEmpty)
        } catch { XCTFail("\(error)") }
    }

    func testTOMLSyntaxErrorLaterInFile() {
        let text = """
            [[stage]]
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"
            retries = = 2
            """
        assertRejected(text, line: 5, [])
    }

    func testNoStages() {
        assertRejected("", line: nil, ["no stages"])
        assertRejected("# only a comment\n", line: nil, ["no stages"])
    }

    func testStageMustBeArrayOfTables() {
        assertRejected("\n[stage]\nname = \"x\"\n", line: 2, ["[[stage]]"])
    }

    func testUnknownTopLevelKey() {
        let text = """
            # my pipeline

            title = "x"

            [[stage]]
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"
            """
        assertRejected(text, line: 3, ["unknown key 'title'"])
    }

    func testUnknownStageKey() {
        let text = oneStage("""
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"
            colour = "blue"
            """)
        assertRejected(text, line: 5, ["unknown key 'colour'", "stage 1"])
    }

    func testMissingName() {
        assertRejected(oneStage("command = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 1, ["needs a name"])
        assertRejected(oneStage("name = \"\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 2, ["needs a name"])
        assertRejected(oneStage("name = 7\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 2, ["needs a name"])
    }

    func testMissingCommand() {
        assertRejected(oneStage("name = \"words\"\ninputs = \"raw_source/*.txt\""), line: 1, ["'words'", "needs a command"])
    }

    func testMissingInputs() {
        assertRejected(oneStage("name = \"words\"\ncommand = [\"true\"]"), line: 1, ["'words'", "needs inputs"])
    }

    /// A key missing from one stage must not be reported at the same key of the next stage.
    func testMissingKeyIsReportedInItsOwnStage() {
        let second = """

            [[stage]]
            name = "second"
            command = ["true"]
            inputs = "raw_source/*.txt"
            """
        // Lines 1-3 are the broken stage; the next stage starts at line 5.
        for (body, problem) in [("command = [\"true\"]\ninputs = \"raw_source/*.txt\"", "needs a name"),
                                ("name = \"first\"\ninputs = \"raw_source/*.txt\"", "needs a command"),
                                ("name = \"first\"\ncommand = [\"true\"]", "needs inputs")] {
            let text = "[[stage]]\n" + body + "\n" + second
            do {
                _ = try PipelineDefinition.parse(text)
                XCTFail("accepted a stage that \(problem)")
            } catch let e as PipelineDefinitionError {
                XCTAssertTrue(e.message.contains(problem), e.description)
                XCTAssertTrue((1...3).contains(e.line ?? 0), "\(problem): reported at line \(e.line.map(String.init) ?? "nil"), which belongs to the next stage")
            } catch { XCTFail("\(error)") }
        }
    }

    /// A key's name inside an earlier value (a command's placeholder) is not that key's line.
    func testLineOfKeyIsNotAMentionInsideAnEarlierValue() {
        let text = oneStage("""
            command = ["echo", "{name}"]
            inputs = "raw_source/*.txt"
            name = ".hidden"
            """)
        assertRejected(text, line: 4, ["must not start with '.'"])
    }

    func testEmptyCommand() {
        assertRejected(oneStage("name = \"words\"\ncommand = []\ninputs = \"raw_source/*.txt\""), line: 3, ["needs a command", "non-empty"])
    }

    func testCommandMustBeAnArray() {
        assertRejected(oneStage("name = \"words\"\ncommand = \"wc -w\"\ninputs = \"raw_source/*.txt\""), line: 3, ["needs a command"])
    }

    func testNonStringCommandElement() {
        assertRejected(oneStage("name = \"words\"\ncommand = [\"sh\", 3]\ninputs = \"raw_source/*.txt\""), line: 3, ["every command element must be a string"])
    }

    func testUnknownPlaceholder() {
        assertRejected(oneStage("name = \"words\"\ncommand = [\"cat\", \"{inptu}\"]\ninputs = \"raw_source/*.txt\""), line: 3,
                       ["unknown placeholder {inptu}", "{input}"])
        // Every known placeholder is accepted.
        XCTAssertNoThrow(try PipelineDefinition.parse(oneStage("""
            name = "words"
            command = ["x", "{input}", "{output_dir}/{stem}.{name}", "{run}-{project}"]
            inputs = "raw_source/*.txt"
            """)))
    }

    func testUnknownDependency() {
        let text = oneStage("""
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["nope"]
            """)
        assertRejected(text, line: 5, ["'words'", "unknown stage 'nope'"])
    }

    func testDependsOnMustBeAnArrayOfNames() {
        assertRejected(oneStage("name = \"w\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\"\ndepends_on = \"x\""), line: 5, ["depends_on"])
        assertRejected(oneStage("name = \"w\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\"\ndepends_on = [1]"), line: 5, ["depends_on"])
    }

    func testCycleOfTwo() {
        let text = """
            [[stage]]
            name = "a"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["b"]

            [[stage]]
            name = "b"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["a"]
            """
        assertRejected(text, line: 1, ["cycle", "a, b"])
    }

    func testCycleOfThree() throws {
        let text = """
            [[stage]]
            name = "x"
            command = ["true"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "a"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["c", "x"]

            [[stage]]
            name = "b"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["a"]

            [[stage]]
            name = "c"
            command = ["true"]
            inputs = "raw_source/*.txt"
            depends_on = ["b"]
            """
        assertRejected(text, line: 6, ["cycle", "a, b, c"])
        do { _ = try PipelineDefinition.parse(text) } catch let e as PipelineDefinitionError {
            XCTAssertFalse(e.message.contains("x"), "x is not in the cycle: \(e.message)")
        }
    }

    func testSelfDependencyIsACycle() {
        assertRejected(oneStage("name = \"a\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\"\ndepends_on = [\"a\"]"),
                       line: 1, ["cycle", "a"])
    }

    func testReadingAnotherStagesOutputsRequiresDependingOnIt() {
        let text = """
            [[stage]]
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "report"
            command = ["true"]
            inputs = "words/*.count"
            """
        assertRejected(text, line: 9, ["'report'", "'words'", "depends_on"])
    }

    func testReadingFromAFolderThatIsNeitherRawSourceNorAStage() {
        let text = oneStage("name = \"words\"\ncommand = [\"true\"]\ninputs = \"nowhere/*.txt\"")
        assertRejected(text, line: 4, ["'nowhere/'", "neither raw_source nor a stage"])
    }

    func testDuplicateStageName() {
        let text = """
            [[stage]]
            name = "words"
            command = ["true"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "words"
            command = ["false"]
            inputs = "raw_source/*.md"
            """
        assertRejected(text, line: 7, ["'words'", "defined twice"])
    }

    func testReservedNameRawSource() {
        assertRejected(oneStage("name = \"raw_source\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 2, ["'raw_source'", "reserved"])
    }

    func testBadNames() {
        assertRejected(oneStage("name = \".hidden\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 2, ["stage name", "'.'"])
        assertRejected(oneStage("name = \"a/b\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\""), line: 2, ["stage name", "'/'"])
    }

    func testBadRetries() {
        let base = "name = \"words\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\"\n"
        for value in ["-1", "1.5", "\"2\"", "101"] {
            assertRejected(oneStage(base + "retries = \(value)"), line: 5, ["retries must be a whole number"])
        }
        XCTAssertEqual(try PipelineDefinition.parse(oneStage(base + "retries = 0")).stages[0].retries, 0)
        XCTAssertEqual(try PipelineDefinition.parse(oneStage(base + "retries = 100")).stages[0].retries, 100)
    }

    func testBadTimeout() {
        let base = "name = \"words\"\ncommand = [\"true\"]\ninputs = \"raw_source/*.txt\"\n"
        for value in ["\"abc\"", "\"0s\"", "\"-5s\"", "\"\"", "\"inf\"", "\"nan\"", "\"infs\""] {
            assertRejected(oneStage(base + "timeout = \(value)"), line: 5, ["timeout must be a duration", "\"30s\""])
        }
        // A timeout the runner's clock cannot hold (it trapped the daemon at every mount).
        for value in ["\"1e20s\"", "\"169h\""] {
            assertRejected(oneStage(base + "timeout = \(value)"), line: 5, ["timeout must be at most 7d"])
        }
        XCTAssertEqual(try PipelineDefinition.parse(oneStage(base + "timeout = \"168h\"")).stages[0].timeoutSeconds, 7 * 86_400)
        XCTAssertEqual(try PipelineDefinition.parse(oneStage(base + "timeout = \"5m\"")).stages[0].timeoutSeconds, 300)
    }

    func testBadGlobs() {
        let cases: [(String, String)] = [
            ("", "empty"),
            ("/raw_source/*.txt", "relative"),
            ("*.txt", "name a folder"),
            ("raw_source", "name a folder"),
            ("raw_source/../x.txt", "'..'"),
            ("raw_source/./x.txt", "'.'"),
            ("raw_source//x.txt", "empty path component"),
            ("raw_source/a**/x.txt", "'**' must be a whole path component"),
            ("raw_source/**b.txt", "'**' must be a whole path component"),
            ("raw_source/[ab].txt", "character classes"),
            ("raw_source/*.tx]", "character classes"),
            ("*/x.txt", "first component"),
        ]
        for (glob, problem) in cases {
            let text = oneStage("name = \"words\"\ncommand = [\"true\"]\ninputs = \"\(glob)\"")
            assertRejected(text, line: 4, ["'words'", "bad glob", problem])
            XCTAssertNotNil(Glob.problem(in: glob), glob)
        }
        for good in ["raw_source/*.txt", "raw_source/**/*.txt", "raw_source/a/b?.txt", "raw_source/**"] {
            XCTAssertNil(Glob.problem(in: good), good)
        }
    }

    // MARK: helpers

    func testParseDuration() {
        XCTAssertEqual(PipelineDefinition.parseDuration("30s"), 30)
        XCTAssertEqual(PipelineDefinition.parseDuration("5m"), 300)
        XCTAssertEqual(PipelineDefinition.parseDuration("1h"), 3600)
        XCTAssertEqual(PipelineDefinition.parseDuration("1.5h"), 5400)
        XCTAssertEqual(try XCTUnwrap(PipelineDefinition.parseDuration("250ms")), 0.25, accuracy: 1e-9)
        XCTAssertEqual(PipelineDefinition.parseDuration("12"), 12)
        XCTAssertEqual(PipelineDefinition.parseDuration(" 7s "), 7)
        XCTAssertNil(PipelineDefinition.parseDuration("abc"))
        XCTAssertNil(PipelineDefinition.parseDuration("s"))
        XCTAssertNil(PipelineDefinition.parseDuration("5 minutes"))
    }

    /// Names that differ only in bytes that are not UTF-8 give `{stem}` different values, so
    /// they never share memoized results; a UTF-8 name keeps the key it always had.
    func testMemoKeysTellByteNamesApart() throws {
        let words = try XCTUnwrap(try PipelineDefinition.parse(specExample).stage(named: "words"))  // uses {stem}
        let e9 = words.memoKey(inputName: PathBytes([0xE9, 0x2E, 0x74, 0x78, 0x74]), run: "r", project: "p")
        let e8 = words.memoKey(inputName: PathBytes([0xE8, 0x2E, 0x74, 0x78, 0x74]), run: "r", project: "p")
        XCTAssertNotEqual(e9, e8)
        let old = BlobHash(digest: SHA256.hash(data: Array([words.definitionHash, "name=a.txt"].joined(separator: "\u{0}").utf8))).hex
        XCTAssertEqual(words.memoKey(inputName: "a.txt", run: "r", project: "p"), old)
    }

    func testSubstitute() {
        let values: [String: PathBytes] = ["input": "/j/in/a.txt", "output_dir": "/j/out", "stem": "a", "name": "a.txt", "run": "20261121T143005Z-001",
                      "project": "alpha"]
        XCTAssertEqual(PipelineDefinition.substitute("wc -w < {input} > {output_dir}/{stem}.count", values: values),
                       "wc -w < /j/in/a.txt > /j/out/a.count")
        XCTAssertEqual(PipelineDefinition.substitute("{project}/{run}/{name}", values: values), "alpha/20261121T143005Z-001/a.txt")
        XCTAssertEqual(PipelineDefinition.substitute("{stem}-{stem}", values: values), "a-a")
        XCTAssertEqual(PipelineDefinition.substitute("plain", values: values), "plain")
        XCTAssertEqual(PipelineDefinition.substitute("{unknown}", values: values), "{unknown}")
        // Names keep their bytes: not UTF-8, or equal to another only as Unicode.
        let odd: [String: PathBytes] = ["name": PathBytes([0xE9, 0x2E, 0x74]), "stem": PathBytes([0x63, 0x61, 0x66, 0x65, 0xCC, 0x81])]
        XCTAssertEqual(PipelineDefinition.substitute("x/{name}:{stem}", values: odd).bytes,
                       Array("x/".utf8) + [0xE9, 0x2E, 0x74, 0x3A, 0x63, 0x61, 0x66, 0x65, 0xCC, 0x81])
    }

    func testDefinitionHashDependsOnCommandAndInputsOnly() throws {
        func stage(_ extra: String = "", command: String = "[\"wc\", \"-w\", \"{input}\"]", inputs: String = "raw_source/*.txt") throws -> StageDefinition {
            try PipelineDefinition.parse(oneStage("name = \"words\"\ncommand = \(command)\ninputs = \"\(inputs)\"\n" + extra)).stages[0]
        }
        let base = try stage().definitionHash
        XCTAssertEqual(base.count, 64)
        XCTAssertEqual(try stage().definitionHash, base, "deterministic")
        XCTAssertNotEqual(try stage(command: "[\"wc\", \"-l\", \"{input}\"]").definitionHash, base)
        XCTAssertNotEqual(try stage(command: "[\"wc\", \"-w {input}\"]").definitionHash, base, "argv boundaries count")
        XCTAssertNotEqual(try stage(inputs: "raw_source/**/*.txt").definitionHash, base)
        XCTAssertEqual(try stage("retries = 5").definitionHash, base)
        XCTAssertEqual(try stage("timeout = \"10s\"").definitionHash, base)
        XCTAssertEqual(try stage("retries = 3\ntimeout = \"2h\"").definitionHash, base)
    }

    func testPipelineHashFollowsSource() throws {
        let a = try PipelineDefinition.parse(specExample)
        let b = try PipelineDefinition.parse(specExample + "# comment\n")
        XCTAssertNotEqual(a.hash, b.hash)
        XCTAssertEqual(a.hash, try PipelineDefinition.parse(specExample).hash)
    }
}

final class GlobTests: XCTestCase {
    func testSingleStarStaysInOneFolder() {
        XCTAssertTrue(Glob.matches("raw_source/*.txt", "raw_source/a.txt"))
        XCTAssertFalse(Glob.matches("raw_source/*.txt", "raw_source/sub/a.txt"))
        XCTAssertFalse(Glob.matches("raw_source/*.txt", "raw_source/a.txt.bak"))
        XCTAssertFalse(Glob.matches("raw_source/*.txt", "raw_source/a.md"))
        XCTAssertFalse(Glob.matches("raw_source/*.txt", "words/a.txt"))
        XCTAssertFalse(Glob.matches("raw_source/*.txt", "raw_source"))
    }

    func testDoubleStarMatchesTopLevelAndNested() {
        XCTAssertTrue(Glob.matches("raw_source/**/*.txt", "raw_source/a.txt"))
        XCTAssertTrue(Glob.matches("raw_source/**/*.txt", "raw_source/sub/a.txt"))
        XCTAssertTrue(Glob.matches("raw_source/**/*.txt", "raw_source/a/b/c/d.txt"))
        XCTAssertFalse(Glob.matches("raw_source/**/*.txt", "raw_source/a/b/c/d.csv"))
        XCTAssertFalse(Glob.matches("raw_source/**/*.txt", "other/a.txt"))
        XCTAssertTrue(Glob.matches("raw_source/**", "raw_source/a/b.bin"))
        XCTAssertTrue(Glob.matches("raw_source/**/data/*.csv", "raw_source/data/x.csv"))
        XCTAssertTrue(Glob.matches("raw_source/**/data/*.csv", "raw_source/2026/11/data/x.csv"))
        XCTAssertFalse(Glob.matches("raw_source/**/data/*.csv", "raw_source/2026/data/11/x.csv"))
    }

    func testQuestionMarkIsOneCharacter() {
        XCTAssertTrue(Glob.matches("raw_source/?.txt", "raw_source/a.txt"))
        XCTAssertFalse(Glob.matches("raw_source/?.txt", "raw_source/ab.txt"))
        XCTAssertFalse(Glob.matches("raw_source/?.txt", "raw_source/.txt"))
        XCTAssertTrue(Glob.matches("raw_source/log-??.txt", "raw_source/log-07.txt"))
        XCTAssertFalse(Glob.matches("raw_source/?", "raw_source/a/b"))
    }

    func testStageOutputs() {
        XCTAssertTrue(Glob.matches("words/*.count", "words/a.count"))
        XCTAssertFalse(Glob.matches("words/*.count", "words/sub/a.count"))
        XCTAssertFalse(Glob.matches("words/*.count", "words/a.count.tmp"))
        XCTAssertFalse(Glob.matches("words/*.count", "raw_source/a.count"))
        XCTAssertFalse(Glob.matches("words/*.count", "wordsx/a.count"))
    }
}
