import Foundation
import XCTest

/// Datasets through a real mount: the scenario of the datasets issue, driven with cp, rm, mv,
/// rsync and python3, plus isolation, read-only paths, bad names and kill -9 during a commit.
final class DatasetMountTests: MountTestCase {
    var sales: String { "\(fsx.mnt)/datasets/sales" }

    func versions() -> [String] {
        sh("ls \(q(sales))/versions").stdout.split(separator: "\n").map(String.init)
    }

    func writeQuarterFiles() {
        run("printf 'region,amount\\neu,10\\nus,20\\n' > \(q(work))/q1.csv")
        run("printf 'id,comment\\n1,\"hello, world\"\\n2,\"two\\nlines\"\\n' > \(q(work))/q2.csv")
    }

    /// Waits (liveness only, no time bound asserted) for `count` versions.
    func waitForVersions(_ count: Int) throws -> [String] {
        for _ in 0..<600 {
            let v = versions()
            if v.count >= count { return v }
            usleep(100_000)
        }
        throw NSError(domain: "wait", code: 1, userInfo: [NSLocalizedDescriptionKey: "never reached \(count) versions: \(versions()); \(fsx.daemonLog.suffix(1500))"])
    }

    func testTheDatasetScenario() throws {
        writeQuarterFiles()
        // 1. mkdir makes a dataset whose main is empty.
        run("mkdir \(q(sales))")
        XCTAssertEqual(run("ls -A \(q(sales))").stdout, ".log\n@main\ntags\nversions\n")
        XCTAssertEqual(run("ls -A \(q(sales))/@main").stdout, "")
        // 2. cp, then commit with a message.
        run("cp \(q(work))/q1.csv \(q(work))/q2.csv \(q(sales))/@main/")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m 'first quarter'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(versions(), [v1])
        XCTAssertEqual(run("ls \(q(sales))/@main").stdout, "q1.csv\nq2.csv\n")
        run("cmp \(q(work))/q1.csv \(q(sales))/versions/\(v1)/q1.csv && cmp \(q(work))/q2.csv \(q(sales))/@main/q2.csv")
        let touch = sh("touch \(q(sales))/versions/\(v1)/new.csv")
        XCTAssertTrue(touch.stderr.contains("Read-only file system"), touch.stderr)
        XCTAssertEqual(run("stat -c %A \(q(sales))/versions/\(v1)/q1.csv").stdout, "-r--r--r--\n")

        // 3. Fork dev; append, rm and mv there commit as one version on dev.
        run("mkdir \(q(sales))/@dev")
        XCTAssertEqual(run("ls \(q(sales))/@dev").stdout, "q1.csv\nq2.csv\n")
        run("echo 'asia,30' >> \(q(sales))/@dev/q1.csv && rm \(q(sales))/@dev/q2.csv && mv \(q(sales))/@dev/q1.csv \(q(sales))/@dev/all.csv")
        let v2 = run("\(q(artifactfsBinary)) seal \(q(sales))/@dev").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(versions(), [v1, v2])
        XCTAssertEqual(run("ls \(q(sales))/@dev").stdout, "all.csv\n")
        XCTAssertEqual(run("tail -1 \(q(sales))/@dev/all.csv").stdout, "asia,30\n")
        // main is untouched.
        XCTAssertEqual(run("ls \(q(sales))/@main").stdout, "q1.csv\nq2.csv\n")
        run("cmp \(q(work))/q1.csv \(q(sales))/@main/q1.csv")

        // 4. Tags never move.
        run("\(q(artifactfsBinary)) tag --store \(q(fsx.store)) sales v1 --version \(v1)")
        XCTAssertEqual(run("ls \(q(sales))/tags/v1").stdout, "q1.csv\nq2.csv\n")
        let again = fsx.cli("tag --store \(q(fsx.store)) sales v1 --version \(v2)")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("tag already exists"), again.stderr)
        XCTAssertEqual(run("ls \(q(sales))/tags/v1").stdout, "q1.csv\nq2.csv\n")

