import Foundation
import XCTest

/// SPEC §7: every row this part of the product touches answers as the table says.
final class BadInputTests: MountTestCase {
    private func sealedDemo() throws -> (project: String, run: String) {
        makeSampleTree("\(work!)/src")
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(p))/incoming/")
        return (p, try fsx.waitForRuns("demo", count: 1)[0])
    }

    func testWritesUnderReadOnlyTreesAnswerEROFSAndChangeNothing() throws {
        let (p, r) = try sealedDemo()
        let raw = "\(p)/runs/\(r)/raw_source"
        let before = run("cd \(q(p)) && find runs latest history -printf '%p %s %m %T@\\n' | sort").stdout
        let attempts = [
            "echo x > \(q(raw))/new.txt",
            "echo x >> \(q(raw))/data.csv",
            "echo x > \(q(raw))/data.csv",
            "rm \(q(raw))/data.csv",
            "mv \(q(raw))/data.csv \(q(raw))/renamed.csv",
            "chmod 777 \(q(raw))/data.csv",
            "touch -d '2000-01-01' \(q(raw))/data.csv",
            "mkdir \(q(raw))/newdir",
            "rmdir \(q(raw))/sub/deeper",
            "truncate -s 0 \(q(raw))/data.csv",
            "ln -s data.csv \(q(raw))/link",
            "setfattr -n user.x -v 1 \(q(raw))/data.csv",
            "echo x > \(q(p))/latest/data.csv",
            "rm \(q(p))/latest/data.csv",
            "chmod 700 \(q(p))/latest/sub",
            "mkdir \(q(p))/latest/x",
            "rm \(q(p))/history/data.csv/\(r)",
            "mv \(q(p))/history/data.csv \(q(p))/history/other",
            "echo x > \(q(p))/runs/\(r)/.run.json",
            "rm -r \(q(p))/runs/\(r)",
            "mkdir \(q(p))/runs/fake",
            "mv \(q(p))/incoming/../latest/data.csv \(q(p))/incoming/stolen.csv",
        ]
        for cmd in attempts {
            let res = sh(cmd)
            XCTAssertNotEqual(res.status, 0, "\(cmd) should fail")
            XCTAssertTrue(res.stderr.contains("Read-only file system"), "\(cmd): \(res.stderr)")
        }
        XCTAssertEqual(run("cd \(q(p)) && find runs latest history -printf '%p %s %m %T@\\n' | sort").stdout, before)
        run("diff -r \(q(work))/src \(q(raw))")
    }

    func testBadProjectNamesAnswerEINVALOrENAMETOOLONG() throws {
        let projects = "\(fsx.mnt)/projects"
        for bad in [".hidden", "@branch", "tab\there", "bell\u{07}", "del\u{7F}"] {
            let res = sh("mkdir \(q(projects))/\(q(bad))")
            XCTAssertNotEqual(res.status, 0, bad)
            XCTAssertTrue(res.stderr.contains("Invalid argument"), "\(bad): \(res.stderr)")
        }
        let long = String(repeating: "n", count: 256)
        let res = sh("mkdir \(q(projects))/\(long)")
        XCTAssertTrue(res.stderr.contains("File name too long"), res.stderr)
        run("mkdir \(q(projects))/\(String(repeating: "é", count: 127))")  // 254 bytes: fine
        XCTAssertTrue(sh("mkdir \(q(projects))/ok-name").ok)
        let dup = sh("mkdir \(q(projects))/ok-name")
        XCTAssertTrue(dup.stderr.contains("File exists"), dup.stderr)
        XCTAssertEqual(run("ls \(q(projects))").stdout.split(separator: "\n").count, 2)
        // Only projects/ takes new folders; the tree above and datasets/ (not yet) refuse.
        XCTAssertTrue(sh("mkdir \(q(fsx.mnt))/other").stderr.contains("Read-only file system"))
        XCTAssertTrue(sh("touch \(q(projects))/file").stderr.contains("Read-only file system"))
        XCTAssertTrue(sh("mkdir \(q(projects))/ok-name/extra").stderr.contains("Read-only file system"))
    }

    /// A project is a tree of its own: rename and hard links across projects answer EXDEV and
    /// change nothing (symlinks and hard links inside one are kept, SPEC §1).
    func testRenameAndHardLinksBetweenProjectsAreRefused() throws {
        try freshMount(quietPeriod: 600)
        run("mkdir \(q(fsx.mnt))/projects/a \(q(fsx.mnt))/projects/b")
        run("echo x > \(q(fsx.project("a")))/incoming/f")
        let mv = sh("mv -T --no-copy \(q(fsx.project("a")))/incoming/f \(q(fsx.project("b")))/incoming/f 2>&1 || python3 -c 'import os; os.rename(\"\(fsx.project("a"))/incoming/f\", \"\(fsx.project("b"))/incoming/f\")'")
        XCTAssertNotEqual(mv.status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(fsx.project("a"))/incoming/f"), "the file stays where it was")
        let ln = sh("ln \(q(fsx.project("a")))/incoming/f \(q(fsx.project("b")))/incoming/f")
        XCTAssertNotEqual(ln.status, 0)
        XCTAssertTrue(ln.stderr.contains("Invalid cross-device link"), ln.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(fsx.project("b"))/incoming/f"))
        run("ln -s f \(q(fsx.project("a")))/incoming/link && ln \(q(fsx.project("a")))/incoming/f \(q(fsx.project("a")))/incoming/g")
        XCTAssertEqual(run("readlink \(q(fsx.project("a")))/incoming/link").stdout, "f\n")
    }

    func testCorruptOrMissingBlobReadsEIOAndVerifyReportsIt() throws {
        let (p, r) = try sealedDemo()
        let sha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(p))/runs/\(r)/raw_source/sub/blob.bin").stdout
        let blob = "\(fsx.store)/objects/\(sha.prefix(2))/\(sha.dropFirst(2))"
        fsx.unmount()
        // Same size, other bytes: only reading the data can tell (verify --read-data, like
        // restic check --read-data). Then a truncated copy: reads refuse it.
        run("printf 'XXXX' | dd of=\(q(blob)) bs=1 seek=10 conv=notrunc status=none")
        let v = fsx.cli("verify --read-data --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 3, v.stdout)
        XCTAssertTrue(v.stdout.contains("corrupt_blob"), v.stdout)
        XCTAssertTrue(v.stdout.contains("used by projects/"), v.stdout)
        run("truncate -s 100 \(q(blob))")
        try fsx.mount()
        let read = sh("cat \(q(p))/runs/\(r)/raw_source/sub/blob.bin > /dev/null")
        XCTAssertTrue(read.stderr.contains("Input/output error"), read.stderr)
        // A blob of the wrong size is damage too: in quarantine, named by verify.
        let quarantined = "\(fsx.store)/quarantine/\(sha)"
        XCTAssertTrue(FileManager.default.fileExists(atPath: quarantined))
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob))
        let v1 = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v1.status, 3)
        XCTAssertTrue(v1.stdout.contains("quarantined_blob") && v1.stdout.contains("size is 100"), v1.stdout)
        run("rm \(q(quarantined))")
        let missing = sh("cat \(q(p))/latest/sub/blob.bin > /dev/null")
        XCTAssertTrue(missing.stderr.contains("Input/output error"), missing.stderr)
        let v2 = fsx.cli("verify --store \(q(fsx.store)) --json")
        XCTAssertEqual(v2.status, 3)
        XCTAssertTrue(v2.stdout.contains("missing_blob"), v2.stdout)
        // Other files are still served.
        run("cmp \(q(work))/src/data.csv \(q(p))/latest/data.csv")
    }

    func testDiskFullWhileStagingAnswersENOSPCAndRegistersNothingHalf() throws {
        try freshMountOnSmallDisk()
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("head -c 20000000 /dev/urandom > \(q(work))/first.bin && head -c 40000000 /dev/urandom > \(q(work))/second.bin")
        run("cp \(q(work))/first.bin \(q(p))/incoming/")
        let full = sh("cp \(q(work))/second.bin \(q(p))/incoming/")
        XCTAssertNotEqual(full.status, 0)
        XCTAssertTrue(full.stderr.contains("No space left on device"), full.stderr)
        XCTAssertEqual(fsx.runs("demo"), [], "nothing registered")
        run("cmp \(q(work))/first.bin \(q(p))/incoming/first.bin")
        run("rm \(q(p))/incoming/second.bin")
        let r = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("cmp \(q(work))/first.bin \(q(p))/runs/\(r)/raw_source/first.bin")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
        fsx.unmount()
    }

    /// A seal that fails for lack of space keeps nothing it adopted (issue 12, case 6): no
    /// blob stays linked in objects/ (deleting the staged file must free its space), the staged
    /// file stays in incoming/ as it was, and the same seal succeeds once there is room.
    func testASealThatRunsOutOfSpaceLeavesNothingInTheStore() throws {
        let small = try freshMountOnSmallDisk()
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("head -c 20000000 /dev/urandom > \(q(work))/a.bin && cp \(q(work))/a.bin \(q(p))/incoming/")
        sh("dd if=/dev/zero of=\(q(small))/filler bs=1M")  // fills the disk; fails when it is full
        func blobFiles() -> String { run("find \(q(small))/store/objects -type f | wc -l").stdout }

        let full = sh("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        XCTAssertEqual(full.status, 8, "exit 8: no space, \(full.stderr)")
        XCTAssertEqual(full.stderr, "artifactfs: \(p)/incoming: no space left on the store's disk (nothing was sealed, the files stay in incoming/)\n")
        XCTAssertEqual(blobFiles(), "0\n", "a failed seal keeps no blob")
        XCTAssertEqual(fsx.runs("demo"), [], "nothing registered")
        run("cmp \(q(work))/a.bin \(q(p))/incoming/a.bin")

        run("rm \(q(small))/filler")
        let r = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("cmp \(q(work))/a.bin \(q(p))/runs/\(r)/raw_source/a.bin")
        XCTAssertEqual(blobFiles(), "1\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
        fsx.unmount()
    }

    func testMountRefusesAFolderThatIsNotEmptyOrAlreadyMounted() throws {
        run("mkdir -p \(q(work))/full && touch \(q(work))/full/keep.txt && \(q(artifactfsBinary)) init -q --store \(q(work))/other-store")
        let full = fsx.cli("mount --store \(q(work))/other-store \(q(work))/full")
        XCTAssertNotEqual(full.status, 0)
        XCTAssertTrue(full.stderr.contains("not empty"), full.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work!)/full/keep.txt"))
        let stacked = fsx.cli("mount --store \(q(work))/other-store \(q(fsx.mnt))")
        XCTAssertEqual(stacked.status, 5, stacked.stderr)
        XCTAssertTrue(stacked.stderr.contains("already mounted"), stacked.stderr)
        let again = fsx.cli("mount --store \(q(fsx.store)) \(q(work))/empty")
        XCTAssertEqual(again.status, 5, "one daemon per store: \(again.stderr)")
    }

    func testOwnerOfUploadedFilesIsTheUploader() throws {
        // Shared, with root allowed to look (the test's checks run as root).
        try freshMount(quietPeriod: 0.3, extraMountArgs: ["--allow-other", "--root-is-admin"])
        let p = fsx.project("mine")
        sh("chmod 755 \(q(fsx.base))")
        let asUser = "setpriv --reuid 4242 --regid 4242 --clear-groups"
        run("\(asUser) mkdir \(q(fsx.mnt))/projects/mine")
        run("\(asUser) sh -c 'echo hello > \(p)/incoming/h.txt'")
        let r = try fsx.waitForRuns("mine", count: 1)[0]
        XCTAssertEqual(run("stat -c '%u' \(q(p))/runs/\(r)/raw_source/h.txt").stdout, "4242\n")
        XCTAssertEqual(run("ls -ln \(q(p))/runs/\(r)/raw_source | awk 'NR>1{print $3}'").stdout, "4242\n")
        XCTAssertEqual(run("stat -c '%u' \(q(p))").stdout, "4242\n")
    }
}
