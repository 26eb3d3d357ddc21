import Foundation
import XCTest

/// `artifactfs import` driven as a user would: the built binary, a real store, real mounts.
final class ImportTests: MountTestCase {
    private func importCmd(_ args: String, env: String = "") -> ShellResult {
        sh("\(env) \(q(artifactfsBinary)) import --store \(q(fsx.store)) \(args)")
    }

    private func json(_ r: ShellResult) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
    }

    /// Every path of the store folder with its size and mode, and every file's SHA-256; but
    /// SQLite's shared-memory index (`-shm`) and an empty WAL, which any reader of a catalog
    /// that nobody has open creates and which hold no data.
    private func storeFingerprint() -> String {
        run("""
            cd \(q(fsx.store)) && find . ! -name catalog.sqlite-shm ! \\( -name catalog.sqlite-wal -size 0 \\) -printf '%p %s %m\\n' | sort &&
            find . -type f ! -name catalog.sqlite-shm ! -name catalog.sqlite-wal -exec sha256sum {} + | sort
            """).stdout
    }

    func testDryRunChangesNothing() throws {
        makeSampleTree("\(work!)/src")
        fsx.unmount()
        XCTAssertTrue(importCmd("\(q(work))/src --project first").ok)
        run("echo changed > \(q(work))/src/data.csv && echo more > \(q(work))/src/extra.txt")
        let before = storeFingerprint()
        let r = importCmd("\(q(work))/src --project first --dry-run --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = json(r)
        XCTAssertEqual(s["dry_run"] as? Bool, true)
        XCTAssertEqual(s["files_new"] as? Int, 1, r.stdout)
        XCTAssertEqual(s["files_superseded"] as? Int, 1, r.stdout)
        XCTAssertEqual(s["files_duplicate"] as? Int, 3, r.stdout)
        XCTAssertEqual(s["bytes_stored"] as? Int, 8 + 5, r.stdout)
        XCTAssertTrue(importCmd("\(q(work))/src --project never --dry-run").ok)
        XCTAssertTrue(importCmd("\(q(work))/src --dataset never -m x --dry-run").ok)
        XCTAssertEqual(storeFingerprint(), before, "a dry run changes nothing in the store")
        try fsx.mount()
        XCTAssertFalse(FileManager.default.fileExists(atPath: fsx.project("never")))
    }

    /// A batch of many small files (written on several threads, beside their blobs) that runs
    /// out of space: exit 8 with one line naming the store, no blob and no temp file left
    /// anywhere in `objects/`, nothing registered; the same command goes through once there is
    /// room, and the store verifies clean.
    func testImportOfManySmallFilesOnAFullDiskLeavesNothingThenResumes() throws {
        let small = try freshMountOnSmallDisk()
        run("mkdir \(q(fsx.mnt))/projects/full")
        run("""
            mkdir -p \(q(work))/many && cd \(q(work))/many &&
            for i in $(seq 1 300); do head -c 8192 /dev/urandom > f$i.bin; done
            """)
        // 512 KiB kept back, then the rest filled (dd fails when the disk is full).
        run("head -c 524288 /dev/zero > \(q(small))/reserve")
        sh("dd if=/dev/zero of=\(q(small))/filler bs=64k")
        func leftovers() -> String { run("find \(q(fsx.store))/objects \(q(fsx.store))/packs \(q(fsx.store))/tmp -type f | wc -l").stdout }

        // Not even room to open the catalog.
        let full = importCmd("\(q(work))/many --project full")
        XCTAssertEqual(full.status, 8, "exit 8: no space, \(full.stderr)")
        XCTAssertEqual(full.stderr, "artifactfs: \(fsx.store)/catalog.sqlite: cannot open catalog: no space left on the store's disk\n")
        // Room for the catalog and a few of the 300 blobs (2.4 MB): the batch's writes fail part way.
        run("rm \(q(small))/reserve")
        let part = importCmd("\(q(work))/many --project full")
        XCTAssertEqual(part.status, 8, "exit 8: no space, \(part.stderr)")
        XCTAssertEqual(part.stderr.split(separator: "\n").count, 1, part.stderr)
        XCTAssertTrue(part.stderr.contains("No space left on device"), part.stderr)
        XCTAssertEqual(leftovers(), "0\n", "no blob and no temp file stays")
        XCTAssertEqual(fsx.runs("full"), [], "nothing registered")

        run("rm \(q(small))/filler")
        let r = importCmd("\(q(work))/many --project full --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let runName = try XCTUnwrap(json(r)["run"] as? String)
        XCTAssertEqual(json(r)["files_new"] as? Int, 300, r.stdout)
        XCTAssertEqual(fsx.runs("full"), [runName])
        run("diff -r \(q(work))/many \(q(fsx.project("full")))/runs/\(runName)/raw_source")
        XCTAssertEqual(run("find \(q(fsx.store))/objects \(q(fsx.store))/packs -name '.put-*' | wc -l").stdout, "0\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
        fsx.unmount()
    }

    /// Small files an import stores go into pack files, not a file each: the mount serves
    /// them byte for byte (cat, cmp, python, a stage-free copy out with `cp -r`). One byte
    /// flipped in a pack: that file reads EIO (never the bad bytes), also after a remount, its
    /// neighbours in the pack still read; verify names it; the same content imported again
    /// heals it. gc after forget removes the packs.
    func testSmallFilesArePackedAndServedAndCheckedThroughTheMount() throws {
        run("""
            mkdir -p \(q(work))/small/a \(q(work))/small/b && cd \(q(work))/small &&
            for i in $(seq 1 150); do head -c $((100 + i * 37)) /dev/urandom > a/f$i.bin; done &&
            printf 'x,y\\n1,2\\n' > b/t.csv && ln -s ../a/f1.bin b/link && head -c 300000 /dev/urandom > b/large.bin
            """)
        fsx.unmount()
        let r = importCmd("\(q(work))/small --project packed --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let runName = try XCTUnwrap(json(r)["run"] as? String)
        let packs = run("ls \(q(fsx.store))/packs | grep -c '\\.pack$'").stdout
        XCTAssertEqual(packs, "1\n", "one pack for the batch's small files")
        XCTAssertEqual(run("find \(q(fsx.store))/objects -type f | wc -l").stdout, "1\n", "only the 300 kB file is loose")
        try fsx.mount()
        let raw = "\(fsx.project("packed"))/runs/\(runName)/raw_source"
        run("diff -r --no-dereference \(q(work))/small \(q(raw))")
        XCTAssertEqual(run("readlink \(q(raw))/b/link").stdout, "../a/f1.bin\n")
        run("cp -r \(q(raw)) \(q(work))/out && diff -r --no-dereference \(q(work))/small \(q(work))/out")
        XCTAssertEqual(run("python3 -c 'import sys; print(len(open(sys.argv[1], \"rb\").read()))' \(q(raw))/a/f7.bin").stdout, "\(100 + 7 * 37)\n")

        // One byte of a/f5.bin flipped in its pack.
        let sha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(raw))/a/f5.bin").stdout
        fsx.unmount()
        let where_ = run("""
            sqlite3 \(q(fsx.store))/catalog.sqlite "SELECT p.name || ' ' || b.pack_offset FROM blob b JOIN pack p ON p.id = b.pack WHERE hex(b.hash) = upper('\(sha)')"
            """).stdout.split(separator: " ")
        XCTAssertEqual(where_.count, 2, "a/f5.bin is packed")
        let pack = "\(fsx.store)/packs/\(where_[0])", offset = where_[1].trimmingCharacters(in: .whitespacesAndNewlines)
        run("chmod u+w \(q(pack)) && printf 'X' | dd of=\(q(pack)) bs=1 seek=\(offset) conv=notrunc status=none")
        try fsx.mount()
        let bad = sh("cat \(q(raw))/a/f5.bin > /dev/null")
        XCTAssertTrue(bad.stderr.contains("Input/output error"), "\(bad.status) \(bad.stderr)")
        run("cmp \(q(raw))/a/f4.bin \(q(work))/small/a/f4.bin && cmp \(q(raw))/a/f6.bin \(q(work))/small/a/f6.bin")
        XCTAssertTrue(fsx.daemonLog.contains("moved to quarantine/"), fsx.daemonLog)
        fsx.unmount()
        try fsx.mount()
        let again = sh("cat \(q(raw))/a/f5.bin > /dev/null")
        XCTAssertTrue(again.stderr.contains("Input/output error"), again.stderr)
        let v = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 3)
        XCTAssertTrue(v.stdout.contains("quarantined_blob"), v.stdout)

        // The same content imported again stores a good copy: the old run reads again.
        let heal = importCmd("\(q(work))/small --project healer --json")
        XCTAssertEqual(heal.status, 0, heal.stderr)
        run("cmp \(q(raw))/a/f5.bin \(q(work))/small/a/f5.bin")
        XCTAssertEqual(fsx.cli("verify --read-data --store \(q(fsx.store))").status, 0)

        // A run of 40 small files of their own, forgotten (a newer run kept), then gc with
        // no grace: their pack goes, nothing else.
        run("mkdir -p \(q(work))/scratch \(q(work))/newer && for i in $(seq 1 40); do head -c 500 /dev/urandom > \(q(work))/scratch/s$i; done && echo n > \(q(work))/newer/n")
        XCTAssertEqual(importCmd("\(q(work))/scratch --project scratch").status, 0)
        XCTAssertEqual(importCmd("\(q(work))/newer --project scratch").status, 0)
        func packCount() -> String { run("ls \(q(fsx.store))/packs | grep -c '\\.pack$' || true").stdout }
        let before = Int(packCount().trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertEqual(fsx.cli("forget scratch --keep-last 1 --store \(q(fsx.store))").status, 0)
        let gc = fsx.cli("gc --grace 0m --json --store \(q(fsx.store))")
        XCTAssertEqual(gc.status, 0, gc.stderr)
        let report = json(gc)
        XCTAssertEqual(report["blobs_removed"] as? Int, 40, gc.stdout)
        XCTAssertEqual(report["bytes_freed"] as? Int, 40 * 500, gc.stdout)
        XCTAssertEqual(report["packs_removed"] as? Int, 1, gc.stdout)
        XCTAssertEqual(packCount(), "\(before - 1)\n", gc.stdout)
        XCTAssertEqual(fsx.cli("verify --read-data --store \(q(fsx.store))").status, 0)
        run("diff -r --no-dereference \(q(work))/small \(q(raw))")

        // 40 more in a pack of their own; a newer run keeps 10 of them, the older run is
        // forgotten: gc rewrites the pack while the mount serves the 10, which still read.
        run("mkdir -p \(q(work))/part && for i in $(seq 1 40); do head -c 700 /dev/urandom > \(q(work))/part/p$i; done")
        XCTAssertEqual(importCmd("\(q(work))/part --project part").status, 0)
        run("cd \(q(work))/part && for i in $(seq 11 40); do rm p$i; done")
        let kept = importCmd("\(q(work))/part --project part --json")
        XCTAssertEqual(json(kept)["files_duplicate"] as? Int, 10, kept.stdout)
        let keptRun = try XCTUnwrap(json(kept)["run"] as? String)
        let keptDir = "\(fsx.project("part"))/runs/\(keptRun)/raw_source"
        run("diff -r \(q(work))/part \(q(keptDir))")  // open and cached by the mount before the rewrite
        XCTAssertEqual(fsx.cli("forget part --keep-last 1 --store \(q(fsx.store))").status, 0)
        let rewrite = fsx.cli("gc --grace 0m --json --store \(q(fsx.store))")
        XCTAssertEqual(json(rewrite)["packs_rewritten"] as? Int, 1, rewrite.stdout)
        XCTAssertEqual(json(rewrite)["blobs_removed"] as? Int, 30, rewrite.stdout)
        run("echo 3 > /proc/sys/vm/drop_caches")
        run("diff -r \(q(work))/part \(q(keptDir))")
        XCTAssertEqual(fsx.cli("verify --read-data --store \(q(fsx.store))").status, 0)

        // The same tree as a dataset version, one byte of a packed file flipped: opening it
        // for writing in @main (a copy-up) answers EIO and the mount stays up.
        XCTAssertEqual(importCmd("\(q(work))/small --dataset packs -m v1").status, 0)
        let wsha = run("getfattr --only-values -n user.artifactfs.sha256 \(q(fsx.mnt))/datasets/packs/@main/a/f9.bin").stdout
        let wloc = run("""
            sqlite3 \(q(fsx.store))/catalog.sqlite "SELECT p.name || ' ' || b.pack_offset FROM blob b JOIN pack p ON p.id = b.pack WHERE hex(b.hash) = upper('\(wsha)')"
            """).stdout.split(separator: " ")
        XCTAssertEqual(wloc.count, 2, "a/f9.bin is packed")
        run("chmod u+w \(q(fsx.store))/packs/\(wloc[0]) && printf 'X' | dd of=\(q(fsx.store))/packs/\(wloc[0]) bs=1 seek=\(wloc[1].trimmingCharacters(in: .whitespacesAndNewlines)) conv=notrunc status=none")
        let write = sh("echo more >> \(q(fsx.mnt))/datasets/packs/@main/a/f9.bin")
        XCTAssertTrue(write.stderr.contains("Input/output error"), "\(write.status) \(write.stderr)")
        run("cmp \(q(fsx.mnt))/datasets/packs/@main/a/f8.bin \(q(work))/small/a/f8.bin")

        // Quarantined (on another thread, after the copy-up's transaction): the same content
        // imported again heals the version and the run that share it.
        for _ in 0..<50 where fsx.cli("verify --store \(q(fsx.store))").status == 0 { usleep(100_000) }
        XCTAssertTrue(fsx.cli("verify --store \(q(fsx.store))").stdout.contains("quarantined_blob"))
        XCTAssertEqual(importCmd("\(q(work))/small --project healer2").status, 0)
        XCTAssertEqual(fsx.cli("verify --read-data --store \(q(fsx.store))").status, 0)
        run("diff -r --no-dereference \(q(work))/small \(q(raw))")
    }

    func testImportUnmountedThenMountShowsIt() throws {
        makeSampleTree("\(work!)/src")
        fsx.unmount()
        let r = importCmd("\(q(work))/src --project demo --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let runName = try XCTUnwrap(json(r)["run"] as? String)
        XCTAssertEqual(json(r)["files_new"] as? Int, 4)
        try fsx.mount()
        XCTAssertEqual(fsx.runs("demo"), [runName])
        run("diff -r \(q(work))/src \(q(fsx.project("demo")))/runs/\(runName)/raw_source")
        XCTAssertEqual(fsx.runJSON("demo", runName)["status"] as? String, "completed")
        XCTAssertEqual(fsx.runJSON("demo", runName)["action"] as? String, "import")
        // The source stays the user's: never linked into the store.
        XCTAssertEqual(run("stat -c %h \(q(work))/src/data.csv").stdout.trimmingCharacters(in: .whitespacesAndNewlines), "1")
    }

    func testImportWhileMountedShowsAtOnce() throws {
        let p = fsx.project("live")
        run("mkdir \(q(p)) && echo old > \(q(p))/incoming/a.txt")
        _ = try fsx.waitForRuns("live", count: 1)
        XCTAssertEqual(run("cat \(q(p))/latest/a.txt").stdout, "old\n")  // the kernel now knows latest/a.txt
        run("mkdir -p \(q(work))/src/d && echo new > \(q(work))/src/a.txt && head -c 100000 /dev/urandom > \(q(work))/src/d/b.bin")
        let r = importCmd("\(q(work))/src --project live --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let runName = try XCTUnwrap(json(r)["run"] as? String)
        XCTAssertTrue(fsx.runs("live").contains(runName), "ls runs/ right after import lists it")
        XCTAssertEqual(run("cat \(q(p))/latest/a.txt").stdout, "new\n", "latest/ shows the imported version at once")
        let sum = { (path: String) in self.run("sha256sum < \(q(path))").stdout }
        XCTAssertEqual(sum("\(p)/latest/d/b.bin"), sum("\(work!)/src/d/b.bin"))
        XCTAssertEqual(sum("\(p)/runs/\(runName)/raw_source/d/b.bin"), sum("\(work!)/src/d/b.bin"))
    }

    func testDatasetImportMakesAVersionAtMainAndUnderVersions() throws {
        let d = "\(fsx.mnt)/datasets/sales"
        run("mkdir \(q(d)) && printf 'x,y\\n1,2\\n' > \(q(d))/@main/old.csv")
        run("\(q(artifactfsBinary)) commit \(q(d))/@main -m first")
        XCTAssertEqual(run("ls \(q(d))/@main").stdout, "old.csv\n")  // kept listing of the old head
        makeSampleTree("\(work!)/src")
        let r = importCmd("\(q(work))/src --dataset sales -m imported --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let version = try XCTUnwrap(json(r)["version"] as? String)
        XCTAssertEqual(json(r)["files_deleted"] as? Int, 1)
        run("diff -r \(q(work))/src \(q(d))/versions/\(version)")
        run("diff -r \(q(work))/src \(q(d))/@main")
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.head \(q(d))/@main").stdout, version)
        XCTAssertTrue(run("\(q(artifactfsBinary)) log sales --store \(q(fsx.store))").stdout.contains("imported"))
    }

    /// kill -9 after batch 2, again after batch 2 of the rerun, then once the version is
    /// registered, then a clean rerun: one run with every file, and journaled files never read again.
    func testKillAtSeveralPointsThenRerunEqualsOneCleanImport() throws {
        run("mkdir -p \(q(work))/src/a \(q(work))/src/b && cd \(q(work))/src && for i in $(seq 1 30); do echo \"file $i\" > a/$i.txt; head -c $((i * 1000)) /dev/urandom > b/$i.bin; done")
        fsx.unmount()
        let args = "\(q(work))/src --project k --batch-size 10 --json"
        let first = importCmd(args, env: "ARTIFACTFS_IMPORT_KILL_AFTER=batch:2")
        XCTAssertEqual(first.status, 128 + 9, "killed: \(first.stderr)")
        let second = importCmd(args, env: "ARTIFACTFS_IMPORT_KILL_AFTER=batch:2")
        XCTAssertEqual(second.status, 128 + 9, "killed: \(second.stderr)")
        let third = importCmd(args, env: "ARTIFACTFS_IMPORT_KILL_AFTER=registered")
        XCTAssertEqual(third.status, 128 + 9, "killed: \(third.stderr)")
        let last = importCmd(args)
        XCTAssertEqual(last.status, 0, last.stderr)
        let s = json(last)
        XCTAssertEqual(s["files_new"] as? Int, 60)
        XCTAssertEqual(s["files_reused"] as? Int, 40, "the third attempt read only what the first two had not stored")
        XCTAssertEqual(run("ls \(q(fsx.store))/tmp/import | wc -l").stdout.trimmingCharacters(in: .whitespaces), "0\n")
        try fsx.mount()
        let runs = fsx.runs("k")
        XCTAssertEqual(runs, [s["run"] as? String ?? "?"], "one run, whatever the kills")
        run("diff -r \(q(work))/src \(q(fsx.project("k")))/runs/\(runs[0])/raw_source")
        XCTAssertEqual(fsx.runJSON("k", runs[0])["status"] as? String, "completed")
        let verify = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
    }

    func testUnreadableFileIsReportedTheRestImportedExitSix() throws {
        run("mkdir -p \(q(work))/src && echo fine > \(q(work))/src/ok.txt && echo secret > \(q(work))/src/locked.txt && chmod 000 \(q(work))/src/locked.txt")
        // Root reads any mode: the hidden hook refuses the open as the kernel would for a user.
        let env = getuid() == 0 ? "ARTIFACTFS_IMPORT_UNREADABLE=locked.txt" : ""
        let r = importCmd("\(q(work))/src --project u", env: env)
        XCTAssertEqual(r.status, 6, r.stderr)
        XCTAssertTrue(r.stderr.contains("artifactfs: \(work!)/src/locked.txt: cannot open: Permission denied"), r.stderr)
        let runName = try XCTUnwrap(fsx.runs("u").first)
        XCTAssertEqual(run("cat \(q(fsx.project("u")))/runs/\(runName)/raw_source/ok.txt").stdout, "fine\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(fsx.project("u"))/runs/\(runName)/raw_source/locked.txt"))
        XCTAssertEqual(fsx.runJSON("u", runName)["status"] as? String, "completed_with_errors")
    }

    /// 100,000 small files in bounded memory: the import's peak RSS (VmHWM, which
    /// `/usr/bin/time` reports as its maximum resident set) stays under 96 MiB.
    func testHundredThousandSmallFilesInBoundedMemory() throws {
        run("""
            python3 -c "
            import os
            for d in range(100):
                os.makedirs('\(work!)/many/%03d' % d)
                for f in range(1000):
                    open('\(work!)/many/%03d/%04d.txt' % (d, f), 'w').write('file %d %d\\n' % (d, f))
            "
            """)
        fsx.unmount()
        let r = sh("/usr/bin/time -f 'maxrss_kib=%M' \(q(artifactfsBinary)) import --store \(q(fsx.store)) \(q(work))/many --project many --json")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(json(r)["files_new"] as? Int, 100_000)
        let rss = try XCTUnwrap(r.stderr.components(separatedBy: "maxrss_kib=").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        XCTAssertLessThan(rss, 96 * 1024, "peak RSS \(rss) KiB")
        try fsx.mount()
        let runName = try XCTUnwrap(fsx.runs("many").first)
        XCTAssertEqual(run("cat \(q(fsx.project("many")))/runs/\(runName)/raw_source/042/0420.txt").stdout, "file 42 420\n")
    }
}