        // 5. log: graph, JSON, and the same text in .log.
        let graph = run("\(q(artifactfsBinary)) log --store \(q(fsx.store)) sales --graph").stdout
        XCTAssertTrue(graph.contains("* version \(v2) (@dev)"), graph)
        XCTAssertTrue(graph.contains("version \(v1) (@main, tag: v1)"), graph)
        XCTAssertTrue(graph.contains("first quarter") && graph.contains("Author: root"), graph)
        XCTAssertEqual(run("cat \(q(sales))/.log").stdout, graph)
        let json = run("\(q(artifactfsBinary)) log --store \(q(fsx.store)) sales --json").stdout
        let log = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual(log.map { $0["id"] as? String }, [v2, v1])
        XCTAssertEqual(log[0]["parents"] as? [String], [v1])
        XCTAssertEqual(log[1]["message"] as? String, "first quarter")
        XCTAssertEqual(log[1]["author_uid"] as? Int, 0)
        let schemas = try XCTUnwrap(log[1]["schemas"] as? [String: [String: Any]])
        XCTAssertEqual(schemas["q2.csv"]?["rows"] as? Int, 2)

        // 6. diff, text and JSON.
        let diff = run("\(q(artifactfsBinary)) diff --store \(q(fsx.store)) sales v1 dev").stdout
        XCTAssertEqual(diff.split(separator: "\n").filter { !$0.hasPrefix(" ") }, ["A all.csv", "D q1.csv", "D q2.csv"])
        let dj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run("\(q(artifactfsBinary)) diff --store \(q(fsx.store)) sales \(v1) \(v2) --json").stdout.utf8)) as? [String: Any])
        XCTAssertEqual((dj["added"] as? [[String: Any]])?.map { $0["path"] as? String }, ["all.csv"])
        XCTAssertEqual((dj["removed"] as? [[String: Any]])?.count, 2)

        // 8. Plain tools read plain files: Python's csv and sqlite3.
        let rows = run("python3 -c 'import csv,sys; print(list(csv.reader(open(sys.argv[1]))))' \(q(sales))/tags/v1/q2.csv").stdout
        XCTAssertEqual(rows, "[['id', 'comment'], ['1', 'hello, world'], ['2', 'two\\nlines']]\n")
        run("python3 -c \"import sqlite3; c=sqlite3.connect('\(work!)/facts.db'); c.execute('create table t(x)'); c.executemany('insert into t values (?)', [(i,) for i in range(100)]); c.commit()\"")
        run("cp \(q(work))/facts.db \(q(sales))/@main/")
        let v3 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m 'add a database'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let sum = run("python3 -c \"import sqlite3; print(sqlite3.connect('\(fsx.mnt)/datasets/sales/versions/\(v3)/facts.db').execute('select sum(x) from t').fetchone()[0])\"").stdout
        XCTAssertEqual(sum, "4950\n")
        // .log was drawn above; a new version and a new tag each show in it at once.
        XCTAssertTrue(run("cat \(q(sales))/.log").stdout.contains("* version \(v3) (@main)"))
        run("\(q(artifactfsBinary)) tag --store \(q(fsx.store)) sales db --version \(v3)")
        XCTAssertTrue(run("cat \(q(sales))/.log").stdout.contains("version \(v3) (@main, tag: db)"))
        // Committed versions are page-cached and can be mapped (numpy.memmap, polars, pyarrow).
        let mapped = run("python3 -c 'import mmap,sys; f=open(sys.argv[1],\"rb\"); print(mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)[:13].decode())' \(q(sales))/versions/\(v1)/q1.csv").stdout
        XCTAssertEqual(mapped, "region,amount\n")
        let attrs = run("getfattr -d -m - \(q(sales))/versions/\(v1)/q1.csv").stdout
        XCTAssertTrue(attrs.contains("user.artifactfs.version=\"\(v1)\""), attrs)
        XCTAssertTrue(attrs.contains("user.artifactfs.schema="), attrs)
        XCTAssertTrue(attrs.contains("amount"), attrs)
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    func testQuietPeriodCommitsAnRsyncedTreeAndUnchangedTreesCommitNothing() throws {
        makeSampleTree("\(work!)/tree")
        run("mkdir \(q(sales)) && rsync -a \(q(work))/tree/ \(q(sales))/@main/")
        let v = try waitForVersions(1)
        run("diff -r \(q(work))/tree \(q(sales))/@main && diff -r \(q(work))/tree \(q(sales))/versions/\(v[0])")
        XCTAssertEqual(run("stat -c '%a %Y' \(q(sales))/versions/\(v[0])/data.csv").stdout, "440 \(run("stat -c %Y \(q(work))/tree/data.csv").stdout.trimmingCharacters(in: .whitespacesAndNewlines))\n")
        // rsync again: nothing changed, so nothing is committed.
        run("rsync -a \(q(work))/tree/ \(q(sales))/@main/")
        sleep(2)
        XCTAssertEqual(versions().count, 1)
        let nothing = fsx.cli("commit \(q(sales))/@main -m 'nothing'")
        XCTAssertEqual(nothing.status, 0)
        XCTAssertTrue(nothing.stderr.contains("nothing to commit"), nothing.stderr)
        // A change to one nested file makes one new version.
        run("echo more >> \(q(sales))/@main/sub/deeper/notes.txt")
        _ = try waitForVersions(2)
        run("diff -r \(q(work))/tree/sub/blob.bin \(q(sales))/@main/sub/blob.bin")
    }

    func testBranchIsolationReadOnlyPathsAndBadNames() throws {
        writeQuarterFiles()
        run("mkdir \(q(sales)) && cp \(q(work))/q1.csv \(q(sales))/@main/")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m one").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("mkdir \(q(sales))/@dev && cp \(q(work))/q2.csv \(q(sales))/@dev/ && \(q(artifactfsBinary)) commit \(q(sales))/@dev -m two")
        XCTAssertEqual(run("ls \(q(sales))/@main").stdout, "q1.csv\n")
        XCTAssertEqual(run("ls \(q(sales))/@dev").stdout, "q1.csv\nq2.csv\n")
        run("\(q(artifactfsBinary)) tag --store \(q(fsx.store)) sales v1")

        // EROFS everywhere outside the working trees.
        for path in ["versions/\(v1)", "tags/v1"] {
            let dir = "\(sales)/\(path)"
            for cmd in ["touch \(q(dir))/x", "rm \(q(dir))/q1.csv", "mv \(q(dir))/q1.csv \(q(dir))/y", "chmod 777 \(q(dir))/q1.csv",
                        "mkdir \(q(dir))/sub", "sh -c 'echo x >> \(dir)/q1.csv'"] {
                let r = sh(cmd)
                XCTAssertNotEqual(r.status, 0, cmd)
                XCTAssertTrue(r.stderr.contains("Read-only file system"), "\(cmd): \(r.stderr)")
            }
        }
        for cmd in ["sh -c 'echo x > \(sales)/.log'", "mkdir \(q(sales))/plain", "touch \(q(sales))/versions/x", "mkdir \(q(sales))/tags/t"] {
            let r = sh(cmd)
            XCTAssertTrue(r.stderr.contains("Read-only file system"), "\(cmd): \(r.stderr)")
        }
        // EINVAL for bad dataset and branch names; ENAMETOOLONG past 255 bytes.
        for name in ["datasets/.hidden", "datasets/@x", "datasets/sales/@", "datasets/sales/@.x", "datasets/sales/@@x", "datasets/sales/@a$(printf '\\t')b"] {
            // Double quotes: the tab must reach the filesystem, not split the word.
            let r = sh("mkdir \"\(fsx.mnt)/\(name)\"")
            XCTAssertNotEqual(r.status, 0, name)
            XCTAssertTrue(r.stderr.contains("Invalid argument"), "\(name): \(r.stderr)")
        }
        let long = sh("mkdir \(q(fsx.mnt))/datasets/\(String(repeating: "d", count: 256))")
        XCTAssertTrue(long.stderr.contains("File name too long"), long.stderr)
        let dup = sh("mkdir \(q(sales))/@dev")
        XCTAssertTrue(dup.stderr.contains("File exists"), dup.stderr)
        // The CLI says what is wrong with a name.
        let badBranch = fsx.cli("branch --store \(q(fsx.store)) sales .dot")
        XCTAssertNotEqual(badBranch.status, 0)
        XCTAssertTrue(badBranch.stderr.contains("must not start with"), badBranch.stderr)
        let badTag = fsx.cli("tag --store \(q(fsx.store)) sales 'a/b'")
        XCTAssertTrue(badTag.stderr.contains("must not contain '/'"), badTag.stderr)
        XCTAssertEqual(fsx.cli("log --store \(q(fsx.store)) nosuch").status, 4)
        XCTAssertEqual(fsx.cli("diff --store \(q(fsx.store)) sales v1 nosuch").status, 4)
        // A branch made by the CLI shows up in the mount at once.
        run("\(q(artifactfsBinary)) branch --store \(q(fsx.store)) sales fromtag --from v1")
        XCTAssertEqual(run("ls \(q(sales))/@fromtag").stdout, "q1.csv\n")
        // Renames between branches are refused (EXDEV), so mv copies instead.
        let exdev = sh("python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' \(q(sales))/@dev/q2.csv \(q(sales))/@main/q2.csv")
        XCTAssertTrue(exdev.stderr.contains("Invalid cross-device link"), exdev.stderr)
        // commit needs an @branch folder, and refuses while a writer is open.
        XCTAssertEqual(fsx.cli("commit \(q(sales))/versions -m x").status, 4)
        let busy = sh("exec 3>>\(q(sales))/@main/q1.csv; echo more >&3; \(q(artifactfsBinary)) commit \(q(sales))/@main -m busy; echo rc=$?")
        XCTAssertTrue(busy.stdout.contains("rc=5"), busy.stdout + busy.stderr)
        XCTAssertTrue(busy.stderr.contains("open for writing"), busy.stderr)
    }

    /// Without --store, commands find the store of the mount they are run in, and dataset
    /// commands take the dataset's folder as well as its name. --store still wins.
    func testCommandsFindTheStoreOfTheMountTheyRunIn() throws {
        writeQuarterFiles()
        run("mkdir \(q(sales)) && cp \(q(work))/q1.csv \(q(sales))/@main/")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m one").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // An empty default store elsewhere: found only if the mount is ignored.
        let env = ["HOME": "\(work!)/home", "XDG_DATA_HOME": "", "ARTIFACTFS_STORE": ""]
        let inBranch = sh("cd \(q(sales))/@main/ && \(q(artifactfsBinary)) log . --json", environment: env)
        XCTAssertEqual(inBranch.status, 0, inBranch.stderr)
        XCTAssertTrue(inBranch.stdout.contains(v1), inBranch.stdout)
        let byPath = sh("cd \(q(fsx.mnt)) && \(q(artifactfsBinary)) log datasets/sales", environment: env)
        XCTAssertTrue(byPath.stdout.contains("version \(v1)"), byPath.stdout + byPath.stderr)
        let byName = sh("cd \(q(fsx.mnt))/datasets && \(q(artifactfsBinary)) tag sales v1 && \(q(artifactfsBinary)) status", environment: env)
        XCTAssertEqual(byName.status, 0, byName.stderr)
        XCTAssertEqual(run("ls \(q(sales))/tags").stdout, "v1\n")
        // Outside a mount the default store is used, and its absence is a clear error.
        let outside = sh("cd \(q(work)) && \(q(artifactfsBinary)) log sales", environment: env)
        XCTAssertEqual(outside.status, 4)
        XCTAssertTrue(outside.stderr.contains("not an artifactfs store") && outside.stderr.contains("init --store"), outside.stderr)
        // --store wins over the mount the command runs in.
        let other = "\(work!)/other-store"
        run("\(q(artifactfsBinary)) verify --store \(q(fsx.store)) >/dev/null && mkdir -p \(q(other))")
        let explicit = sh("cd \(q(sales)) && \(q(artifactfsBinary)) log sales --store \(q(other))", environment: env)
        XCTAssertEqual(explicit.status, 4, explicit.stdout)
    }

    /// The kernel keeps inodes of names it has seen; after mv of a file or a folder they must
    /// stand for the same files at their new paths, even for a writer that stays open.
    func testRenamedFilesAndFoldersKeepTheirInodesAndOpenWriters() throws {
        run("mkdir \(q(sales)) && mkdir -p \(q(sales))/@main/d/e && echo one > \(q(sales))/@main/d/e/f.txt && echo top > \(q(sales))/@main/t.txt")
        let ino = run("stat -c %i \(q(sales))/@main/d/e/f.txt").stdout
        let script = """
            import os, subprocess, sys
            root = sys.argv[1]
            w = open(f"{root}/d/e/f.txt", "a")
            w.write("two\\n"); w.flush()
            os.rename(f"{root}/d", f"{root}/g")          # the writer's folder moves under it
            os.rename(f"{root}/t.txt", f"{root}/g/t2.txt")
            w.write("three\\n"); w.close()
            print(open(f"{root}/g/e/f.txt").read(), end="")
            """
        try script.write(toFile: "\(work!)/mv.py", atomically: true, encoding: .utf8)
        XCTAssertEqual(run("python3 \(q(work))/mv.py \(q(sales))/@main").stdout, "one\ntwo\nthree\n")
        XCTAssertEqual(run("stat -c %i \(q(sales))/@main/g/e/f.txt").stdout, ino, "the inode followed its file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(sales)/@main/d"))
        XCTAssertEqual(run("cat \(q(sales))/@main/g/t2.txt").stdout, "top\n")
        let v = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m moved").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("cd \(q(sales))/versions/\(v) && find . -type f | sort").stdout, "./g/e/f.txt\n./g/t2.txt\n")
        XCTAssertEqual(run("cat \(q(sales))/versions/\(v)/g/e/f.txt").stdout, "one\ntwo\nthree\n")
    }

    /// Parquet schemas come from the footer: shown in the xattr, the log and the diff.
    func testParquetSchemaInXattrLogAndDiff() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/parquet").path
        run("mkdir \(q(sales)) && cp \(q(fixtures))/types.parquet \(q(sales))/@main/t.parquet")
        let v1 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m parquet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let attr = run("getfattr --only-values -n user.artifactfs.schema \(q(sales))/versions/\(v1)/t.parquet").stdout
        let schema = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(attr.utf8)) as? [String: Any])
        XCTAssertEqual(schema["format"] as? String, "parquet")
        XCTAssertEqual(schema["rows"] as? Int, 3)
        XCTAssertEqual((schema["columns"] as? [[String: Any]])?.count, 11)
        let log = run("\(q(artifactfsBinary)) log --store \(q(fsx.store)) sales").stdout
        XCTAssertTrue(log.contains("schema t.parquet: 3 rows [id:integer, name:string, score:float, ok:boolean, day:date, ts:datetime, price:decimal"), log)
        run("cp \(q(fixtures))/empty.parquet \(q(sales))/@main/t.parquet")
        let v2 = run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m empty").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let diff = run("\(q(artifactfsBinary)) diff --store \(q(fsx.store)) sales \(v1) \(v2)").stdout
        XCTAssertTrue(diff.hasPrefix("M t.parquet\n"), diff)
        XCTAssertTrue(diff.contains("+ column a (integer)") && diff.contains("- column id (integer)") && diff.contains("- column price (decimal)"), diff)
    }

    func testReaderKeepsTheBytesItOpenedAcrossACommit() throws {
        writeQuarterFiles()
        run("mkdir \(q(sales)) && cp \(q(work))/q2.csv \(q(sales))/@main/ && \(q(artifactfsBinary)) commit \(q(sales))/@main -m one")
        let script = """
            import subprocess, sys
            path, binary = sys.argv[1], sys.argv[2]
            f = open(path, 'rb')
            head = f.read(5)
            with open(path, 'w') as w:
                w.write('replaced,entirely\\n9,9\\n')
            subprocess.run([binary, 'commit', path.rsplit('/', 1)[0], '-m', 'two'], check=True, stdout=subprocess.DEVNULL)
            rest = f.read()
            print(repr(head + rest))
            print(repr(open(path, 'rb').read()))
            """
        try script.write(toFile: "\(work!)/reader.py", atomically: true, encoding: .utf8)
        let out = run("python3 \(q(work))/reader.py \(q(sales))/@main/q2.csv \(q(artifactfsBinary))").stdout.split(separator: "\n")
        let original = try String(contentsOfFile: "\(work!)/q2.csv", encoding: .utf8)
        XCTAssertEqual(out.count, 2)
        XCTAssertEqual(String(out[0]), "b'" + original.replacingOccurrences(of: "\n", with: "\\n") + "'")
        XCTAssertEqual(String(out[1]), "b'replaced,entirely\\n9,9\\n'")
        XCTAssertEqual(versions().count, 2)
        // ls and cat show the new head at once.
        XCTAssertEqual(run("cat \(q(sales))/@main/q2.csv").stdout, "replaced,entirely\n9,9\n")
    }
}

