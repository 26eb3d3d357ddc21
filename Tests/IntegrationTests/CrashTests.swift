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
