import Foundation
import XCTest

/// What the command line shows of working trees, history and the store (SPEC §5), as git
/// shows them: `status PATH` in `@branch/`, `diff` against the working tree, `log` filters, a
/// `status` of projects and datasets, and `--json` that parses for every command. Through the
/// built binary and a real mount; only explicit commits (quiet period 600 s).
final class WorkingTreeCLITests: MountTestCase {
    override var quietPeriod: Double { 600 }

    private func afs(_ args: String) -> ShellResult { sh("\(q(artifactfsBinary)) \(args)") }

    /// `afs` that must succeed and print one JSON document.
    private func afsJSON(_ args: String, file: StaticString = #filePath, line: UInt = #line) -> Any? {
        let r = afs(args)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)", file: file, line: line)
        let parsed = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        XCTAssertNotNil(parsed, "\(args) printed no JSON: \(r.stdout)", file: file, line: line)
        return parsed
    }

    private var sales: String { "\(fsx.mnt)/datasets/sales" }
    private var main: String { "\(sales)/@main" }

    /// sales with one version: t.csv (a,b), x.txt, sub/y. Returns the version id.
    @discardableResult
    private func firstVersion() -> String {
        run("mkdir \(q(sales)) && cd \(q(main)) && printf 'a,b\\n1,2\\n' > t.csv && echo x > x.txt && mkdir sub && echo y > sub/y")
        return run("\(q(artifactfsBinary)) commit \(q(main)) -m first").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Changes one of each kind: t.csv gains a column, x.txt goes, sub/new comes, sub/y's mode changes.
    private func changeOfEachKind() {
        run("cd \(q(main)) && printf 'a,b,c\\n1,2,3\\n' > t.csv && rm x.txt && echo n > sub/new && chmod 600 sub/y")
    }

    func testStatusOfABranchListsWhatTheNextCommitRecords() throws {
        firstVersion()
        let clean = afs("status \(q(main))")
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.hasPrefix("nothing to commit in @main of sales"), clean.stdout)
        changeOfEachKind()
        // Like git status --short; also from inside the folder, with a relative path.
        XCTAssertEqual(afs("status \(q(main))").stdout, "M sub/\nA sub/new\nM sub/y\nM t.csv\nD x.txt\n")
        XCTAssertEqual(sh("cd \(q(main)) && \(q(artifactfsBinary)) status .").stdout, "M sub/\nA sub/new\nM sub/y\nM t.csv\nD x.txt\n")
        XCTAssertEqual(sh("cd \(q(main)) && \(q(artifactfsBinary)) status sub").stdout, "M sub/\nA sub/new\nM sub/y\n", "a path limits it")

        let parsed = try XCTUnwrap(afsJSON("status \(q(main)) --json") as? [String: Any])
        XCTAssertEqual(parsed["dataset"] as? String, "sales")
        XCTAssertEqual(parsed["branch"] as? String, "main")
        let changes = try XCTUnwrap(parsed["changes"] as? [[String: Any]])
        let byPath = Dictionary(uniqueKeysWithValues: changes.map { ($0["path"] as! String, $0) })
        XCTAssertEqual(byPath["sub/new"]?["kind"] as? String, "added")
        XCTAssertEqual(byPath["sub/new"]?["size"] as? Int, 2, "numbers as numbers")
        XCTAssertEqual(byPath["sub/new"]?["sha256"] as? String, run("printf 'n\\n' | sha256sum | cut -c1-64").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(byPath["x.txt"]?["kind"] as? String, "deleted")
        XCTAssertEqual(byPath["sub"]?["folder"] as? Bool, true)

        // status changes nothing: the commit still records every change, and then it is clean.
        XCTAssertEqual(afs("commit \(q(main)) -m second").status, 0)
        XCTAssertTrue(afs("status \(q(main))").stdout.hasPrefix("nothing to commit"))
        XCTAssertEqual(run("cat \(q(sales))/versions/$(ls \(q(sales))/versions | tail -1)/sub/new").stdout, "n\n")
    }

    func testDiffComparesAVersionWithTheWorkingTree() throws {
        let v1 = firstVersion()
        changeOfEachKind()
        let expected = "A sub/new\nM sub/y\nM t.csv\n    + column c (integer)\nD x.txt\n"
        XCTAssertEqual(afs("diff sales \(v1) @main --store \(q(fsx.store))").stdout, expected)
        XCTAssertEqual(sh("cd \(q(main)) && \(q(artifactfsBinary)) diff . main").stdout, expected, "no B: the branch the folder is in")
        XCTAssertEqual(afs("diff sales main --store \(q(fsx.store))").stdout, expected, "no B, by name: @main")
        let d = try XCTUnwrap(afsJSON("diff sales \(v1) @main --json --store \(q(fsx.store))") as? [String: Any])
        XCTAssertEqual(d["to"] as? String, "@main")
        let changed = try XCTUnwrap(d["changed"] as? [[String: Any]])
        let csv = try XCTUnwrap(changed.first { $0["path"] as? String == "t.csv" })
        XCTAssertEqual(csv["to_size"] as? Int, 12)
        XCTAssertEqual((csv["columns"] as? [[String: Any]])?.first?["column"] as? String, "c")
        // Two versions still compare as before; a branch that does not exist is named.
        XCTAssertEqual(afs("diff sales \(v1) \(v1) --store \(q(fsx.store))").stdout, "no differences between \(v1) and \(v1)\n")
        let missing = afs("diff sales \(v1) @nosuch --store \(q(fsx.store))")
        XCTAssertEqual(missing.status, 4)
        XCTAssertTrue(missing.stderr.hasPrefix("artifactfs: @nosuch: no such branch"), missing.stderr)
    }

    func testLogHasCountOnelineBranchAndPathFilters() throws {
        let s = "--store \(q(fsx.store))"
        let v1 = firstVersion()
        run("echo z > \(q(main))/sub/z")
        let v2 = run("\(q(artifactfsBinary)) commit \(q(main)) -m 'second line one\nline two'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("\(q(artifactfsBinary)) branch sales dev --from \(v1) \(s)")
        run("echo d > \(q(sales))/@dev/d.txt")
        let v3 = run("\(q(artifactfsBinary)) commit \(q(sales))/@dev -m dev-work").stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        XCTAssertEqual(afs("log sales --oneline \(s)").stdout,
                       "\(v3) (@dev) dev-work\n\(v2) (@main) second line one\n\(v1) first\n")
        XCTAssertEqual(afs("log sales --oneline -n 1 \(s)").stdout, "\(v3) (@dev) dev-work\n")
        XCTAssertEqual(afs("log sales --oneline --branch main \(s)").stdout, "\(v2) (@main) second line one\n\(v1) first\n")
        XCTAssertEqual(afs("log sales --oneline --branch @dev \(s)").stdout, "\(v3) (@dev) dev-work\n\(v1) first\n")
        XCTAssertEqual(afs("log sales --oneline \(s) -- sub").stdout, "\(v2) (@main) second line one\n\(v1) first\n", "a folder: what is under it")
        XCTAssertEqual(afs("log sales --oneline \(s) -- sub/z").stdout, "\(v2) (@main) second line one\n")
        XCTAssertEqual(afs("log sales --oneline \(s) -- su").stdout, "", "a path, not a prefix of names")
        let entries = try XCTUnwrap(afsJSON("log sales --json -n 2 --branch main \(s)") as? [[String: Any]])
        XCTAssertEqual(entries.map { $0["id"] as? String }, [v2, v1])
        XCTAssertEqual(entries.first?["parents"] as? [String], [v1], "--json carries the graph's edges")
        XCTAssertEqual(entries.first?["changes"] as? Int, 2, "sub/z and its folder's mtime")

        let graphJSON = afs("log sales --graph --json \(s)")
        XCTAssertEqual(graphJSON.status, 64, "never drops --graph silently")
        XCTAssertTrue(graphJSON.stderr.contains("--json gives each version's parents"), graphJSON.stderr)
        let noBranch = afs("log sales --branch nosuch \(s)")
        XCTAssertEqual(noBranch.status, 4)
        XCTAssertTrue(noBranch.stderr.hasPrefix("artifactfs: @nosuch: no such branch"), noBranch.stderr)
        XCTAssertTrue(afs("log sales --graph --oneline \(s)").stdout.contains("* \(v3) (@dev) dev-work\n"))
    }

    /// `status` with no argument lists projects and datasets; counts are numbers in JSON and
    /// read right in text ("1 run", "2 versions").
    func testStatusListsProjectsAndDatasets() throws {
        firstVersion()
        run("mkdir \(q(fsx.mnt))/projects/p && echo a > \(q(fsx.mnt))/projects/p/incoming/a.txt && \(q(artifactfsBinary)) seal \(q(fsx.mnt))/projects/p/incoming")
        run("echo more > \(q(main))/more.txt")
        let text = afs("status --store \(q(fsx.store))").stdout
        XCTAssertTrue(text.contains("projects/p\t1 run\t"), text)
        XCTAssertTrue(text.contains("datasets/sales\t1 version\t1 branch\t0 tags\t@main "), text)
        XCTAssertTrue(text.contains("uncommitted: @main"), text)
        let parsed = try XCTUnwrap(afsJSON("status --json --store \(q(fsx.store))") as? [String: Any])
        let project = try XCTUnwrap((parsed["projects"] as? [[String: Any]])?.first)
        XCTAssertEqual(project["runs"] as? Int, 1)
        XCTAssertEqual(project["interrupted"] as? Int, 0)
        let dataset = try XCTUnwrap((parsed["datasets"] as? [[String: Any]])?.first)
        XCTAssertEqual(dataset["dataset"] as? String, "sales")
        XCTAssertEqual(dataset["versions"] as? Int, 1)
        XCTAssertEqual(dataset["uncommitted"] as? [String], ["main"])
    }

    /// Every command that prints something a script would parse prints one JSON document with
    /// `--json` (numbers as numbers); mutations answer what they made.
    func testEveryCommandPrintsParsableJSON() throws {
        let s = "--store \(q(fsx.store))"
        let v1 = firstVersion()
        run("mkdir \(q(fsx.mnt))/projects/p && mkdir -p \(q(work))/src && echo a > \(q(work))/src/a.txt")
        run("echo b > \(q(fsx.mnt))/projects/p/incoming/b.txt")
        let sealed = try XCTUnwrap(afsJSON("seal \(q(fsx.mnt))/projects/p/incoming --json") as? [String: Any])
        let runName = try XCTUnwrap(sealed["run"] as? String)
        run("echo c > \(q(main))/c.txt")
        let committed = try XCTUnwrap(afsJSON("commit \(q(main)) -m c --json") as? [String: Any])
        XCTAssertNotNil(committed["version"] as? String)
        XCTAssertTrue(afsJSON("commit \(q(main)) -m nothing --json").map { ($0 as? [String: Any])?["version"] is NSNull } ?? false,
                      "nothing to commit: version null")

        let imported = try XCTUnwrap(afsJSON("import \(q(work))/src --project p --json \(s)") as? [String: Any])
        XCTAssertNotNil(imported["run"] as? String)
        run("printf '[[stage]]\\nname = \"up\"\\ninputs = \"raw_source/*\"\\ncommand = [\"cp\", \"{input}\", \"{output_dir}/\"]\\n' > \(q(work))/p.toml")
        let set = try XCTUnwrap(afsJSON("pipeline set p \(q(work))/p.toml --json \(s)") as? [String: Any])
        XCTAssertEqual((set["stages"] as? [[String: Any]])?.first?["name"] as? String, "up")
        let shown = try XCTUnwrap(afsJSON("pipeline show p --json \(s)") as? [String: Any])
        XCTAssertTrue((shown["source"] as? String)?.contains("name = \"up\"") == true)
        let rerun = try XCTUnwrap(afsJSON("pipeline rerun p \(runName) --json \(s)") as? [String: Any])
        XCTAssertEqual(rerun["run"] as? String, runName)
        XCTAssertTrue(rerun["stage"] is NSNull)

        let cases: [(String, (Any) -> Bool)] = [
            ("version --json", { ($0 as? [String: Any])?["version"] is String }),
            ("init --json \(s)", { ($0 as? [String: Any])?["created"] as? Bool == false }),
            ("status --json \(s)", { (($0 as? [String: Any])?["projects"] as? [Any])?.count == 1 }),
            ("status p --json \(s)", { ($0 as? [[String: Any]])?.first?["bytes"] is Int }),
            ("status p \(runName) --json \(s)", { ($0 as? [String: Any])?["id"] as? String == runName }),
            ("status \(q(main)) --json", { ($0 as? [String: Any])?["changes"] is [Any] }),
            ("log sales --json \(s)", { ($0 as? [[String: Any]])?.count == 2 }),
            ("diff sales \(v1) main --json \(s)", { (($0 as? [String: Any])?["added"] as? [Any])?.count == 1 }),
            ("branch sales --json \(s)", { (($0 as? [String: Any])?["branches"] as? [Any])?.count == 1 }),
            ("branch sales dev --json \(s)", { ($0 as? [String: Any])?["name"] as? String == "dev" }),
            ("branch sales --delete dev --json \(s)", { ($0 as? [String: Any]) != nil }),
            ("tag sales v1 --version \(v1) --json \(s)", { ($0 as? [String: Any])?["version"] as? String == v1 }),
            ("tag sales --json \(s)", { ($0 as? [[String: Any]])?.count == 1 }),
            ("tag sales --delete v1 --json \(s)", { ($0 as? [String: Any]) != nil }),
            ("verify --json \(s)", { ($0 as? [String: Any])?["ok"] as? Bool == true }),
            ("gc --dry-run --json \(s)", { ($0 as? [String: Any])?["bytes_freed"] is Int }),
            ("forget p --keep-last 5 --dry-run --json \(s)", { (($0 as? [String: Any])?["kept"] as? [Any])?.count == 2 }),
            ("forget p --clear-policy --json \(s)", { ($0 as? [String: Any])?["project"] as? String == "p" }),
        ]
        for (args, check) in cases {
            let parsed = afsJSON(args)
            XCTAssertTrue(parsed.map(check) ?? false, "\(args): \(afs(args).stdout)")
        }

        // mount and unmount, on a second mountpoint of another store.
        let other = "\(work!)/other", mnt2 = "\(work!)/mnt2"
        run("\(q(artifactfsBinary)) init -q --store \(q(other)) && mkdir \(q(mnt2))")
        let mounted = try XCTUnwrap(afsJSON("mount --json --store \(q(other)) \(q(mnt2))") as? [String: Any])
        addTeardownBlock { sh("fusermount3 -uz \(q(mnt2))") }
        XCTAssertEqual(mounted["store"] as? String, other)
        XCTAssertEqual(mounted["mountpoint"] as? String, mnt2)
        XCTAssertTrue(mounted["pid"] is Int)
        let unmounted = try XCTUnwrap(afsJSON("unmount \(q(mnt2)) --json") as? [String: Any])
        XCTAssertEqual(unmounted["daemon_had_stopped"] as? Bool, false)
    }

    /// `/proc/mounts` and `findmnt` name the store as the mount's source; `.log` has the time
    /// of the newest version.
    func testMountSourceIsTheStoreAndLogFollowsTheNewestVersion() throws {
        let line = run("grep -F \(q(" " + fsx.mnt + " ")) /proc/self/mounts").stdout
        XCTAssertTrue(line.hasPrefix(fsx.store + " "), line)
        XCTAssertEqual(run("findmnt -n -o SOURCE \(q(fsx.mnt))").stdout.trimmingCharacters(in: .whitespacesAndNewlines), fsx.store)
        firstVersion()
        let before = run("stat -c %Y \(q(sales))/.log").stdout
        sleep(2)
        run("echo later > \(q(main))/later.txt && \(q(artifactfsBinary)) commit \(q(main)) -m later")
        let after = run("stat -c %Y \(q(sales))/.log").stdout
        XCTAssertGreaterThan(Int(after.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0,
                             Int(before.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        let newest = try XCTUnwrap(afsJSON("log sales --json -n 1 --store \(q(fsx.store))") as? [[String: Any]])
        let iso = ISO8601DateFormatter()
        let time = try XCTUnwrap((newest.first?["time"] as? String).flatMap(iso.date(from:)))
        XCTAssertEqual(Int(after.trimmingCharacters(in: .whitespacesAndNewlines)), Int(time.timeIntervalSince1970))
    }

    /// A store folder with a comma and a backslash in its name is still the source.
    func testMountSourceWithACommaInTheStorePath() throws {
        let odd = "\(fsx.base)/st,o\\re"
        try freshMount(quietPeriod: 600, storeOverride: odd)
        let source = run("findmnt -n -o SOURCE \(q(fsx.mnt))").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(source.hasSuffix("/st,o\\re"), source)
    }

    /// A run's stages are listed in pipeline order (a stage after the ones it needs), not by name.
    func testStatusListsStagesInPipelineOrder() throws {
        run("mkdir \(q(fsx.mnt))/projects/p")
        run("""
            printf '[[stage]]\\nname = "zfirst"\\ninputs = "raw_source/*"\\ncommand = ["cp", "{input}", "{output_dir}/"]\\n\
            [[stage]]\\nname = "asecond"\\ninputs = "zfirst/*"\\ndepends_on = ["zfirst"]\\ncommand = ["cp", "{input}", "{output_dir}/"]\\n' > \(q(work))/p.toml
            """)
        run("\(q(artifactfsBinary)) pipeline set p \(q(work))/p.toml --store \(q(fsx.store))")
        run("echo a > \(q(fsx.mnt))/projects/p/incoming/a.txt && \(q(artifactfsBinary)) seal \(q(fsx.mnt))/projects/p/incoming")
        let runName = try XCTUnwrap(fsx.runs("p").first)
        for _ in 0..<600 where fsx.runJSON("p", runName)["status"] as? String == "in_progress" { usleep(100_000) }
        let text = afs("status p \(runName) --store \(q(fsx.store))").stdout
        let first = try XCTUnwrap(text.range(of: "stage zfirst")), second = try XCTUnwrap(text.range(of: "stage asecond"))
        XCTAssertLessThan(first.lowerBound, second.lowerBound, text)
    }

    /// A pipeline file that cannot be read is named with the reason; nothing changes.
    func testPipelineSetNamesWhyAFileCannotBeRead() {
        run("mkdir \(q(fsx.mnt))/projects/p")
        let s = "--store \(q(fsx.store))"
        let missing = afs("pipeline set p \(q(work))/none.toml \(s)")
        XCTAssertEqual(missing.status, 4)
        XCTAssertEqual(missing.stderr, "artifactfs: \(work!)/none.toml: cannot read the file: No such file or directory\n")
        let folder = afs("pipeline set p \(q(work)) \(s)")
        XCTAssertTrue(folder.stderr.hasSuffix(": not a file\n"), folder.stderr)
        run("printf '\\377\\376' > \(q(work))/bin.toml")
        XCTAssertTrue(afs("pipeline set p \(q(work))/bin.toml \(s)").stderr.hasSuffix(": not UTF-8 text\n"))
        XCTAssertEqual(afs("pipeline show p \(s)").status, 4, "no pipeline was set")
    }

    /// Long work shows progress as plain lines when stderr is not a terminal (here every step:
    /// `ARTIFACTFS_PROGRESS_INTERVAL=0`), counting files and bytes; verify moves inside a blob;
    /// `--quiet` prints none.
    func testProgressIsPlainLinesWithBytesWhenPiped() throws {
        let s = "--store \(q(fsx.store))"
        run("mkdir -p \(q(work))/src && head -c 5000000 /dev/urandom > \(q(work))/src/big.bin && echo a > \(q(work))/src/a.txt")
        func progress(_ args: String) -> [String] {
            let r = sh("ARTIFACTFS_PROGRESS_INTERVAL=0 \(q(artifactfsBinary)) \(args) \(s) 2>&1 >/dev/null | cat")
            XCTAssertFalse(r.stdout.contains("\r") || r.stdout.contains("\u{1B}"), "no terminal codes in a pipe: \(r.stdout)")
            return r.stdout.split(separator: "\n").map(String.init)
        }
        let imported = progress("import \(q(work))/src --project p")
        XCTAssertTrue(imported.contains { $0.range(of: #"^import: \d+(/\d+)?, [0-9.]+ (B|KiB|MiB)"#, options: .regularExpression) != nil }, "\(imported)")
        let verified = progress("verify --read-data")
        let lines = verified.filter { $0.hasPrefix("verifying blobs: ") }
        XCTAssertGreaterThan(lines.count, 2 + 2, "a line per MiB read, not only per blob: \(verified)")
        XCTAssertTrue(lines.last?.contains("2/2, ") == true && lines.last?.contains(" of ") == true, "\(lines)")
        run("\(q(artifactfsBinary)) forget p --keep-last 1 \(s) && \(q(artifactfsBinary)) import \(q(work))/src --project p -q \(s)")
        XCTAssertEqual(sh("ARTIFACTFS_PROGRESS_INTERVAL=0 \(q(artifactfsBinary)) verify -q \(s) 2>&1 >/dev/null").stdout, "", "--quiet: no progress")
        let collected = progress("gc --grace 0")
        XCTAssertTrue(collected.contains { $0.hasPrefix("gc: ") && $0.contains(" freed") }, "\(collected)")
    }

    /// Paths in the mount work as git's pathspecs: relative to the current folder, a deleted
    /// file or a dangling symlink by its name, any folder of a dataset for `log` and `diff`;
    /// a path outside a branch or outside any mount is named as such.
    func testPathsInTheMountWorkLikeGitPathspecs() throws {
        let v1 = firstVersion()
        run("cd \(q(main)) && rm x.txt && ln -s nowhere l && mkdir -p d1/d2 && echo z > d1/d2/z.txt")
        func inMain(_ args: String, in dir: String = "") -> ShellResult {
            sh("cd \(q(main + dir)) && \(q(artifactfsBinary)) \(args)")
        }
        XCTAssertEqual(inMain("status x.txt").stdout, "D x.txt\n", "a deleted file, by its name")
        XCTAssertEqual(inMain("status l").stdout, "A l\n", "a dangling symlink, as itself")
        XCTAssertEqual(inMain("status d2/z.txt", in: "/d1").stdout, "A d1/d2/z.txt\n", "relative to the current folder")
        XCTAssertEqual(inMain("status", in: "/d1").stdout, "A d1/\nA d1/d2/\nA d1/d2/z.txt\nA l\nD x.txt\n", "no argument in a branch: all of it")
        XCTAssertTrue(inMain("status --store \(q(fsx.store))").stdout.contains("datasets/sales\t"), "--store: the overview")
        XCTAssertEqual(inMain("status -n1").status, 64)
        let notBranch = sh("cd \(q(sales)) && \(q(artifactfsBinary)) status .")
        XCTAssertEqual(notBranch.status, 4)
        XCTAssertTrue(notBranch.stderr.contains("not a project or @branch folder"), notBranch.stderr)
        XCTAssertTrue(sh("cd \(q(fsx.mnt)) && \(q(artifactfsBinary)) status .").stdout.contains("datasets/sales\t1 version"), "the mount's root: its store")
        let outside = afs("status \(q(work))")
        XCTAssertEqual(outside.status, 4)
        XCTAssertEqual(outside.stderr, "artifactfs: \(work!): not in an artifactfs mount\n")

        run("\(q(artifactfsBinary)) commit \(q(main)) -m two")
        XCTAssertEqual(inMain("log . --oneline -- d2/z.txt", in: "/d1").stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(afs("log sales --oneline --store \(q(fsx.store)) -- \(q(main))/d1/d2/z.txt").stdout.split(separator: "\n").count, 1,
                       "an absolute path in the mount")
        for folder in ["versions", "versions/\(v1)", "tags", ".log", "versions/\(v1)/sub"] {
            let r = afs("log \(q(sales))/\(folder) -n1 --oneline")
            XCTAssertEqual(r.status, 0, "\(folder): \(r.stderr)")
        }
        XCTAssertEqual(afs("log \(q(sales))/versions/\(v1) --oneline -- sub").stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(afs("log sales --oneline -n1 --store \(q(fsx.store))").stdout, afs("log sales --oneline -n 1 --store \(q(fsx.store))").stdout)
    }

    /// `log .` in a @branch is that branch's history, and `diff A` there compares with it.
    func testLogAndDiffInABranchMeanThatBranch() throws {
        let s = "--store \(q(fsx.store))"
        let v1 = firstVersion()
        run("echo m > \(q(main))/m.txt && \(q(artifactfsBinary)) commit \(q(main)) -m main-only")
        run("\(q(artifactfsBinary)) branch sales dev --from \(v1) \(s) && echo d > \(q(sales))/@dev/d.txt")
        XCTAssertEqual(sh("cd \(q(sales))/@dev && \(q(artifactfsBinary)) log . --oneline").stdout, "\(v1) (@dev) first\n")
        XCTAssertEqual(sh("cd \(q(sales))/@dev && \(q(artifactfsBinary)) diff sales dev").stdout, "A d.txt\n")
        let parsed = try XCTUnwrap(afsJSON("status \(q(sales))/@dev --json") as? [String: Any])
        XCTAssertEqual(parsed["head"] as? String, v1)
        run("mkdir \(q(fsx.mnt))/datasets/empty")
        let empty = try XCTUnwrap(afsJSON("status \(q(fsx.mnt))/datasets/empty/@main --json") as? [String: Any])
        XCTAssertTrue(empty["head"] is NSNull, "every key, null when there is no version: \(empty)")
        let overview = try XCTUnwrap(afsJSON("status --json \(s)") as? [String: Any])
        let emptyLine = try XCTUnwrap((overview["datasets"] as? [[String: Any]])?.first { $0["dataset"] as? String == "empty" })
        XCTAssertTrue(emptyLine["main"] is NSNull)
    }

    /// status and diff agree: a file replaced by a folder is one deletion and additions; a
    /// change of `user.*` attributes alone is a change.
    func testStatusAndDiffAgreeOnKindAndAttributeChanges() throws {
        let v1 = firstVersion()
        run("cd \(q(main)) && rm x.txt && mkdir x.txt && echo in > x.txt/in && setfattr -n user.k -v v t.csv")
        XCTAssertEqual(afs("status \(q(main))").stdout, "M t.csv\nD x.txt\nA x.txt/\nA x.txt/in\n")
        XCTAssertEqual(afs("diff \(q(main)) \(v1)").stdout, "M t.csv\nD x.txt\nA x.txt/in\n")
        let tag = afs("tag sales main --version \(v1) --store \(q(fsx.store))")
        XCTAssertEqual(tag.status, 1, "a tag may not take a branch's name: \(tag.stderr)")
    }

    /// On a dead mount (daemon killed) status, log and diff of a path say so, exit 7.
    func testReadingCommandsOnADeadMountSaySo() throws {
        firstVersion()
        let pid = try XCTUnwrap(fsx.daemonPID)
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(20_000) }
        for args in ["status \(q(main))", "log \(q(main))", "diff \(q(main)) main"] {
            let r = afs(args)
            XCTAssertEqual(r.status, 7, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("daemon is not running"), r.stderr)
        }
        fsx.unmount()
        try fsx.mount()
    }
}
