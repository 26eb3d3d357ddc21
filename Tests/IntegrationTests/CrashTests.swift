import Foundation
import XCTest

/// kill -9 of the daemon at awkward moments loses nothing that was sealed and leaves a store
/// that `verify` accepts.
final class CrashTests: MountTestCase {
    override var quietPeriod: Double { 600 }  // seals only when the test asks

    private func sealSample(_ name: String) -> String {
        let p = fsx.project("demo")
        run("mkdir -p \(q(work))/\(name) && head -c 500000 /dev/urandom > \(q(work))/\(name)/payload.bin && echo \(name) > \(q(work))/\(name)/id.txt")
        run("cp -a \(q(work))/\(name) \(q(p))/incoming/")
        return run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts a writer that writes the first `count` bytes of `source` to `path` (truncating
    /// it), then keeps it open for 30 s; returns once the bytes are written.
    private func holdOpenAfterWriting(_ path: String, prefixOf source: String, count: Int) throws {
        let ready = "\(work!)/writer-ready-\(UUID().uuidString.prefix(6))"
        sh("""
            (python3 -c 'import os,sys,time
            fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, open(sys.argv[2], "rb").read(int(sys.argv[3])))
            open(sys.argv[4], "w").close()
            time.sleep(30)' \(q(path)) \(q(source)) \(count) \(q(ready)) >/dev/null 2>&1 &)
            """)
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: ready) { usleep(20_000) }
        guard FileManager.default.fileExists(atPath: ready) else {
            throw NSError(domain: "crash", code: 1, userInfo: [NSLocalizedDescriptionKey: "the writer of \(path) never started"])
        }
    }

    private func assertVerifyClean(file: StaticString = #filePath, line: UInt = #line) {
        let v = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr, file: file, line: line)
    }

    func testKillDuringLargeCopyKeepsSealedRunsAndStagedData() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        let before = sealSample("before")
        run("head -c 400000000 /dev/urandom > \(q(work))/large.bin")
        // Copy slowly enough that the kill lands mid-file.
        sh("(dd if=\(q(work))/large.bin of=\(q(p))/incoming/large.bin bs=1M status=none; true) & sleep 0.7; true")
        fsx.crash()
        sh("sleep 0.3")
        try fsx.mount()
        run("diff -r \(q(work))/before \(q(p))/runs/\(before)/raw_source/before")
        // The interrupted copy is staged (whole or partial) or was sealed at remount; never lost.
        let staged = sh("stat -c %s \(q(p))/incoming/large.bin")
        let sealedRuns = fsx.runs("demo").filter { $0 != before }
        XCTAssertTrue(staged.ok || !sealedRuns.isEmpty, "the staged file vanished: \(fsx.daemonLog.suffix(1500))")
        let prefix = Int(staged.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        if staged.ok && prefix > 0 {
            run("cmp -n \(prefix) \(q(work))/large.bin \(q(p))/incoming/large.bin")
        }
        assertVerifyClean()
    }

