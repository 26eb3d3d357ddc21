import Foundation
import XCTest

/// The command line as a user with git and restic habits meets it (SPEC §5): init, global
/// options anywhere, one error style, exit codes that mean what the help says, dead mounts.
/// Everything through the built binary, with a real mount where one is involved.
final class CLITests: MountTestCase {
    private func afs(_ args: String) -> ShellResult { sh("\(q(artifactfsBinary)) \(args)") }

    private func json(_ r: ShellResult) -> Any? { try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) }

    /// One line on stderr, in the one style.
    private func assertOneLineError(_ r: ShellResult, _ code: Int32, containing text: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, code, "\(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("artifactfs: "), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "\(text) in \(r.stderr)", file: file, line: line)
    }

    func testNoArgumentsPrintsHelpAndExits64() {
        let r = afs("")
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("SUBCOMMANDS"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Exit codes"), r.stderr)
    }

    func testVersion() throws {
        let flag = afs("--version"), command = afs("version")
        XCTAssertEqual(flag.status, 0)
        XCTAssertEqual(flag.stdout, command.stdout)
        XCTAssertNotNil(flag.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), flag.stdout)
        let parsed = try XCTUnwrap(json(afs("version --json")) as? [String: Any])
        XCTAssertEqual((parsed["version"] as? String).map { $0 + "\n" }, flag.stdout)
    }

    /// `--store`, `--json` and `--quiet` work before the subcommand as after it, also with a
    /// nested subcommand and after a `--`.
    func testGlobalOptionsBeforeOrAfterTheSubcommand() {
        run("mkdir \(q(fsx.mnt))/projects/p")
        let after = afs("status --store \(q(fsx.store)) --json")
        XCTAssertEqual(after.status, 0, after.stderr)
        for args in ["--store \(q(fsx.store)) status --json", "--json --store=\(q(fsx.store)) status", "-q --json --store \(q(fsx.store)) status"] {
            let r = afs(args)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, after.stdout, args)
        }
        run("printf '[[stage]]\\nname = \"a\"\\ninputs = \"raw_source/*\"\\ncommand = [\"true\"]\\n' > \(q(work))/p.toml")
        XCTAssertEqual(afs("--store \(q(fsx.store)) pipeline set p \(q(work))/p.toml").status, 0)
        XCTAssertEqual(afs("--store \(q(fsx.store)) pipeline show p").stdout, afs("pipeline show p --store \(q(fsx.store))").stdout)
    }

    /// A typo must not create a store (restic and borg refuse a repository never initialised):
    /// every command but init refuses a folder that is not a store, exit 4, and creates nothing.
    func testOnlyInitCreatesAStore() throws {
        let typo = "\(work!)/typo/store"
        run("mkdir -p \(q(work))/m \(q(work))/src && echo x > \(q(work))/src/a.txt")
        for command in ["status", "status p", "log d", "diff d a b", "branch d", "tag d", "verify", "gc", "forget p --keep-last 1",
                        "import \(q(work))/src --project p", "pipeline show p", "mount \(q(work))/m"] {
            let r = afs("\(command) --store \(q(typo))")
            assertOneLineError(r, 4, containing: "\(typo): not an artifactfs store")
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work!)/typo"), "\(command) created the store's folder")
        }
        let mountHelper = sh("bash \(q(repositoryRoot))/mount-scripts/mount.fuse.artifactfs \(q(typo)) \(q(work))/m", environment: ["ARTIFACTFS_BIN": artifactfsBinary])
        XCTAssertEqual(mountHelper.status, 32, mountHelper.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work!)/typo"))

        let created = afs("init --store \(q(typo)) --json")
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertEqual((json(created) as? [String: Any])?["created"] as? Bool, true)
        XCTAssertEqual(afs("status --store \(q(typo))").status, 0)
        let again = afs("init --store \(q(typo)) --json")
        XCTAssertEqual(again.status, 0, "init of a store is a no-op, as git init")
        XCTAssertEqual((json(again) as? [String: Any])?["created"] as? Bool, false)

        run("mkdir -p \(q(work))/full && echo keep > \(q(work))/full/mine.txt")
        assertOneLineError(afs("init --store \(q(work))/full"), 5, containing: "not empty")
        XCTAssertEqual(try String(contentsOfFile: "\(work!)/full/mine.txt", encoding: .utf8), "keep\n")
        assertOneLineError(afs("init --store \(q(fsx.mnt))/projects/inside"), 64, containing: "inside an artifactfs mount")
    }

    /// Usage errors, like every other failure, are one line `artifactfs: ...` with exit 64
    /// and where to find help; control characters in what is echoed are escaped.
    func testUsageErrorsAreOneLineInTheOneStyle() {
        assertOneLineError(afs("status --bogus"), 64, containing: "artifactfs status --help")
        assertOneLineError(afs("pipeline set"), 64, containing: "artifactfs pipeline set --help")
        assertOneLineError(afs("nosuchcommand"), 64, containing: "nosuchcommand")
        assertOneLineError(afs("gc --grace soon --store \(q(fsx.store))"), 64, containing: "--grace")
        run("mkdir \(q(fsx.mnt))/datasets/d")
        let r = afs("branch d $'bad\\nname\\x1b[31m' --store \(q(fsx.store))")
        assertOneLineError(r, 64, containing: "bad\\nname\\x1b[31m")
    }

    /// A branch name the mount could not show (`@` + 255 bytes) is refused; 254 bytes works
    /// and its folder opens.
    func testBranchNamesMustFitTheirFolder() {
        run("mkdir \(q(fsx.mnt))/datasets/d")
        let s = "--store \(q(fsx.store))"
        assertOneLineError(afs("branch d \(String(repeating: "b", count: 255)) \(s)"), 64, containing: "254 bytes")
        let longest = String(repeating: "c", count: 254)
        XCTAssertEqual(afs("branch d \(longest) \(s)").status, 0)
        run("echo x > \(q(fsx.mnt))/datasets/d/@\(longest)/f.txt && \(q(artifactfsBinary)) commit \(q(fsx.mnt))/datasets/d/@\(longest) -m one")
    }

    /// `tag D` lists, `tag D NAME` tags (JSON too), `tag D --delete NAME` deletes; the tag's
    /// folder goes from the mount.
    func testTagsListAndDelete() throws {
        let s = "--store \(q(fsx.store))"
        run("mkdir \(q(fsx.mnt))/datasets/d && echo x > \(q(fsx.mnt))/datasets/d/@main/f.txt")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(fsx.mnt))/datasets/d/@main -m one").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(afs("tag d \(s)").stdout, "")
        let made = afs("tag d v1 --json \(s)")
        XCTAssertEqual((json(made) as? [String: Any])?["version"] as? String, v1, made.stderr)
        XCTAssertEqual(afs("tag d \(s)").stdout, "v1\t\(v1)\n")
        let listed = try XCTUnwrap(json(afs("tag d --json \(s)")) as? [[String: Any]])
        XCTAssertEqual(listed.map { $0["name"] as? String }, ["v1"])
        XCTAssertEqual(run("ls \(q(fsx.mnt))/datasets/d/tags").stdout, "v1\n")
        XCTAssertEqual(afs("tag d --delete v1 \(s)").status, 0)
        XCTAssertEqual(afs("tag d \(s)").stdout, "")
        assertOneLineError(afs("tag d --delete v1 \(s)"), 4, containing: "no such tag")
        XCTAssertTrue(afs("log d \(s)").stdout.contains(v1), "the version stays")
    }

    /// The exit codes the help documents, one case each.
    func testExitCodesMeanWhatTheHelpSays() throws {
        let s = "--store \(q(fsx.store))"
        run("mkdir \(q(fsx.mnt))/projects/p \(q(fsx.mnt))/datasets/d && mkdir -p \(q(work))/src && echo a > \(q(work))/src/a.txt && echo b > \(q(work))/src/b.txt")
        let help = afs("--help").stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let cases: [(String, Int32)] = [
            ("status \(s)", 0),
            ("status nosuchproject \(s)", 4),
            ("log nosuchdataset \(s)", 4),
            ("diff d main nosuchversion \(s)", 4),
            ("status --no-such-option", 64),
            ("branch d '' \(s)", 64),
        ]
        for (command, code) in cases {
            XCTAssertEqual(afs(command).status, code, command)
            XCTAssertTrue(help.contains("\(code) "), "the help documents \(code)")
        }
        // 5: a file open for writing in incoming/ keeps seal from sealing.
        let holder = sh("exec 3>\(q(fsx.mnt))/projects/p/incoming/open.txt; echo x >&3; \(q(artifactfsBinary)) seal \(q(fsx.mnt))/projects/p/incoming; echo \"rc=$?\"")
        XCTAssertTrue(holder.stdout.contains("rc=5"), holder.stdout + holder.stderr)
        // 6: import with an unreadable file.
        let partial = sh("ARTIFACTFS_IMPORT_UNREADABLE=a.txt \(q(artifactfsBinary)) import \(q(work))/src --project q \(s)")
        XCTAssertEqual(partial.status, 6, partial.stderr)
        // 3: verify finds a missing blob.
        let blob = sh("find \(q(fsx.store))/objects -type f | head -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(blob.isEmpty)
        run("mv \(q(blob)) \(q(work))/aside")
        XCTAssertEqual(afs("verify \(s)").status, 3)
        run("mv \(q(work))/aside \(q(blob))")
        // 77: a store folder others can write is not mounted.
        let open = "\(work!)/open-store"
        XCTAssertEqual(afs("init --store \(q(open))").status, 0)
        run("chmod 777 \(q(open)) && mkdir -p \(q(work))/mnt2")
        XCTAssertEqual(afs("mount --store \(q(open)) \(q(work))/mnt2").status, 77)
        for code: Int32 in [3, 5, 6, 7, 8, 77] { XCTAssertTrue(help.contains("\(code) "), "the help documents \(code)") }
    }

    /// After a kill -9 of the daemon: seal and commit say the daemon is not running (exit 7,
    /// with what to run), mount cleans the dead mount up and mounts, unmount unmounts it.
    func testDeadMountIsRecognised() throws {
        run("mkdir \(q(fsx.mnt))/projects/p \(q(fsx.mnt))/datasets/d && echo a > \(q(fsx.mnt))/datasets/d/@main/a.txt")
        let pid = try XCTUnwrap(fsx.daemonPID)
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(20_000) }
        assertOneLineError(afs("seal \(q(fsx.mnt))/projects/p/incoming"), 7, containing: "artifactfs unmount \(fsx.mnt)")
        assertOneLineError(afs("commit \(q(fsx.mnt))/datasets/d/@main -m x"), 7, containing: "daemon is not running")

        let remount = afs("mount --store \(q(fsx.store)) \(q(fsx.mnt)) --quiet-period 0.3")
        XCTAssertEqual(remount.status, 0, remount.stderr)
        XCTAssertEqual(sh("ls \(q(fsx.mnt))/projects").stdout, "p\n")

        let again = try XCTUnwrap(fsx.daemonPID)
        kill(again, SIGKILL)
        for _ in 0..<200 where kill(again, 0) == 0 { usleep(20_000) }
        let unmount = afs("unmount \(q(fsx.mnt))")
        XCTAssertEqual(unmount.status, 0, unmount.stderr)
        XCTAssertFalse(sh("grep -F \(q(" " + fsx.mnt + " ")) /proc/self/mounts").ok, "the dead mount is gone")
        try fsx.mount()
    }

    /// The daemon dies while a seal asked through the mount is in its hands: the CLI cannot
    /// know the outcome and says so (exit 7), never a false "failed"; after a remount the
    /// files are still there to seal.
    func testADaemonThatDiesWhileAskedGivesOutcomeUnknown() throws {
        fsx.unmount()
        let mount = sh("ARTIFACTFS_TEST_DIE_ON=seal \(q(artifactfsBinary)) mount --store \(q(fsx.store)) \(q(fsx.mnt)) --quiet-period 600")
        XCTAssertEqual(mount.status, 0, mount.stderr)
        run("mkdir \(q(fsx.mnt))/projects/p && echo a > \(q(fsx.mnt))/projects/p/incoming/a.txt")
        let pid = try XCTUnwrap(fsx.daemonPID)
        assertOneLineError(afs("seal \(q(fsx.mnt))/projects/p/incoming"), 7, containing: "outcome unknown")
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(20_000) }
        try fsx.mount()  // mount detaches the dead mount first
        XCTAssertEqual(afs("seal \(q(fsx.mnt))/projects/p/incoming").status, 0)
        XCTAssertEqual(fsx.runs("p").count, 1)
    }
}

/// This package's folder (for its scripts).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
