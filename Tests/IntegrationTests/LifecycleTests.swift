import Foundation
import XCTest

/// forget, gc and branch deletion on a real mount, driven by the built binary and real tools.
final class LifecycleTests: MountTestCase {
    private func cli(_ args: String, file: StaticString = #filePath, line: UInt = #line) -> ShellResult {
        run("\(q(artifactfsBinary)) \(args) --store \(q(fsx.store))", file: file, line: line)
    }

    private func json(_ r: ShellResult) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
    }

    private func size(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1 }

    /// Three runs; forget keeps the newest. The mount stops showing what the kernel had cached
    /// of the forgotten runs, an open file stays readable, and gc frees exactly the bytes only
    /// the forgotten runs used.
    func testForgetThroughTheMountThenGCFreesExactlyWhatOnlyForgottenRunsUsed() throws {
        try freshMount(quietPeriod: 600)
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("head -c 70000 /dev/urandom > \(q(work))/shared.bin")
        var runs: [String] = []
        for i in 1...3 {
            run("head -c \(10_000 * i) /dev/urandom > \(q(work))/a\(i).txt && cp \(q(work))/a\(i).txt \(q(p))/incoming/a.txt")
            run("cp \(q(work))/shared.bin \(q(p))/incoming/shared.bin")
            if i == 2 { run("head -c 5000 /dev/urandom > \(q(work))/only2.bin && cp \(q(work))/only2.bin \(q(p))/incoming/only2.bin") }
            runs.append(run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // The kernel now caches these names (an hour for runs/, latest/ and history/).
        run("stat \(q(p))/runs/\(runs[0]) \(q(p))/latest/only2.bin \(q(p))/history/a.txt/\(runs[1]) > /dev/null")
        run("cmp \(q(work))/only2.bin \(q(p))/latest/only2.bin && ls \(q(p))/history/a.txt > /dev/null")
        // A reader holds a forgotten run's file open across forget and gc.
        let reader = "\(work!)/reader.py"
        try """
            import subprocess, sys
            f = open(sys.argv[1], 'rb')
            subprocess.run(sys.argv[2:], check=True, stdout=subprocess.DEVNULL)
            sys.stdout.write(str(len(f.read())))
            """.write(toFile: reader, atomically: true, encoding: .utf8)

        let dry = json(cli("forget p --keep-last 1 --dry-run --json"))
        XCTAssertEqual((dry["forgotten"] as? [[String: Any]])?.compactMap { $0["run"] as? String }, [runs[1], runs[0]])
        XCTAssertEqual(fsx.runs("p"), runs, "a dry run forgets nothing")

        let forgetAndCollect = "sh -c \(q("\(q(artifactfsBinary)) forget p --keep-last 1 --store \(q(fsx.store)) && \(q(artifactfsBinary)) gc --grace 0 --json --store \(q(fsx.store)) > \(q(work))/gc.json"))"
        let read = run("python3 \(q(reader)) \(q(p))/runs/\(runs[1])/raw_source/only2.bin \(forgetAndCollect)")
        XCTAssertEqual(read.stdout, "5000", "a file open before forget and gc reads whole")

        XCTAssertEqual(fsx.runs("p"), [runs[2]])
        XCTAssertNotEqual(sh("stat \(q(p))/runs/\(runs[0])").status, 0, "runs/ still shows a forgotten run")
        XCTAssertNotEqual(sh("stat \(q(p))/latest/only2.bin").status, 0, "latest/ still shows a file only a forgotten run had")
        XCTAssertNotEqual(sh("stat \(q(p))/history/a.txt/\(runs[1])").status, 0, "history/ still shows a forgotten version")
        XCTAssertEqual(run("ls \(q(p))/latest").stdout, "a.txt\nshared.bin\n")
        XCTAssertEqual(run("ls \(q(p))/history/a.txt").stdout, "\(runs[2])\n")
        run("cmp \(q(work))/a3.txt \(q(p))/latest/a.txt && cmp \(q(work))/shared.bin \(q(p))/latest/shared.bin")

        let gc = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(work!)/gc.json")))) as? [String: Any] ?? [:]
        let expected = size("\(work!)/a1.txt") + size("\(work!)/a2.txt") + size("\(work!)/only2.bin")
        XCTAssertEqual(gc["bytes_freed"] as? Int, expected, "\(gc)")
        XCTAssertEqual(gc["blobs_removed"] as? Int, 3)
        XCTAssertEqual(fsx.blobCount, 2, "a3.txt and shared.bin stay")
        cli("verify")
        // A second gc has nothing left to do.
        XCTAssertEqual(json(cli("gc --grace 0 --json"))["bytes_freed"] as? Int, 0)
    }

    func testForgetRefusesWhatItCannotDo() throws {
        run("mkdir \(q(fsx.project("p")))")
        let noRule = sh("\(q(artifactfsBinary)) forget p --store \(q(fsx.store))")
        XCTAssertEqual(noRule.status, 64)
        XCTAssertTrue(noRule.stderr.contains("keep rule"), noRule.stderr)
        let badDuration = sh("\(q(artifactfsBinary)) forget p --keep-within 3 --store \(q(fsx.store))")
        XCTAssertEqual(badDuration.status, 64)
        XCTAssertTrue(badDuration.stderr.contains("not a duration"), badDuration.stderr)
        let missing = sh("\(q(artifactfsBinary)) forget nope --keep-last 1 --store \(q(fsx.store))")
        XCTAssertEqual(missing.status, 4)
        XCTAssertTrue(missing.stderr.hasPrefix("artifactfs: nope: no such project"), missing.stderr)
        let badGrace = sh("\(q(artifactfsBinary)) gc --grace soon --store \(q(fsx.store))")
        XCTAssertEqual(badGrace.status, 64)
        let noStore = sh("\(q(artifactfsBinary)) gc --store \(q(work))/nothing")
        XCTAssertEqual(noStore.status, 4)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work!)/nothing"), "gc created a store")
        // A project folder in the mount names its project.
        XCTAssertEqual(json(run("cd \(q(fsx.project("p"))) && \(q(artifactfsBinary)) forget . --keep-last 1 --json"))["project"] as? String, "p")
    }

    /// gc in a loop, with no grace at all, while files are copied in, sealed by the quiet period
    /// and by hand, committed, forgotten and read back: nothing in use is ever deleted.
    func testGCInALoopUnderLoadDeletesNothingInUse() throws {
        try freshMount(quietPeriod: 0.2)
        let p = fsx.project("p"), d = "\(fsx.mnt)/datasets/d"
        run("mkdir \(q(p)) \(q(d))")
        let stop = "\(work!)/stop", count = "\(work!)/gc-count", errors = "\(work!)/gc-errors"
        run("""
            (while [ ! -e \(q(stop)) ]; do \(q(artifactfsBinary)) gc --grace 0 --store \(q(fsx.store)) > /dev/null 2>> \(q(errors)) \
            || echo "gc failed" >> \(q(errors)); echo >> \(q(count)); done; echo done > \(q(stop)).ack) > /dev/null 2>&1 &
            """)
        defer {
            sh("touch \(q(stop))")
            for _ in 0..<600 where !FileManager.default.fileExists(atPath: stop + ".ack") { usleep(50_000) }
        }
        for i in 0..<24 {
            // The same content comes back now and then, so gc races dedup against deletion.
            run("head -c \(20_000 + (i % 5) * 7_000) /dev/zero | tr '\\0' '\(i % 7)' > \(q(work))/f\(i).bin")
            run("cp \(q(work))/f\(i).bin \(q(p))/incoming/f\(i % 6).bin")
            if i % 4 == 3 { sh("\(q(artifactfsBinary)) seal \(q(p))/incoming") }
            run("cp \(q(work))/f\(i).bin \(q(d))/@main/g\(i % 5).bin")
            if i % 3 == 2 { run("\(q(artifactfsBinary)) commit \(q(d))/@main -m 'step \(i)' > /dev/null") }
            if i % 8 == 7 { cli("forget p --keep-last 2 > /dev/null") }
            run("cat \(q(p))/latest/* \(q(d))/@main/* > /dev/null 2>&1 || true")
        }
        sh("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        run("\(q(artifactfsBinary)) commit \(q(d))/@main -m last > /dev/null || true")
        sh("touch \(q(stop))")
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: stop + ".ack") { usleep(50_000) }
        let loops = (try? String(contentsOfFile: count, encoding: .utf8))?.split(separator: "\n", omittingEmptySubsequences: false).count ?? 0
        XCTAssertGreaterThanOrEqual(loops, 5, "gc ran too few times to prove anything")
        XCTAssertEqual((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "", "")

        // Everything the mount shows is whole: the last copy of each name, in latest/ and @main/.
        for slot in 0..<6 {
            let last = (0..<24).last { $0 % 6 == slot }!
            run("cmp \(q(work))/f\(last).bin \(q(p))/latest/f\(slot).bin")
        }
        for slot in 0..<5 {
            let last = (0..<24).last { $0 % 5 == slot }!
            run("cmp \(q(work))/f\(last).bin \(q(d))/@main/g\(slot).bin")
        }
        run("for r in \(q(p))/runs/*/raw_source/* \(q(d))/versions/*/*; do cat \"$r\" > /dev/null || exit 1; done")
        cli("verify")
    }

    /// rm -rf in the mount never deletes a branch; `branch --delete` does, keeps its versions
    /// (log shows them, --from brings the branch back) until the retention passes, and then gc
    /// frees exactly the bytes only those versions used.
    func testBranchDeleteKeepsVersionsForTheRetentionThenGCFreesThem() throws {
        try freshMount(quietPeriod: 600)
        let d = "\(fsx.mnt)/datasets/d"
        run("mkdir \(q(d)) && echo one > \(q(d))/@main/a.txt")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(d))/@main -m one").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        cli("branch d dev")
        run("head -c 50000 /dev/urandom > \(q(work))/big.bin && cp \(q(work))/big.bin \(q(d))/@dev/ && echo two > \(q(d))/@dev/b.txt")
        let v2 = run("\(q(artifactfsBinary)) commit \(q(d))/@dev -m two").stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        XCTAssertNotEqual(sh("rm -rf \(q(d))/@dev").status, 0, "rmdir of a branch folder must fail")
        XCTAssertEqual(run("ls \(q(d))").stdout, "@dev\n@main\ntags\nversions\n")
        let busy = sh("\(q(artifactfsBinary)) branch d --delete dev --store \(q(fsx.store))")
        XCTAssertEqual(busy.status, 5, "uncommitted deletions keep the branch: \(busy.stderr)")
        XCTAssertTrue(busy.stderr.contains("@dev: the branch has 3 uncommitted changes"), busy.stderr)
        // Committed, the deletions are one more version of dev: its files stay in v2.
        let v3 = run("\(q(artifactfsBinary)) commit \(q(d))/@dev -m emptied").stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        cli("branch d --delete dev")
        for _ in 0..<40 where sh("ls \(q(d))").stdout.contains("@dev") { usleep(50_000) }  // the entry's 1 s timeout
        XCTAssertEqual(run("ls \(q(d))").stdout, "@main\ntags\nversions\n")
        XCTAssertTrue(cli("log d").stdout.contains("(deleted @dev)"))
        XCTAssertEqual(json(cli("gc --grace 0 --json"))["versions_removed"] as? Int, 0, "inside the retention period")
        run("cmp \(q(work))/big.bin \(q(d))/versions/\(v2)/big.bin")
        // Brought back, and deleted again.
        cli("branch d dev --from \(v2)")
        // The kernel may keep the deleted @dev's entry for its 1 s timeout.
        for _ in 0..<40 where sh("cmp \(q(work))/big.bin \(q(d))/@dev/big.bin").status != 0 { usleep(50_000) }
        run("cmp \(q(work))/big.bin \(q(d))/@dev/big.bin")
        cli("branch d --delete dev")
        let listed = json(cli("branch d --json"))
        XCTAssertEqual((listed["branches"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["main"])
        XCTAssertEqual((listed["deleted"] as? [[String: Any]])?.compactMap { $0["version"] as? String }, [v2, v3])

        cli("branch d --retention 0")
        let gc = json(cli("gc --grace 0 --json"))
        XCTAssertEqual(gc["versions_removed"] as? Int, 2)
        XCTAssertEqual(gc["bytes_freed"] as? Int, 50_000 + 4, "big.bin and b.txt: \(gc)")
        XCTAssertEqual(run("ls \(q(d))/versions").stdout, "\(v1)\n")
        XCTAssertFalse(cli("log d").stdout.contains(v2))
        XCTAssertFalse(cli("log d").stdout.contains(v3))
        run("cat \(q(d))/@main/a.txt > /dev/null")
        cli("verify")
        let missing = sh("\(q(artifactfsBinary)) branch d --delete nope --store \(q(fsx.store))")
        XCTAssertEqual(missing.status, 4)
        XCTAssertTrue(missing.stderr.hasPrefix("artifactfs: @nope: no such branch"), missing.stderr)
    }

    /// One byte flipped in a blob on disk: reads through the mount answer EIO, never the bad
    /// bytes, in runs/, latest/ and @branch/, and still after a remount (the blob is in
    /// quarantine/); the blocks before the damage still read; verify names the blob's files.
    func testAFlippedByteReadsEIOAndStaysEIOAfterRemount() throws {
        try freshMount(quietPeriod: 600)
        let p = fsx.project("p"), d = "\(fsx.mnt)/datasets/d"
        run("mkdir \(q(p)) \(q(d))")
        run("head -c 3000000 /dev/urandom > \(q(work))/big.bin && echo 'a small file' > \(q(work))/small.txt && head -c 2500000 /dev/urandom > \(q(work))/legacy.bin")
        run("cp \(q(work))/big.bin \(q(work))/small.txt \(q(work))/legacy.bin \(q(p))/incoming/ && cp \(q(work))/big.bin \(q(d))/@main/")
        let r = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("\(q(artifactfsBinary)) commit \(q(d))/@main -m big > /dev/null")
        func blob(_ name: String) -> String {
            let sha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(p))/runs/\(r)/raw_source/\(name)").stdout
            return "\(fsx.store)/objects/\(sha.prefix(2))/\(sha.dropFirst(2))"
        }
        let big = blob("big.bin"), small = blob("small.txt"), legacy = blob("legacy.bin")
        fsx.unmount()
        // A blob stored before block checksums were kept: checked whole at its first open.
        run("sqlite3 \(q(fsx.store))/catalog.sqlite \"UPDATE blob SET blocks = NULL WHERE size = 2500000\"")
        run("printf 'X' | dd of=\(q(big)) bs=1 seek=2500000 conv=notrunc status=none")
        run("printf 'X' | dd of=\(q(small)) bs=1 seek=3 conv=notrunc status=none")
        run("printf 'X' | dd of=\(q(legacy)) bs=1 seek=100 conv=notrunc status=none")
        try fsx.mount()
        // The first two blocks are good and are served.
        run("head -c 2000000 \(q(p))/latest/big.bin | cmp - <(head -c 2000000 \(q(work))/big.bin)")
        for path in ["\(p)/runs/\(r)/raw_source/big.bin", "\(p)/latest/small.txt", "\(p)/latest/legacy.bin", "\(d)/@main/big.bin"] {
            let read = sh("cat \(q(path)) > /dev/null")
            XCTAssertTrue(read.stderr.contains("Input/output error"), "\(path): \(read.status) \(read.stderr)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: "\(fsx.store)/quarantine").map { String($0.prefix(8)) }),
                       Set([big, small, legacy].map { String(($0.split(separator: "/").suffix(2).joined()).prefix(8)) }))
        XCTAssertTrue(fsx.daemonLog.contains("is damaged"), fsx.daemonLog)
        fsx.unmount()
        try fsx.mount()
        let again = sh("cat \(q(p))/latest/big.bin > /dev/null")
        XCTAssertTrue(again.stderr.contains("Input/output error"), again.stderr)
        let v = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 3)
        XCTAssertTrue(v.stdout.contains("quarantined_blob"), v.stdout)
        XCTAssertTrue(v.stdout.contains("used by datasets/d/versions/"), v.stdout)
        // The same content copied in again heals the store.
        run("cp \(q(work))/big.bin \(q(work))/small.txt \(q(work))/legacy.bin \(q(p))/incoming/ && \(q(artifactfsBinary)) seal \(q(p))/incoming")
        run("cmp \(q(work))/big.bin \(q(d))/@main/big.bin && cmp \(q(work))/legacy.bin \(q(p))/runs/\(r)/raw_source/legacy.bin")
        cli("verify --read-data")
    }
}