    func testKillDuringSealLeavesAWholeRunOrStagedFiles() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        let before = sealSample("before")
        run("mkdir -p \(q(work))/many && cd \(q(work))/many && for i in $(seq 1 3000); do echo \"row $i\" > f$i.txt; done")
        // Several delays so the kill lands at different points of the seal.
        for (i, delay) in ["0.05", "0.2", "0.5"].enumerated() {
            let dir = "batch\(i)"
            run("mkdir \(q(p))/incoming/\(dir) && cp \(q(work))/many/* \(q(p))/incoming/\(dir)/")
            sh("(\(q(artifactfsBinary)) seal \(q(p))/incoming >/dev/null 2>&1 &) ; sleep \(delay)")
            fsx.crash()
            try fsx.mount()
            run("diff -r \(q(work))/before \(q(p))/runs/\(before)/raw_source/before")
            // Every file of the batch is either in exactly one run or still staged.
            var found = 0
            for r in fsx.runs("demo") {
                found += Int(run("find \(q(p))/runs/\(r)/raw_source/\(dir) -type f 2>/dev/null | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
            let staged = Int(run("find \(q(p))/incoming/\(dir) -type f 2>/dev/null | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            XCTAssertEqual(found + staged, 3000, "delay \(delay): \(found) sealed + \(staged) staged")
            XCTAssertTrue(found == 0 || found == 3000, "a run is all or nothing, found \(found)")
            assertVerifyClean()
            // Seal what is left so the next round starts clean.
            sh("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        }
        run("diff -r \(q(work))/many \(q(p))/latest/batch2")
    }

    /// A file open for writing when the daemon died may be a truncated copy: after the next
    /// mount it stays in incoming/, marked interrupted, while the quiet period seals the rest;
    /// `artifactfs seal` keeps it as it is, and writing it again makes it an ordinary file.
    func testInterruptedCopyIsNeverSealedAsComplete() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("head -c 8000000 /dev/urandom > \(q(work))/large.bin")
        // A writer that has written part of the file and still holds it open when the daemon dies.
        try holdOpenAfterWriting("\(p)/incoming/large.bin", prefixOf: "\(work!)/large.bin", count: 3_000_000)
        fsx.crash()
        fsx.quietPeriod = 0.2
        try fsx.mount()
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.interrupted \(q(p))/incoming/large.bin").stdout, "true")
        // Another file seals at the quiet period; the interrupted one stays where it is.
        run("echo other > \(q(p))/incoming/other.txt")
        let first = try fsx.waitForRuns("demo", count: 1)[0]
        XCTAssertEqual(run("ls \(q(p))/runs/\(first)/raw_source").stdout, "other.txt\n")
        XCTAssertEqual(run("stat -c %s \(q(p))/incoming/large.bin").stdout, "3000000\n")
        let status = fsx.cli("status --store \(q(fsx.store)) demo")
        XCTAssertTrue(status.stdout.contains("1 interrupted file") && status.stdout.contains("large.bin"), status.stdout + status.stderr)
        XCTAssertTrue(fsx.cli("status --store \(q(fsx.store))").stdout.contains("1 interrupted"))
        // Still there after another remount.
        fsx.unmount()
        try fsx.mount()
        run("echo more > \(q(p))/incoming/more.txt")
        let second = try fsx.waitForRuns("demo", count: 2)[1]
        XCTAssertEqual(run("ls \(q(p))/runs/\(second)/raw_source").stdout, "more.txt\n")
        // Sealing it explicitly keeps the prefix as it is, as the user asked.
        let sealed = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("cmp -n 3000000 \(q(work))/large.bin \(q(p))/runs/\(sealed)/raw_source/large.bin")
        XCTAssertFalse(sh("getfattr -n user.artifactfs.interrupted \(q(p))/runs/\(sealed)/raw_source/large.bin").ok)
        assertVerifyClean()
    }

    /// Writing an interrupted file again makes it whole: it seals at the quiet period.
    func testRewrittenInterruptedFileSealsNormally() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("printf partial > \(q(work))/partial")
        try holdOpenAfterWriting("\(p)/incoming/data.csv", prefixOf: "\(work!)/partial", count: 7)
        fsx.crash()
        fsx.quietPeriod = 0.2
        try fsx.mount()
        XCTAssertTrue(sh("getfattr -n user.artifactfs.interrupted \(q(p))/incoming/data.csv").ok)
        run("printf 'id\\n1\\n' > \(q(p))/incoming/data.csv")
        let runs = try fsx.waitForRuns("demo", count: 1)
        XCTAssertEqual(run("cat \(q(p))/runs/\(runs[0])/raw_source/data.csv").stdout, "id\n1\n")
    }

    /// The same in a working tree: a file open for writing when the daemon died stays an
    /// uncommitted change, marked interrupted, out of quiet-period commits; `artifactfs commit`
    /// takes it as it is.
    func testInterruptedWriteInABranchIsNeverCommittedAsComplete() throws {
        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        run("head -c 3000000 /dev/urandom > \(q(work))/large.bin")
        try holdOpenAfterWriting("\(main)/large.bin", prefixOf: "\(work!)/large.bin", count: 1_000_000)
        fsx.crash()
        fsx.quietPeriod = 0.2
        try fsx.mount()
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.interrupted \(q(main))/large.bin").stdout, "true")
        run("echo other > \(q(main))/other.txt")
        var versions: [String] = []
        for _ in 0..<300 {
            versions = run("ls \(q(fsx.mnt))/datasets/d/versions").stdout.split(separator: "\n").map(String.init)
            if !versions.isEmpty { break }
            usleep(50_000)
        }
        XCTAssertEqual(versions.count, 1, "the quiet period never committed other.txt")
        XCTAssertEqual(run("ls \(q(fsx.mnt))/datasets/d/versions/\(versions[0])").stdout, "other.txt\n")
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.uncommitted \(q(main))/large.bin").stdout, "true")
        XCTAssertEqual(run("stat -c %s \(q(main))/large.bin").stdout, "1000000\n")
        let v2 = run("\(q(artifactfsBinary)) commit \(q(main)) -m 'keep the prefix'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("cmp -n 1000000 \(q(work))/large.bin \(q(fsx.mnt))/datasets/d/versions/\(v2)/large.bin")
        XCTAssertFalse(sh("getfattr -n user.artifactfs.interrupted \(q(main))/large.bin").ok)
        assertVerifyClean()
    }

    func testStagedFilesSurviveARemountAndSealThen() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && echo kept > \(q(p))/incoming/kept.txt")
        fsx.unmount()
        // Remount with a short quiet period: the staged file seals without anyone touching it.
        fsx.quietPeriod = 0.2
        try fsx.mount()
        let runs = try fsx.waitForRuns("demo", count: 1)
        XCTAssertEqual(run("cat \(q(p))/runs/\(runs[0])/raw_source/kept.txt").stdout, "kept\n")
        assertVerifyClean()
    }
}