/// kill -9 while a commit runs: the branch points at the old version or the whole new one.
final class DatasetCrashTests: MountTestCase {
    override var quietPeriod: Double { 600 }

    func testKillDuringCommitLeavesOldOrWholeNewVersion() throws {
        let sales = "\(fsx.mnt)/datasets/sales"
        run("mkdir \(q(sales)) && echo base > \(q(sales))/@main/base.txt && \(q(artifactfsBinary)) commit \(q(sales))/@main -m base")
        run("mkdir -p \(q(work))/many && cd \(q(work))/many && for i in $(seq 1 2000); do echo \"row $i\" > f$i.csv; done && head -c 50000000 /dev/urandom > big.bin")
        for (i, delay) in ["0.05", "0.3", "0.8"].enumerated() {
            let dir = "batch\(i)"
            run("mkdir \(q(sales))/@main/\(dir) && cp \(q(work))/many/* \(q(sales))/@main/\(dir)/")
            let before = sh("ls \(q(sales))/versions").stdout.split(separator: "\n").count
            sh("(\(q(artifactfsBinary)) commit \(q(sales))/@main -m \(dir) >/dev/null 2>&1 &) ; sleep \(delay)")
            fsx.crash()
            try fsx.mount()
            let versions = sh("ls \(q(sales))/versions").stdout.split(separator: "\n").map(String.init)
            XCTAssertTrue(versions.count == before || versions.count == before + 1, "\(versions)")
            // Committed or not, the working tree still has every file.
            run("diff -r \(q(work))/many \(q(sales))/@main/\(dir)")
            if versions.count == before + 1 {
                // The new version is whole, never half of one.
                run("diff -r \(q(work))/many \(q(sales))/versions/\(versions.last!)/\(dir)")
            }
            let v = fsx.cli("verify --store \(q(fsx.store))")
            XCTAssertEqual(v.status, 0, "delay \(delay): " + v.stdout + v.stderr)
            // Whatever is left commits now.
            run("\(q(artifactfsBinary)) commit \(q(sales))/@main -m 'after crash \(i)'")
            let latest = sh("ls \(q(sales))/versions | tail -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            run("diff -r \(q(work))/many \(q(sales))/versions/\(latest)/\(dir)")
        }
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }
}
