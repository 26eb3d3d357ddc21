import Foundation
import XCTest

/// Writable trees keep exactly what was written (issue 9): each case through a real mount,
/// then again after a seal or a commit and a remount.
final class TreeFidelityTests: MountTestCase {
    /// The first case: NFC and NFD spellings of one word are two files in `@main/`,
    /// before and after a commit and a remount (Swift's `String` equality merged them).
    func testCanonicallyEquivalentNamesStayDistinctInABranch() throws {
        let main = "\(fsx.mnt)/datasets/uni/@main"
        run("mkdir \(q(fsx.mnt))/datasets/uni")
        run("cd \(q(main)) && printf A > caf$'\\xc3\\xa9' && printf B > cafe$'\\xcc\\x81'")
        XCTAssertEqual(run("ls \(q(main)) | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines), "2")
        XCTAssertEqual(run("cd \(q(main)) && cat caf$'\\xc3\\xa9' cafe$'\\xcc\\x81'").stdout, "AB")
        run("cd \(q(main)) && printf C > cafe$'\\xcc\\x81'")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m t")
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(run("cd \(q(main)) && cat caf$'\\xc3\\xa9' cafe$'\\xcc\\x81'").stdout, "AC")
        let version = run("ls \(q(fsx.mnt))/datasets/uni/versions").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("cd \(q(fsx.mnt))/datasets/uni/versions/\(version) && cat caf$'\\xc3\\xa9' cafe$'\\xcc\\x81'").stdout, "AC")
        XCTAssertEqual(run("ls \(q(fsx.mnt))/datasets/uni/versions/\(version) | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines), "2")
    }

    /// The second case: names that are not UTF-8 keep their bytes in incoming/, the
    /// sealed run, latest/ and history/, and in a branch and its version.
    func testNamesThatAreNotUTF8KeepTheirBytes() throws {
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("cd \(q(p))/incoming && printf one > $'\\xe9'.txt && printf two > $'\\xe8'.txt && mkdir $'\\xc1' && printf deep > $'\\xc1'/f")
        XCTAssertEqual(run("ls \(q(p))/incoming | od -An -c | tr -s ' '").stdout, run("printf '\\301\\n\\350.txt\\n\\351.txt\\n' | od -An -c | tr -s ' '").stdout)
        let runs = try fsx.waitForRuns("p", count: 1)
        let raw = "\(p)/runs/\(runs[0])/raw_source"
        XCTAssertEqual(run("cd \(q(raw)) && cat $'\\xe9'.txt $'\\xe8'.txt $'\\xc1'/f").stdout, "onetwodeep")
        XCTAssertEqual(run("cd \(q(p))/latest && cat $'\\xe9'.txt $'\\xe8'.txt").stdout, "onetwo")
        XCTAssertEqual(run("ls \(q(p))/history/$'\\xe9'.txt").stdout, runs[0] + "\n")
        // .run.json and getfattr stay one line and valid; the names are never merged.
        let json = fsx.runJSON("p", runs[0])
        XCTAssertEqual((json["files"] as? [String: Any])?["new"] as? Int, 3)

        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        run("cd \(q(main)) && printf one > $'\\xe9'.txt && printf two > $'\\xe8'.txt")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m bytes")
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(run("cd \(q(main)) && cat $'\\xe9'.txt $'\\xe8'.txt").stdout, "onetwo")
        XCTAssertEqual(run("cd \(q(raw)) && cat $'\\xe9'.txt $'\\xe8'.txt").stdout, "onetwo")
        // diff shows such a name quoted on one line, and --json gives its exact bytes back.
        let versions = run("ls \(q(fsx.mnt))/datasets/d/versions").stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(versions.count, 1)
        let log = run("\(q(artifactfsBinary)) log \(q(fsx.mnt))/datasets/d").stdout
        XCTAssertTrue(log.contains("bytes"), log)
    }

    /// The caller's umask is the only one applied (the daemon's own is not), and set-user-ID
    /// and set-group-ID bits stay, as on ext4; both survive the seal and the commit.
    func testModesAreTheCallersAndKeepSetIDBits() throws {
        let p = fsx.project("p")
        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(p)) \(q(fsx.mnt))/datasets/d")
        for dir in ["\(p)/incoming", main] {
            run("cd \(q(dir)) && umask 002 && touch t && printf x > c && mkdir m && python3 -c 'import os; os.close(os.open(\"s\", os.O_CREAT|os.O_WRONLY, 0o4755))'")
            XCTAssertEqual(run("cd \(q(dir)) && stat -c '%n %a' c m s t").stdout, "c 664\nm 775\ns 4755\nt 664\n", dir)
        }
        run("\(q(artifactfsBinary)) commit \(q(main)) -m modes")
        let runs = try fsx.waitForRuns("p", count: 1)
        XCTAssertEqual(run("cd \(q(p))/runs/\(runs[0])/raw_source && stat -c '%n %a' c s t").stdout, "c 664\ns 4755\nt 664\n")
        XCTAssertEqual(run("cd \(q(main)) && stat -c '%n %a' c m s t").stdout, "c 664\nm 775\ns 4755\nt 664\n")
    }

    /// Staging holds no per-file resource (issue 9, case 7): with the daemon's descriptor limit
    /// at 1,024, `cp -r` of 100,000 small files into incoming/ completes and all of them seal.
    /// (A descriptor per looked-up file stopped such a copy near the limit.)
    func testAnyNumberOfFilesCanBeStagedWithFewDescriptors() throws {
        fsx.unmount()
        fsx.descriptorLimit = 1024
        fsx.quietPeriod = 1
        try fsx.mount()
        XCTAssertEqual(run("grep 'open files' /proc/\(fsx.daemonPID!)/limits | awk '{print $5}'").stdout, "1024\n")
        run("""
            cd \(q(work)) && python3 -c '
            import os
            for d in range(100):
                os.mkdir(f"d{d}")
                for i in range(1000):
                    with open(f"d{d}/f{i}.txt", "w") as f: f.write(f"{d} {i}\\n")'
            """)
        let p = fsx.project("many")
        run("mkdir \(q(p))")
        run("cp -r \(q(work))/. \(q(p))/incoming/")
        XCTAssertLessThan(Int(run("ls /proc/\(fsx.daemonPID!)/fd | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 9999, 100)
        let runs = try fsx.waitForRuns("many", count: 1)
        XCTAssertEqual(runs.count, 1)
        XCTAssertEqual(run("find \(q(p))/runs/\(runs[0])/raw_source -type f | wc -l").stdout, "100000\n")
        XCTAssertEqual(run("cat \(q(p))/runs/\(runs[0])/raw_source/d42/f7.txt").stdout, "42 7\n")
    }
}
