import Foundation
import XCTest

/// The kernel caches entries and attributes of the read-only trees; what it caches is never
/// shown stale after a seal, whether `artifactfs seal` or the quiet period made it, and a
/// change by another process in a writable tree shows at once.
final class KernelCacheTests: MountTestCase {
    func testLatestShowsTheNewVersionRightAfterASeal() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && mkdir -p \(q(p))/incoming/d && echo v1 > \(q(p))/incoming/a.txt && echo v1 > \(q(p))/incoming/d/x.txt")
        run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        // Cache the entries and attributes: stat, a listing with sizes, and the content.
        XCTAssertEqual(run("stat -c %s \(q(p))/latest/a.txt \(q(p))/latest/d/x.txt").stdout, "3\n3\n")
        run("ls -lR \(q(p))/latest > /dev/null")
        XCTAssertEqual(run("cat \(q(p))/latest/a.txt \(q(p))/latest/d/x.txt").stdout, "v1\nv1\n")
        let firstSha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(p))/latest/a.txt").stdout

        for round in 2...4 {
            let body = String(repeating: "v\(round)", count: round)
            // A seal empties incoming/: the folder is made again.
            run("mkdir \(q(p))/incoming/d && echo \(body) > \(q(p))/incoming/a.txt && echo \(body) > \(q(p))/incoming/d/x.txt")
            run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
            // No wait: the seal has returned, so every cached view must already be the new one.
            XCTAssertEqual(run("cat \(q(p))/latest/a.txt \(q(p))/latest/d/x.txt").stdout, "\(body)\n\(body)\n", "round \(round)")
            let size = "\(body.utf8.count + 1)"
            XCTAssertEqual(run("stat -c %s \(q(p))/latest/a.txt \(q(p))/latest/d/x.txt").stdout, "\(size)\n\(size)\n", "round \(round)")
            XCTAssertTrue(run("ls -l \(q(p))/latest/d").stdout.contains(" \(size) "), "round \(round)")
        }
        XCTAssertNotEqual(run("getfattr --only-values -n user.artifactfs.sha256 \(q(p))/latest/a.txt").stdout, firstSha)
        // The old version is still where it was: runs/ and history/ are immutable.
        let runs = try fsx.waitForRuns("demo", count: 4)
        XCTAssertEqual(run("cat \(q(p))/runs/\(runs[0])/raw_source/a.txt").stdout, "v1\n")
    }

    func testAQuietPeriodSealRefreshesLatestToo() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && echo one > \(q(p))/incoming/f.txt")
        _ = try fsx.waitForRuns("demo", count: 1)
        XCTAssertEqual(run("cat \(q(p))/latest/f.txt").stdout, "one\n")
        run("ls -l \(q(p))/latest > /dev/null")
        run("echo three > \(q(p))/incoming/f.txt")
        _ = try fsx.waitForRuns("demo", count: 2)
        XCTAssertEqual(run("cat \(q(p))/latest/f.txt").stdout, "three\n")
        XCTAssertEqual(run("stat -c %s \(q(p))/latest/f.txt").stdout, "6\n")
    }

    /// A file written in `@main/` by one process shows its new size and content to another
    /// at once (working trees are not cached past a change).
    func testAWorkingTreeChangeShowsAtOnce() throws {
        let main = "\(fsx.mnt)/datasets/sales/@main"
        run("mkdir \(q(fsx.mnt))/datasets/sales && echo a > \(q(main))/f.txt")
        XCTAssertEqual(run("stat -c %s \(q(main))/f.txt").stdout, "2\n")
        run("sh -c 'echo abcdef > \(q(main))/f.txt'")
        XCTAssertEqual(run("stat -c %s \(q(main))/f.txt").stdout, "7\n")
        XCTAssertEqual(run("cat \(q(main))/f.txt").stdout, "abcdef\n")
        run("mv \(q(main))/f.txt \(q(main))/g.txt")
        XCTAssertEqual(sh("stat \(q(main))/f.txt").status, 1)
        XCTAssertEqual(run("cat \(q(main))/g.txt").stdout, "abcdef\n")
    }

    /// A working tree's listing is kept by the kernel between changes; every change by any
    /// process, and a commit, shows in the next listing at once.
    func testAWorkingTreeListingIsNeverStale() throws {
        let main = "\(fsx.mnt)/datasets/sales/@main"
        run("mkdir \(q(fsx.mnt))/datasets/sales && mkdir \(q(main))/d && touch \(q(main))/a \(q(main))/d/x")
        func list(_ dir: String) -> String { run("ls -A \(q(dir)) | tr '\\n' ' '").stdout }
        XCTAssertEqual(list(main), "a d ")
        XCTAssertEqual(list(main), "a d ")  // kept
        run("sh -c 'touch \(q(main))/b'")
        XCTAssertEqual(list(main), "a b d ")
        run("sh -c 'rm \(q(main))/a && mv \(q(main))/b \(q(main))/d/b'")
        XCTAssertEqual(list(main), "d ")
        XCTAssertEqual(list("\(main)/d"), "b x ")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m first > /dev/null")
        XCTAssertEqual(list(main), "d ")
        XCTAssertEqual(list("\(main)/d"), "b x ")
        run("sh -c 'mkdir \(q(main))/e && rmdir \(q(main))/e && ln -s d \(q(main))/l'")
        XCTAssertEqual(list(main), "d l ")
        XCTAssertEqual(run("ls -l \(q(main))/l").stdout.contains("-> d"), true)
    }
}
