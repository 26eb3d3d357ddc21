import Foundation
import XCTest

/// Copying into incoming/ with real tools, sealing, and what the read-only tree then shows.
final class IngestTests: MountTestCase {
    func testPlainCpSealsIntoOneRunAndEmptiesIncoming() throws {
        makeSampleTree("\(work!)/src")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("cp -r \(q(work))/src/. \(q(fsx.project("demo")))/incoming/")
        let runs = try fsx.waitForRuns("demo", count: 1)
        XCTAssertEqual(runs.count, 1)
        XCTAssertTrue(runs[0].range(of: #"^\d{8}T\d{6}Z-\d{3}$"#, options: .regularExpression) != nil, runs[0])
        run("diff -r \(q(work))/src \(q(fsx.project("demo")))/runs/\(runs[0])/raw_source")
        XCTAssertEqual(run("ls -A \(q(fsx.project("demo")))/incoming").stdout, "")
    }

    func testCpArchivePreservesModeAndMtime() throws {
        makeSampleTree("\(work!)/src")
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(fsx.project("demo")))/incoming/")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        let raw = "\(fsx.project("demo"))/runs/\(r)/raw_source"
        run("diff -r \(q(work))/src \(q(raw))")
        for f in ["data.csv", "sub/blob.bin", "sub/deeper/notes.txt", "name with space.txt"] {
            let src = run("stat -c '%a %Y %s' \(q(work))/src/\(q(f))").stdout
            let dst = run("stat -c '%a %Y %s' \(q(raw))/\(q(f))").stdout
            XCTAssertEqual(src, dst, f)
        }
    }

    func testRsyncArchiveTempFileThenRename() throws {
        makeSampleTree("\(work!)/src")
        run("mkdir \(q(fsx.mnt))/projects/demo && rsync -a \(q(work))/src/ \(q(fsx.project("demo")))/incoming/")
        let r = try fsx.waitForRuns("demo", count: 1)
        XCTAssertEqual(r.count, 1)
        let raw = "\(fsx.project("demo"))/runs/\(r[0])/raw_source"
        run("diff -r \(q(work))/src \(q(raw))")
        XCTAssertEqual(run("stat -c '%a %Y' \(q(work))/src/data.csv").stdout, run("stat -c '%a %Y' \(q(raw))/data.csv").stdout)
        // rsync's hidden temp names never become part of a run.
        XCTAssertEqual(run("find \(q(raw)) -name '.*' | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    func testTarExtractIntoIncoming() throws {
        makeSampleTree("\(work!)/src")
        run("tar -C \(q(work))/src -cf \(q(work))/src.tar .")
        run("mkdir \(q(fsx.mnt))/projects/demo && tar -C \(q(fsx.project("demo")))/incoming -xpf \(q(work))/src.tar")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        let raw = "\(fsx.project("demo"))/runs/\(r)/raw_source"
        run("diff -r \(q(work))/src \(q(raw))")
        XCTAssertEqual(run("stat -c '%a %Y' \(q(work))/src/sub/blob.bin").stdout, run("stat -c '%a %Y' \(q(raw))/sub/blob.bin").stdout)
    }

    func testDuplicateUploadStoresNothingNew() throws {
        makeSampleTree("\(work!)/src")
        let inc = "\(fsx.project("demo"))/incoming"
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(inc))/")
        _ = try fsx.waitForRuns("demo", count: 1)
        let blobsBefore = fsx.blobCount
        let bytesBefore = run("du -sb \(q(fsx.store))/objects | cut -f1").stdout
        run("cp -a \(q(work))/src/. \(q(inc))/")
        let runs = try fsx.waitForRuns("demo", count: 2)
        XCTAssertEqual(runs.count, 2)
        XCTAssertLessThan(runs[0], runs[1], "run ids sort chronologically")
        let files = fsx.runJSON("demo", runs[1])["files"] as? [String: Any]
        XCTAssertEqual(files?["duplicate"] as? Int, 4)
        XCTAssertEqual(files?["new"] as? Int, 0)
        XCTAssertEqual(fsx.blobCount, blobsBefore)
        XCTAssertEqual(run("du -sb \(q(fsx.store))/objects | cut -f1").stdout, bytesBefore)
        let status = run("getfattr --only-values -n user.artifactfs.status \(q(fsx.project("demo")))/runs/\(runs[1])/raw_source/data.csv").stdout
        XCTAssertEqual(status, "duplicate")
    }

    func testChangedFileSupersedesAndShowsInLatestAndHistory() throws {
        makeSampleTree("\(work!)/src")
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(p))/incoming/")
        let first = try fsx.waitForRuns("demo", count: 1)[0]
        run("echo '3,gamma' >> \(q(work))/src/data.csv && cp \(q(work))/src/data.csv \(q(p))/incoming/")
        let runs = try fsx.waitForRuns("demo", count: 2)
        let second = runs[1]
        run("cmp \(q(work))/src/data.csv \(q(p))/latest/data.csv")
        run("cmp \(q(work))/src/sub/blob.bin \(q(p))/latest/sub/blob.bin")
        XCTAssertEqual(run("ls \(q(p))/history/data.csv").stdout, "\(first)\n\(second)\n")
        XCTAssertEqual(run("ls \(q(p))/history/sub").stdout, "blob.bin\ndeeper\n")
        XCTAssertEqual(run("cat \(q(p))/history/data.csv/\(first)").stdout, "id,name\n1,alpha\n2,beta\n")
        let old = "\(p)/runs/\(first)/raw_source/data.csv"
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.superseded \(q(old))").stdout, "true")
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.superseded_by \(q(old))").stdout, second)
        XCTAssertEqual(run("getfattr --only-values -n user.artifactfs.status \(q(old))").stdout, "superseded")
        let files = fsx.runJSON("demo", second)["files"] as? [String: Any]
        XCTAssertEqual(files?["superseded"] as? Int, 1)
    }

    func testSealNowGivesOrderedDistinctIdsInTheSameSecond() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        var ids: [String] = []
        for i in 0..<3 {
            run("echo \(i) > \(q(p))/incoming/f\(i).txt")
            let r = run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
            ids.append(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        XCTAssertEqual(Set(ids).count, 3, "\(ids)")
        XCTAssertEqual(ids, ids.sorted())
        XCTAssertEqual(fsx.runs("demo"), ids, "plain ls lists runs in the order they were sealed")
    }

    func testMetadataInRunJSONStatusAndXattrs() throws {
        makeSampleTree("\(work!)/src")
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(p))/incoming/")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        let json = fsx.runJSON("demo", r)
        for key in ["id", "project", "action", "status", "created_at", "completed_at", "files", "bytes", "stages", "errors"] {
            XCTAssertNotNil(json[key], "missing \(key) in .run.json")
        }
        XCTAssertEqual(json["id"] as? String, r)
        XCTAssertEqual(json["project"] as? String, "demo")
        XCTAssertEqual(json["status"] as? String, "completed")
        let status = run("\(q(artifactfsBinary)) status --store \(q(fsx.store)) demo \(r) --json").stdout
        let parsed = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        XCTAssertEqual(parsed?["id"] as? String, r)
        XCTAssertEqual((parsed?["files"] as? [String: Any])?["new"] as? Int, 4)
        let all = run("\(q(artifactfsBinary)) status --store \(q(fsx.store)) demo --json").stdout
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(all.utf8)) as? [Any])?.count, 1)
        XCTAssertEqual(run("\(q(artifactfsBinary)) status --store \(q(fsx.store))").stdout, "projects/demo\t1 run\t\(r)\n")
        let projects = run("\(q(artifactfsBinary)) status --store \(q(fsx.store)) --json").stdout
        XCTAssertTrue(projects.contains("\"latest_run\" : \"\(r)\""), projects)
        XCTAssertEqual(sh("\(q(artifactfsBinary)) status --store \(q(fsx.store)) nosuch").status, 4)
        XCTAssertEqual(sh("\(q(artifactfsBinary)) status --store \(q(fsx.store)) demo 20000101T000000Z-001").status, 4)
        XCTAssertEqual(sh("\(q(artifactfsBinary)) status --store \(q(work))/no-store").status, 4)
        XCTAssertEqual(sh("\(q(artifactfsBinary)) unmount \(q(work))").status, 4)

        let dump = run("getfattr -d -m - \(q(p))/runs/\(r)/raw_source/data.csv").stdout
        let sha = run("sha256sum \(q(work))/src/data.csv | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(dump.contains("user.artifactfs.sha256=\"\(sha)\""), dump)
        XCTAssertTrue(dump.contains("user.artifactfs.run=\"\(r)\""), dump)
        XCTAssertTrue(dump.contains("user.artifactfs.superseded=\"false\""), dump)
    }

    func testIncomingBehavesLikeAPosixFolderBeforeSeal() throws {
        // A long quiet period so that nothing seals while the test edits incoming/.
        try freshMount(quietPeriod: 600)
        let p = fsx.project("demo")
        let inc = "\(p)/incoming"
        run("mkdir \(q(fsx.mnt))/projects/demo")
        run("printf 'aaaaaaaaaa' > \(q(inc))/w.txt && printf 'XY' | dd of=\(q(inc))/w.txt bs=1 seek=4 conv=notrunc status=none")
        XCTAssertEqual(run("cat \(q(inc))/w.txt").stdout, "aaaaXYaaaa")
        run("truncate -s 6 \(q(inc))/w.txt")
        run("mkdir -p \(q(inc))/d/e && echo gone > \(q(inc))/d/e/x && rm \(q(inc))/d/e/x && rmdir \(q(inc))/d/e")
        run("echo moved > \(q(inc))/d/tmp && mv \(q(inc))/d/tmp \(q(inc))/d/final")
        run("chmod 600 \(q(inc))/w.txt && touch -d '2022-02-02 02:02:02' \(q(inc))/w.txt")
        run("python3 -c 'import os; fd=os.open(\"\(inc)/w.txt\", os.O_RDWR); os.fsync(fd); os.close(fd)'")
        XCTAssertEqual(fsx.runs("demo"), [])
        let r = run("\(q(artifactfsBinary)) seal \(q(inc))").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let raw = "\(p)/runs/\(r)/raw_source"
        XCTAssertEqual(run("cat \(q(raw))/w.txt").stdout, "aaaaXY")
        XCTAssertEqual(run("stat -c '%a %Y' \(q(raw))/w.txt").stdout, "600 " + run("date -d '2022-02-02 02:02:02' +%s").stdout)
        XCTAssertEqual(run("cat \(q(raw))/d/final").stdout, "moved\n")
        XCTAssertEqual(run("cd \(q(raw)) && find . | sort").stdout, ".\n./d\n./d/final\n./w.txt\n")
    }

    func testSealReportsNothingToSealAndRefusesOutsideAMount() throws {
        run("mkdir \(q(fsx.mnt))/projects/demo")
        let empty = sh("\(q(artifactfsBinary)) seal \(q(fsx.project("demo")))/incoming")
        XCTAssertEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("nothing to seal"), empty.stderr)
        let outside = sh("\(q(artifactfsBinary)) seal \(q(work))")
        XCTAssertEqual(outside.status, 4)
        XCTAssertTrue(outside.stderr.contains("not an incoming/ folder"), outside.stderr)
        let runs = sh("\(q(artifactfsBinary)) seal \(q(fsx.project("demo")))/runs")
        XCTAssertNotEqual(runs.status, 0)
    }

    func testFourConcurrentWritersLoseNothingAndRegisterNothingTwice() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo")
        for w in 0..<4 {
            run("mkdir -p \(q(work))/w\(w) && for i in $(seq 1 150); do echo \"writer \(w) file $i\" > \(q(work))/w\(w)/f$i.txt; done")
        }
        run("head -c 2000000 /dev/urandom > \(q(work))/w0/big.bin")
        // Four processes at once, into overlapping and distinct folders.
        run("""
            for w in 0 1 2 3; do cp -r \(q(work))/w$w \(q(p))/incoming/ & done; wait
            """)
        var total = 0
        var seen = Set<String>()
        for _ in 0..<600 {
            let pending = run("find \(q(p))/incoming -type f | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if pending == "0" && !fsx.runs("demo").isEmpty { break }
            usleep(100_000)
        }
        for r in fsx.runs("demo") {
            let list = run("cd \(q(p))/runs/\(r)/raw_source && find . -type f | sort").stdout.split(separator: "\n").map(String.init)
            total += list.count
            seen.formUnion(list)
        }
        XCTAssertEqual(total, 601, "every file registered exactly once")
        XCTAssertEqual(seen.count, 601)
        for w in 0..<4 { run("diff -r \(q(work))/w\(w) \(q(p))/latest/w\(w)") }
    }

    /// The daemon holds a descriptor per staged file the kernel knows; a seal must let go of
    /// them, or a few large copies exhaust the limit and files fail (or worse, seal empty).
    func testSealReleasesDescriptorsOfStagedFiles() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && mkdir \(q(work))/many && cd \(q(work))/many && for i in $(seq 1 1500); do echo \"file $i\" > f$i.txt; done")
        let pid = try XCTUnwrap(fsx.daemonPID)
        func openDescriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let baseline = openDescriptors()
        for round in 1...3 {
            run("cp -r \(q(work))/many \(q(p))/incoming/round\(round)")
            run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
            XCTAssertLessThan(openDescriptors(), baseline + 100, "round \(round): staged descriptors were kept after the seal")
        }
        XCTAssertEqual(run("find \(q(p))/latest -type f -size 0 | wc -l").stdout, "0\n")
        XCTAssertEqual(run("find \(q(p))/latest -type f | wc -l").stdout, "4500\n")
        // ls -l asks for security.* and ACL attributes: only user.* exist here, so the others
        // are not supported (as for setxattr), which ls remembers for the whole filesystem.
        let r = sh("getfattr -n security.selinux \(q(p))/latest/round1/f1.txt")
        XCTAssertTrue(r.stderr.contains("Operation not supported"), r.stderr)
        let acl = sh("getfattr -n system.posix_acl_access \(q(p))/incoming")
        XCTAssertTrue(acl.stderr.contains("Operation not supported"), acl.stderr)
    }

    /// A file written in order is hashed while it is written (behind the writer, read back
    /// from the page cache), so the seal does not read it again. Bounded by the bytes the
    /// daemon reads during the seal, as the kernel counts them (rchar in /proc/PID/io), once
    /// the hashing behind the writer is over. cp opens its target write-only, which the
    /// read-back must cope with.
    func testSealDoesNotReadAgainAFileHashedWhileWritten() throws {
        let p = fsx.project("demo"), size = 32 << 20
        run("mkdir \(q(fsx.mnt))/projects/demo && head -c \(size) /dev/urandom > \(q(work))/big.bin")
        let pid = try XCTUnwrap(fsx.daemonPID)
        func bytesRead() throws -> Int {
            let io = try String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8)
            let line = try XCTUnwrap(io.split(separator: "\n").first { $0.hasPrefix("rchar:") })
            return try XCTUnwrap(Int(line.dropFirst("rchar:".count).trimmingCharacters(in: .whitespaces)))
        }
        run("cp \(q(work))/big.bin \(q(p))/incoming/big.bin")
        // The hashing thread may still be reading the file back: wait until the count rests.
        var before = try bytesRead()
        for _ in 0..<100 {
            usleep(100_000)
            let now = try bytesRead()
            if now == before { break }
            before = now
        }
        run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        let read = try bytesRead() - before
        XCTAssertLessThan(read, size / 4, "the daemon read \(read) bytes during the seal of a \(size)-byte file: it hashed the file again")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        run("cmp \(q(work))/big.bin \(q(p))/runs/\(r)/raw_source/big.bin")
        let v = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
    }

    /// The daemon keeps an inode for every staged file the kernel knows; after a seal it tells
    /// the kernel to drop their entries, so the kernel forgets them and the daemon's memory
    /// does not keep growing with what was ever copied in. Bounded by the count of inodes the
    /// daemon holds (user.artifactfs.inodes on the root).
    func testSealLetsGoOfTheInodesOfSealedFiles() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cd \(q(work)) && for d in $(seq 1 20); do mkdir -p many/d$d; for i in $(seq 1 100); do echo \"$d $i\" > many/d$d/f$i; done; done")
        func inodes() -> Int {
            Int(sh("getfattr --only-values -n user.artifactfs.inodes \(q(fsx.mnt))").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        run("cp -r \(q(work))/many/. \(q(p))/incoming/")
        XCTAssertGreaterThanOrEqual(inodes(), 2_000, "the kernel knows every file copied in")
        run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        // The entries are dropped after the seal has answered, on another thread.
        var held = inodes()
        for _ in 0..<100 where held >= 200 {
            usleep(100_000)
            held = inodes()
        }
        XCTAssertLessThan(held, 200, "the daemon still holds \(held) inodes after sealing 2,000 files")
        run("cp -r \(q(work))/many/. \(q(p))/incoming/")
        XCTAssertEqual(run("find \(q(p))/incoming -type f | wc -l").stdout, "2000\n", "the same names can be copied in again")
    }

    /// The requests the kernel has sent the daemon so far, by opcode (user.artifactfs.requests).
    private func requests() -> [String: Int] {
        let words = sh("getfattr --only-values -n user.artifactfs.requests \(q(fsx.mnt))").stdout.split(separator: " ")
        return Dictionary(uniqueKeysWithValues: words.compactMap { w -> (String, Int)? in
            let kv = w.split(separator: "=")
            guard kv.count == 2, let n = Int(kv[1].trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
            return (String(kv[0]), n)
        })
    }

    private func delta(_ after: [String: Int], _ before: [String: Int]) -> [String: Int] {
        after.compactMapValues { $0 }.reduce(into: [:]) { out, kv in
            let d = kv.value - (before[kv.key] ?? 0)
            if d != 0 { out[kv.key] = d }
        }
    }

    /// Round trips per small file copied into incoming/ (SPEC §8 (c)): `cp` costs two LOOKUPs
    /// (its stat of the target, then the kernel's fresh look before an O_EXCL create), the
    /// CREATE, one `security.capability` GETXATTR (the kernel's first write to a new inode),
    /// the WRITE and the RELEASE: 6, and nothing per file besides (no FLUSH, no GETATTR, no
    /// second GETXATTR). Counted by the daemon's session reader.
    func testCopyingSmallFilesInCostsSixRequestsEach() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && mkdir -p \(q(work))/small && cd \(q(work))/small && for i in $(seq 1 300); do echo \"file $i\" > f$i.txt; done")
        let before = requests()
        XCTAssertGreaterThan(before["LOOKUP"] ?? 0, 0, "the counters count: \(before)")
        run("cp -r \(q(work))/small \(q(p))/incoming/")
        let d = delta(requests(), before)
        let total = d.values.reduce(0, +)  // with the folder's MKDIR and the getfattr that reads the counts
        XCTAssertLessThanOrEqual(Double(total) / 300, 6.1, "requests per file: \(d)")
        XCTAssertLessThanOrEqual(d["LOOKUP"] ?? 0, 2 * 300 + 5, "\(d)")
        XCTAssertEqual(d["CREATE"], 300, "\(d)")
        XCTAssertEqual(d["WRITE"], 300, "\(d)")
        XCTAssertLessThanOrEqual(d["GETXATTR"] ?? 0, 300 + 5, "\(d)")
        XCTAssertLessThanOrEqual(d["FLUSH"] ?? 0, 1, "FLUSH is refused once and never sent again: \(d)")
        XCTAssertEqual(run("ls \(q(p))/incoming/small | wc -l").stdout, "300\n")
    }

    /// A name incoming/ does not hold is remembered as absent for a second (a negative entry):
    /// tools that probe for files (git, Python's imports) ask once. Only the kernel adds names
    /// here, and creating one replaces the negative entry at once.
    func testAbsentNamesInIncomingAreLookedUpOnce() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && stat \(q(p))/incoming")
        let before = requests()
        XCTAssertFalse(sh("stat \(q(p))/incoming/nope.txt && stat \(q(p))/incoming/nope.txt && stat \(q(p))/incoming/nope.txt").ok)
        let d = delta(requests(), before)
        XCTAssertEqual(d["LOOKUP"], 1, "three stats of an absent name: \(d)")
        run("echo now > \(q(p))/incoming/nope.txt")
        XCTAssertEqual(run("cat \(q(p))/incoming/nope.txt").stdout, "now\n", "a negative entry never hides a file made through the mount")
        run("mkdir \(q(p))/incoming/dir && touch \(q(p))/incoming/dir/x && mv \(q(p))/incoming/dir/x \(q(p))/incoming/moved")
        XCTAssertFalse(sh("stat \(q(p))/incoming/dir/x").ok)
        XCTAssertTrue(sh("stat \(q(p))/incoming/moved").ok)
    }

    /// A run's files and their versions in latest/ get inode numbers derived from their catalog
    /// rows, so the daemon keeps nothing for them however many the kernel holds: a `find`
    /// over 2,000 sealed files (with their history/<path>/ folders) leaves about one inode per
    /// folder in its table. The numbers
    /// are stable: the same file shows one inode in runs/ and latest/, before and after.
    func testFilesOfRunsHoldNoInodesInTheDaemon() throws {
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cd \(q(work)) && for d in $(seq 1 20); do mkdir -p many/d$d; for i in $(seq 1 100); do echo \"$d $i\" > many/d$d/f$i; done; done")
        run("cp -r \(q(work))/many/. \(q(p))/incoming/ && \(q(artifactfsBinary)) seal \(q(p))/incoming")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        let before = run("stat -c %i \(q(p))/runs/\(r)/raw_source/d7/f42 \(q(p))/latest/d7/f42").stdout
        run("find \(q(p))/runs \(q(p))/latest \(q(p))/history | wc -l")
        run("ls -lR \(q(p))/runs/\(r) \(q(p))/latest \(q(p))/history > /dev/null")
        let held = Int(sh("getfattr --only-values -n user.artifactfs.inodes \(q(fsx.mnt))").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertLessThan(held, 200, "the daemon holds \(held) inodes after listing 2,000 files in runs/, latest/ and history/")
        XCTAssertEqual(run("ls \(q(p))/history/d7/f42").stdout, "\(r)\n", "history/<path>/ lists the file's versions")
        run("cmp \(q(work))/many/d7/f42 \(q(p))/history/d7/f42/\(r)")
        let inos = before.split(separator: "\n")
        XCTAssertEqual(inos.count, 2)
        XCTAssertEqual(inos.first, inos.last, "one file, one inode, in runs/ and latest/")
        XCTAssertEqual(run("stat -c %i \(q(p))/runs/\(r)/raw_source/d7/f42 \(q(p))/latest/d7/f42").stdout, before)
        run("diff -r \(q(work))/many \(q(p))/latest")
    }

    func testRemountKeepsEverythingAndVerifyPasses() throws {
        makeSampleTree("\(work!)/src")
        let p = fsx.project("demo")
        run("mkdir \(q(fsx.mnt))/projects/demo && cp -a \(q(work))/src/. \(q(p))/incoming/")
        let r = try fsx.waitForRuns("demo", count: 1)[0]
        fsx.unmount()
        XCTAssertEqual(run("ls -A \(q(fsx.mnt))").stdout, "")
        try fsx.mount()
        run("diff -r \(q(work))/src \(q(p))/runs/\(r)/raw_source")
        let v = fsx.cli("verify --store \(q(fsx.store))")
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
        let json = fsx.cli("verify --store \(q(fsx.store)) --json")
        XCTAssertTrue(json.stdout.contains("\"ok\" : true"), json.stdout)
    }
}
