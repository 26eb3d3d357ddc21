import Foundation
import XCTest

/// SPEC §7 for datasets, through a real mount: disk full, corrupt and missing blobs, links,
/// long names, moves out of read-only trees, and the CLI's refusals. Nothing is lost.
final class DatasetBadInputTests: MountTestCase {
    override var quietPeriod: Double { 600 }
    var sales: String { "\(fsx.mnt)/datasets/sales" }

    func commit(_ branch: String, _ message: String) -> String {
        run("\(q(artifactfsBinary)) commit \(q(sales))/@\(branch) -m \(q(message))").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testDiskFullWhileWritingABranchAnswersENOSPCAndCommitsNothingHalf() throws {
        try freshMountOnSmallDisk()
        run("head -c 20000000 /dev/urandom > \(q(work))/first.bin && head -c 40000000 /dev/urandom > \(q(work))/second.bin")
        run("mkdir \(q(sales)) && cp \(q(work))/first.bin \(q(sales))/@main/")
        let full = sh("cp \(q(work))/second.bin \(q(sales))/@main/")
        XCTAssertNotEqual(full.status, 0)
        XCTAssertTrue(full.stderr.contains("No space left on device"), full.stderr)
        XCTAssertEqual(sh("ls \(q(sales))/versions").stdout, "", "nothing committed")
        // What fit is still staged, whole; the half-written file is the user's to remove.
        run("cmp \(q(work))/first.bin \(q(sales))/@main/first.bin")
        run("rm \(q(sales))/@main/second.bin")
        let v = commit("main", "what fit")
        run("cmp \(q(work))/first.bin \(q(sales))/versions/\(v)/first.bin")
        XCTAssertEqual(run("ls \(q(sales))/versions/\(v)").stdout, "first.bin\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
        fsx.unmount()
    }

    func testCorruptOrMissingBlobOfAVersionReadsEIOAndVerifyReportsIt() throws {
        run("mkdir \(q(sales)) && printf 'a,b\\n1,2\\n' > \(q(sales))/@main/q1.csv && echo keep > \(q(sales))/@main/keep.txt")
        let v = commit("main", "one")
        let sha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(sales))/versions/\(v)/q1.csv").stdout
        let blob = "\(fsx.store)/objects/\(sha.prefix(2))/\(sha.dropFirst(2))"
        fsx.unmount()
        run("truncate -s 3 \(q(blob))")
        try fsx.mount()
        for path in ["versions/\(v)/q1.csv", "@main/q1.csv"] {
            let r = sh("cat \(q(sales))/\(path) > /dev/null")
            XCTAssertTrue(r.stderr.contains("Input/output error"), "\(path): \(r.stderr)")
        }
        // Appending needs the old bytes: refused, never built on damaged data; the copy found
        // the damage, so the blob is in quarantine now.
        let append = sh("echo more >> \(q(sales))/@main/q1.csv")
        XCTAssertTrue(append.stderr.contains("Input/output error"), append.stderr)
        let quarantined = "\(fsx.store)/quarantine/\(sha)"
        XCTAssertTrue(FileManager.default.fileExists(atPath: quarantined))
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob))
        let damaged = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(damaged.status, 3, damaged.stdout)
        XCTAssertTrue(damaged.stdout.contains("quarantined_blob"), damaged.stdout)
        run("rm \(q(quarantined))")
        let missing = fsx.cli("verify --store \(q(fsx.store)) --json")
        XCTAssertEqual(missing.status, 3)
        XCTAssertTrue(missing.stdout.contains("missing_blob"), missing.stdout)
        // The rest of the version is still served, and a rewrite replaces the damaged file.
        XCTAssertEqual(run("cat \(q(sales))/versions/\(v)/keep.txt").stdout, "keep\n")
        run("printf 'a,b\\n3,4\\n' > \(q(sales))/@main/q1.csv")
        let v2 = commit("main", "rewritten")
        XCTAssertEqual(run("cat \(q(sales))/versions/\(v2)/q1.csv").stdout, "a,b\n3,4\n")
    }

    func testLinksLongNamesAndMovesOutOfReadOnlyTrees() throws {
        run("mkdir \(q(sales)) && echo data > \(q(sales))/@main/a.txt")
        let v = commit("main", "one")
        // Links are part of the tree (SPEC §1): kept in a working tree and in its next version.
        run("ln -s a.txt \(q(sales))/@main/link && ln \(q(sales))/@main/a.txt \(q(sales))/@main/hard")
        XCTAssertEqual(run("stat -c %h \(q(sales))/@main/a.txt \(q(sales))/@main/hard").stdout, "2\n2\n")
        XCTAssertTrue(sh("ln \(q(sales))/@main/a.txt \(q(sales))/versions/\(v)/hard").stderr.contains("Read-only file system"))
        let roLink = sh("ln -s a.txt \(q(sales))/versions/\(v)/link")
        XCTAssertTrue(roLink.stderr.contains("Read-only file system"), roLink.stderr)
        let long = sh("touch \(q(sales))/@main/\(String(repeating: "n", count: 256))")
        XCTAssertTrue(long.stderr.contains("File name too long"), long.stderr)
        // A move out of a version cannot remove the source; a copy is the way.
        let mv = sh("mv \(q(sales))/versions/\(v)/a.txt \(q(sales))/@main/b.txt")
        XCTAssertNotEqual(mv.status, 0)
        XCTAssertTrue(run("ls \(q(sales))/versions/\(v)").stdout == "a.txt\n")
        run("cp \(q(sales))/versions/\(v)/a.txt \(q(sales))/@main/b.txt")
        XCTAssertEqual(run("ls \(q(sales))/@main").stdout, "a.txt\nb.txt\nhard\nlink\n")
        // Nothing refused above left a trace in the next version; the links are in it.
        let v2 = commit("main", "two")
        XCTAssertEqual(run("ls \(q(sales))/versions/\(v2)").stdout, "a.txt\nb.txt\nhard\nlink\n")
        XCTAssertEqual(run("readlink \(q(sales))/versions/\(v2)/link").stdout, "a.txt\n")
        XCTAssertEqual(run("cat \(q(sales))/versions/\(v2)/hard").stdout, "data\n")
    }

    /// POSIX answers in a working tree, and branches and datasets cannot be removed (yet).
    func testPosixErrorsInABranchAndRemovingBranchesOrDatasets() throws {
        run("mkdir \(q(sales)) && mkdir -p \(q(sales))/@main/d && echo a > \(q(sales))/@main/d/a.txt && echo b > \(q(sales))/@main/b.txt")
        let v = commit("main", "one")
        run("mkdir \(q(sales))/@dev")
        let main = "\(sales)/@main"
        let cases: [(String, String)] = [
            ("rmdir \(q(main))/d", "Directory not empty"),
            ("mkdir \(q(main))/d", "File exists"),
            ("sh -c 'echo x > \(main)/d'", "Is a directory"),
            ("rm \(q(main))/d", "Is a directory"),
            ("rmdir \(q(main))/b.txt", "Not a directory"),
            ("rmdir \(q(sales))/@dev", "Read-only file system"),
            ("rmdir \(q(sales))", "Read-only file system"),
        ]
        for (cmd, expected) in cases {
            let r = sh(cmd)
            XCTAssertNotEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stderr.contains(expected), "\(cmd): \(r.stderr)")
        }
        // renameat2 (in @dev, so that @main stays untouched): RENAME_NOREPLACE onto an existing
        // name is EEXIST; RENAME_EXCHANGE swaps the two.
        let rename2 = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            for flag in (1, 2):
                rc = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), flag)
                print(flag, rc, os.strerror(ctypes.get_errno()) if rc else "ok")
            """
        try rename2.write(toFile: "\(work!)/rename2.py", atomically: true, encoding: .utf8)
        XCTAssertEqual(run("python3 \(q(work))/rename2.py \(q(sales))/@dev/b.txt \(q(sales))/@dev/d/a.txt").stdout,
                       "1 -1 File exists\n2 0 ok\n")
        XCTAssertEqual(run("cat \(q(sales))/@dev/b.txt \(q(sales))/@dev/d/a.txt").stdout, "a\nb\n")
        // Nothing above changed anything: no staged change, and both branches are still there.
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.uncommitted \(q(main))").stdout, "false")
        XCTAssertEqual(run("ls -A \(q(sales))").stdout, ".log\n@dev\n@main\ntags\nversions\n")
        XCTAssertEqual(run("cat \(q(main))/d/a.txt \(q(main))/b.txt").stdout, "a\nb\n")
        XCTAssertEqual(run("ls \(q(sales))/versions").stdout, "\(v)\n")
        // rm -r of a dataset empties its working trees (staged deletions, like rm in a git
        // checkout) and stops at the read-only folders; every version is intact and restores it.
        let rmAll = sh("rm -rf \(q(sales))")
        XCTAssertTrue(rmAll.stderr.contains("Read-only file system"), rmAll.stderr)
        XCTAssertEqual(run("ls -A \(q(main))").stdout, "")
        XCTAssertEqual(run("cat \(q(sales))/versions/\(v)/d/a.txt").stdout, "a\n")
        // versions/ shows files without write bits; --no-preserve=mode restores the committed modes.
        run("cp -r --no-preserve=mode \(q(sales))/versions/\(v)/. \(q(main))/")
        XCTAssertEqual(run("cat \(q(main))/d/a.txt \(q(main))/b.txt").stdout, "a\nb\n")
        // The restored folder is new (its mtime is now), which a version keeps; no file differs.
        let restored = commit("main", "restored")
        XCTAssertEqual(run("\(q(artifactfsBinary)) diff \(q(sales)) \(v) \(restored)").stdout, "no differences between \(v) and \(restored)\n")
    }

    func testCommandLineRefusalsAreClearAndChangeNothing() throws {
        run("mkdir \(q(sales))")
        let store = "--store \(q(fsx.store))"
        // Nothing committed yet: nothing to tag or diff.
        let tagEmpty = fsx.cli("tag \(store) sales v0")
        XCTAssertEqual(tagEmpty.status, 4, tagEmpty.stderr)
        XCTAssertTrue(tagEmpty.stderr.contains("no commits yet"), tagEmpty.stderr)
        XCTAssertTrue(run("\(q(artifactfsBinary)) log \(store) sales").stdout.contains("no versions yet"))
        run("echo x > \(q(sales))/@main/x.txt")
        _ = commit("main", "one")
        let dupBranch = fsx.cli("branch \(store) sales main")
        XCTAssertEqual(dupBranch.status, 1)
        XCTAssertTrue(dupBranch.stderr.contains("branch already exists"), dupBranch.stderr)
        let badFrom = fsx.cli("branch \(store) sales dev --from nosuch")
        XCTAssertEqual(badFrom.status, 4)
        XCTAssertTrue(badFrom.stderr.contains("nosuch: no such version, tag or branch"), badFrom.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(sales)/@dev"), "a refused branch is not made")
        let emptyMessage = fsx.cli("commit \(q(sales))/@main -m ''")
        XCTAssertEqual(emptyMessage.status, 64, emptyMessage.stderr)
        XCTAssertTrue(emptyMessage.stderr.contains("must not be empty"), emptyMessage.stderr)
        let noDataset = fsx.cli("tag \(store) nosuch v1")
        XCTAssertEqual(noDataset.status, 4)
        XCTAssertTrue(noDataset.stderr.contains("no such dataset"), noDataset.stderr)
        let outside = fsx.cli("commit \(q(work)) -m x")
        XCTAssertEqual(outside.status, 4)
        XCTAssertTrue(outside.stderr.contains("not an @branch folder"), outside.stderr)
        XCTAssertEqual(run("ls \(q(sales))/versions | wc -l").stdout, "1\n")
        XCTAssertEqual(run("ls \(q(sales))/tags").stdout, "")
    }
}
