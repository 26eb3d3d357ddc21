import Foundation
import XCTest

/// Writable trees keep exactly what was written (issue 9): each case through a real mount,
/// then again after a seal or a commit and a remount.
final class TreeFidelityTests: MountTestCase {
    /// The issue's first case: NFC and NFD spellings of one word are two files in `@main/`,
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

        // log --json keeps both tables' schemas (JSONEncoder alone would merge the two keys).
        run("mkdir \(q(fsx.mnt))/datasets/tables")
        run("cd \(q(fsx.mnt))/datasets/tables/@main && printf 'a\\n1\\n' > caf$'\\xc3\\xa9'.csv && printf 'b\\n2\\n' > cafe$'\\xcc\\x81'.csv")
        _ = fsx.cli("commit \(q(fsx.mnt))/datasets/tables/@main -m tables")  // or the quiet period's commit
        let schemas = "import json, sys; print(sorted(json.load(sys.stdin)[0]['schemas']))"
        // Compared as bytes: Swift's String equality is the very merge under test.
        XCTAssertEqual(Array(run("\(q(artifactfsBinary)) log --json \(q(fsx.mnt))/datasets/tables | python3 -c \(q(schemas))").stdout.utf8),
                       Array("['cafe\u{301}.csv', 'caf\u{e9}.csv']\n".utf8))  // Python sorts by code point
    }

    /// The issue's second case: names that are not UTF-8 keep their bytes in incoming/, the
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

    static let treeDump = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("POSIX/tree_dump.py").path

    func dump(_ dir: String, folderTimes: Bool = true) -> String {
        run("python3 \(q(Self.treeDump)) \(q(dir))\(folderTimes ? "" : " --no-dir-mtime")").stdout
    }

    /// A source tree with everything a run must keep (SPEC §1).
    func makeWholeTree(_ src: String) {
        run("""
            mkdir -p \(q(src))/pkg/bin \(q(src))/empty \(q(src))/private && cd \(q(src)) &&
            printf 'print(1)\\n' > pkg/main.py && ln -s ../main.py pkg/bin/run && ln -s $'no/such\\xe9' dangling &&
            printf data > pkg/blob && ln pkg/blob pkg/blob-link && ln pkg/blob hard-at-top &&
            mkfifo pipe && python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")' && mknod null c 1 3 &&
            setfattr -n user.origin -v hub pkg/main.py && setfattr -n user.folder -v yes private &&
            chmod 750 private && chmod 4755 pkg/main.py &&
            touch -h -d '2021-01-01 00:00:01' pkg/bin/run dangling pipe sock null &&
            touch -d '2020-05-05 05:05:05' empty private pkg/bin pkg .
            """)
    }

    /// Every folder with its link count (2 + the folders in it, as on ext4), one per line.
    func folderLinkCounts(_ dir: String) -> String {
        run("cd \(q(dir)) && find . -type d -printf '%p %n\\n' | LC_ALL=C sort").stdout
    }

    /// A folder's link count is 2 + its folders in incoming/, a run, `@main/` and a version, as
    /// natively, and it follows mkdir, rmdir and a folder replaced by a file in `@main/`.
    func testFolderLinkCountsCountTheirFolders() throws {
        let src = "\(work!)/tree"
        makeWholeTree(src)
        run("mkdir -p \(q(src))/pkg/a/b \(q(src))/pkg/c")
        let expected = folderLinkCounts(src)
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("cp -a \(q(src))/. \(q(p))/incoming/")
        XCTAssertEqual(folderLinkCounts("\(p)/incoming"), expected)
        let runs = try fsx.waitForRuns("p", count: 1)
        XCTAssertEqual(folderLinkCounts("\(p)/runs/\(runs[0])/raw_source"), expected)

        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        run("cp -a \(q(src))/. \(q(main))/")
        XCTAssertEqual(folderLinkCounts(main), expected)
        let v = run("\(q(artifactfsBinary)) commit \(q(main)) -m tree").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(folderLinkCounts("\(fsx.mnt)/datasets/d/versions/\(v)"), expected)
        // The same changes natively and in the working tree over the committed folders.
        let change = "rmdir pkg/c && rm -r pkg/a && touch pkg/a && mkdir -p new/x new/y"
        run("cd \(q(src)) && \(change)")
        run("cd \(q(main)) && \(change)")
        XCTAssertEqual(folderLinkCounts(main), folderLinkCounts(src))
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(folderLinkCounts(main), folderLinkCounts(src))
    }

    /// open(dir, O_TMPFILE) makes an unnamed file in incoming/ and `@main/`; linkat names it
    /// and it is sealed or committed with what was written, also after the link; one never
    /// named leaves nothing, and one opened with O_EXCL can never be named (issue 9, case 9).
    func testUnnamedFilesAreNamedByLinkat() throws {
        // Seals and commits only when asked, so each sees the whole script's work.
        try freshMount(quietPeriod: 600)
        let script = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            def linkat(fd, dst):
                if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100, os.fsencode(dst), 0x400) != 0:
                    raise OSError(ctypes.get_errno(), "linkat " + dst)
            d = sys.argv[1]
            fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
            os.write(fd, b"before ")
            seen = os.listdir(d)
            linkat(fd, f"{d}/named")
            named = os.listdir(d)
            os.write(fd, b"after")
            os.close(fd)
            gone = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)
            os.write(gone, b"never named")
            os.close(gone)
            excl = os.open(d, os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
            try:
                linkat(excl, f"{d}/excl")
                refused = "no"
            except OSError as e:
                refused = os.strerror(e.errno)
            os.close(excl)
            print(seen, named, refused)
            """
        run("cat > \(q(work))/tmpfile.py <<'EOF'\n\(script)\nEOF")
        let native = run("mkdir \(q(work))/native && python3 \(q(work))/tmpfile.py \(q(work))/native").stdout
        let expected = "[] ['named'] No such file or directory\n"
        XCTAssertEqual(native, expected)

        let p = fsx.project("p")
        run("mkdir \(q(p))")
        XCTAssertEqual(run("python3 \(q(work))/tmpfile.py \(q(p))/incoming").stdout, expected)
        run("\(q(artifactfsBinary)) seal \(q(p))/incoming")
        let runs = try fsx.waitForRuns("p", count: 1)
        let raw = "\(p)/runs/\(runs[0])/raw_source"
        XCTAssertEqual(run("ls -A \(q(raw))").stdout, "named\n")
        XCTAssertEqual(run("cat \(q(raw))/named").stdout, "before after")
        XCTAssertEqual(run("stat -c %a \(q(raw))/named").stdout, "640\n")

        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        XCTAssertEqual(run("python3 \(q(work))/tmpfile.py \(q(main))").stdout, expected)
        let v = run("\(q(artifactfsBinary)) commit \(q(main)) -m tmpfile").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        fsx.unmount()
        try fsx.mount()
        for dir in [main, "\(fsx.mnt)/datasets/d/versions/\(v)"] {
            XCTAssertEqual(run("ls -A \(q(dir))").stdout, "named\n")
            XCTAssertEqual(run("cat \(q(dir))/named").stdout, "before after")
        }
        XCTAssertEqual(run("stat -c %a \(q(main))/named").stdout, "640\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    /// Runs keep the whole tree as `cp -a` wrote it: symlinks (byte targets), hard links,
    /// FIFOs, sockets, device nodes, user.* attributes, folders with mode, owner and mtime, and
    /// empty folders; in runs/ and latest/, and again after a remount (issue 9, case 6).
    func testARunHoldsTheWholeTree() throws {
        let src = "\(work!)/tree"
        makeWholeTree(src)
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("cp -a \(q(src))/. \(q(p))/incoming/")
        let runs = try fsx.waitForRuns("p", count: 1)
        let expected = dump(src)
        let raw = "\(p)/runs/\(runs[0])/raw_source"
        XCTAssertEqual(dump(raw), expected)
        XCTAssertEqual(dump("\(p)/latest"), expected)
        XCTAssertEqual(run("readlink \(q(raw))/pkg/bin/run").stdout, "../main.py\n")
        XCTAssertEqual(run("cat \(q(raw))/pkg/bin/run").stdout, "print(1)\n")
        XCTAssertEqual(run("stat -c %i \(q(raw))/pkg/blob \(q(raw))/hard-at-top | uniq | wc -l").stdout, "1\n")
        XCTAssertEqual(run("readlink \(q(p))/history/pkg/bin/run/\(runs[0])").stdout, "../main.py\n")
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(dump(raw), expected)
        // Symlinks are links to the pipeline and dedup too: the target is stored, never followed.
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    /// A version holds the whole tree too: after a commit and a remount the branch shows what
    /// `cp -a` wrote, and versions/ keeps links, link counts and attributes.
    func testAVersionHoldsTheWholeTree() throws {
        // Committed when the test says: with the default quiet period (0.3 s) a quiet-period
        // commit could come first, and `commit` would then have nothing to commit (seen in CI).
        try freshMount(quietPeriod: 600)
        let src = "\(work!)/tree"
        makeWholeTree(src)
        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        run("cp -a \(q(src))/. \(q(main))/")
        let expected = dump(src)
        XCTAssertEqual(dump(main), expected)
        let v = run("\(q(artifactfsBinary)) commit \(q(main)) -m tree").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(dump(main), expected)
        let version = "\(fsx.mnt)/datasets/d/versions/\(v)"
        XCTAssertEqual(run("readlink \(q(version))/pkg/bin/run \(q(version))/dangling | od -An -c | tr -s ' '").stdout,
                       run("printf '../main.py\\nno/such\\351\\n' | od -An -c | tr -s ' '").stdout)
        XCTAssertEqual(run("stat -c '%h %i' \(q(version))/pkg/blob \(q(version))/hard-at-top \(q(version))/pkg/blob-link | uniq | wc -l").stdout, "1\n")
        XCTAssertEqual(run("stat -c %h \(q(version))/pkg/blob").stdout, "3\n")
        XCTAssertEqual(run("getfattr --only-values -n user.origin \(q(version))/pkg/main.py").stdout, "hub")
        XCTAssertEqual(run("stat -c '%F %t,%T' \(q(version))/null \(q(version))/pipe").stdout, "character special file 1,3\nfifo 0,0\n")
        XCTAssertEqual(run("stat -c '%a %Y' \(q(version))/private").stdout, "550 1588655105\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0)
    }

    /// `tar -xp` and `git clone` of trees with links are captured as they are.
    func testTarAndGitTreesAreCapturedAsTheyAre() throws {
        let src = "\(work!)/tree"
        makeWholeTree(src)
        run("cd \(q(work)) && tar --xattrs --xattrs-include='user.*' -cpf tree.tar -C tree .")
        run("cd \(q(work)) && git init -q repo && cd repo && printf x > f && ln -s f link && git add . && " +
            "git -c user.email=t@t -c user.name=t commit -qm one")
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("mkdir \(q(p))/incoming/untar && tar --xattrs --xattrs-include='user.*' -xpf \(q(work))/tree.tar -C \(q(p))/incoming/untar")
        run("git clone -q \(q(work))/repo \(q(p))/incoming/clone")
        let runs = try fsx.waitForRuns("p", count: 1)
        let raw = "\(p)/runs/\(runs[0])/raw_source"
        // tar leaves sockets out; what it extracts natively is the reference.
        run("mkdir \(q(work))/native && tar --xattrs --xattrs-include='user.*' -xpf \(q(work))/tree.tar -C \(q(work))/native")
        XCTAssertEqual(dump("\(raw)/untar"), dump("\(work!)/native"))
        XCTAssertEqual(run("readlink \(q(raw))/clone/link").stdout, "f\n")
        XCTAssertEqual(run("git -C \(q(raw))/clone log --format=%s").stdout, "one\n")
        XCTAssertEqual(run("cd \(q(raw))/clone && git fsck --no-dangling && git diff --stat HEAD").stdout, "")
    }

    /// `.artifactfsignore` at the top of incoming/ or of a branch: what it names is never sealed
    /// or committed and stays where it is (issue 9, case 10: SQLite's -wal and -shm files).
    func testIgnoredPathsStayWhereTheyAre() throws {
        let rules = "# scratch\n*.sqlite-wal\n*.sqlite-shm\n__pycache__/\n.*.swp\n!keep.swp\n"
        let p = fsx.project("p")
        run("mkdir \(q(p))")
        run("cd \(q(p))/incoming && printf \(q(rules)) > .artifactfsignore && mkdir -p src/__pycache__ && " +
            "echo data > db.sqlite && echo wal > db.sqlite-wal && echo x > src/__pycache__/m.pyc && echo code > src/m.py && " +
            "echo s > .m.py.swp")
        let runs = try fsx.waitForRuns("p", count: 1)
        XCTAssertEqual(run("cd \(q(p))/runs/\(runs[0])/raw_source && find . | sort").stdout, ".\n./db.sqlite\n./src\n./src/m.py\n")
        XCTAssertEqual(run("cd \(q(p))/incoming && find . -type f | sort").stdout,
                       "./.artifactfsignore\n./.m.py.swp\n./db.sqlite-wal\n./src/__pycache__/m.pyc\n")

        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d")
        run("printf \(q(rules)) > \(q(main))/.artifactfsignore && python3 -c 'import sqlite3; c = sqlite3.connect(\"\(main)/t.sqlite\"); " +
            "c.execute(\"pragma journal_mode=wal\"); c.execute(\"create table t(x)\"); c.commit()'")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m one")
        let v1 = run("ls \(q(fsx.mnt))/datasets/d/versions").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("ls -A \(q(fsx.mnt))/datasets/d/versions/\(v1)").stdout, ".artifactfsignore\nt.sqlite\n")
        // A reader opening the database leaves -wal and -shm behind: no new version for them.
        run("python3 -c 'import sqlite3; c = sqlite3.connect(\"file:\(main)/t.sqlite?mode=ro\", uri=True); c.execute(\"select * from t\").fetchall(); import time'")
        run("touch \(q(main))/t.sqlite-wal \(q(main))/t.sqlite-shm")
        let again = fsx.cli("commit \(q(main)) -m two")
        XCTAssertTrue(again.stderr.contains("nothing to commit"), again.stdout + again.stderr)
        XCTAssertTrue(sh("test -e \(q(main))/t.sqlite-wal").ok, "ignored files stay in the working tree")
        fsx.unmount()
        try fsx.mount()
        XCTAssertTrue(sh("test -e \(q(main))/t.sqlite-wal").ok, "and survive a remount")
        XCTAssertEqual(run("ls \(q(fsx.mnt))/datasets/d/versions").stdout, "\(v1)\n")
    }

    /// A hard link whose other name stays behind (ignored here) is stored as a copy: writing
    /// through the name left behind never changes what was sealed or committed.
    func testANameLeftBehindNeverSharesTheStoredBytes() throws {
        let p = fsx.project("p")
        run("mkdir \(q(p)) && cd \(q(p))/incoming && printf '*.swp\\n' > .artifactfsignore && echo original > a && ln a a.swp")
        let sealed = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("echo more >> \(q(p))/incoming/a.swp")
        XCTAssertEqual(run("cat \(q(p))/runs/\(sealed)/raw_source/a").stdout, "original\n")

        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d && cd \(q(main)) && printf '*.swp\\n' > .artifactfsignore && echo original > a && ln a a.swp")
        let v = run("\(q(artifactfsBinary)) commit \(q(main)) -m one").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("echo more >> \(q(main))/a.swp")
        XCTAssertEqual(run("cat \(q(fsx.mnt))/datasets/d/versions/\(v)/a").stdout, "original\n")
        XCTAssertEqual(fsx.cli("verify --store \(q(fsx.store))").status, 0, fsx.cli("verify --store \(q(fsx.store))").stdout)
    }

    /// After a commit, the names of a hard link are still one file in the working tree: a
    /// write through any of them shows through all, and the next version has it everywhere.
    func testCommittedHardLinksStayOneFile() throws {
        let main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(fsx.mnt))/datasets/d && mkdir \(q(main))/hl && echo base > \(q(main))/hl/x && ln \(q(main))/hl/x \(q(main))/hl/y && ln \(q(main))/hl/x \(q(main))/hl/z")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m links")
        XCTAssertEqual(run("stat -c '%i %h' \(q(main))/hl/x \(q(main))/hl/y \(q(main))/hl/z | uniq").stdout.split(separator: "\n").count, 1)
        run("echo to-y > \(q(main))/hl/y && echo app >> \(q(main))/hl/z")
        XCTAssertEqual(run("cat \(q(main))/hl/x \(q(main))/hl/y \(q(main))/hl/z").stdout, "to-y\napp\nto-y\napp\nto-y\napp\n")
        let v = run("\(q(artifactfsBinary)) commit \(q(main)) -m write").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("cat \(q(fsx.mnt))/datasets/d/versions/\(v)/hl/x \(q(fsx.mnt))/datasets/d/versions/\(v)/hl/y").stdout, "to-y\napp\nto-y\napp\n")
        run("ln \(q(main))/hl/x \(q(main))/hl/w && echo last >> \(q(main))/hl/w")
        XCTAssertEqual(run("tail -1 \(q(main))/hl/y").stdout, "last\n")
    }

    /// `ln` of a file that is already committed makes both names one file in the next version
    /// (one inode, two links), and a write through either name is committed for both and
    /// survives a remount.
    func testALinkToACommittedFileIsCommittedAsOneFile() throws {
        let d = "\(fsx.mnt)/datasets/d", main = "\(fsx.mnt)/datasets/d/@main"
        run("mkdir \(q(d)) && echo a > \(q(main))/f")
        run("\(q(artifactfsBinary)) commit \(q(main)) -m one")
        run("ln \(q(main))/f \(q(main))/g")
        XCTAssertEqual(run("\(q(artifactfsBinary)) status \(q(main))").stdout, "M f\nA g\n")
        let v2 = run("\(q(artifactfsBinary)) commit \(q(main)) -m link").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("stat -c '%i %h' \(q(d))/versions/\(v2)/f \(q(d))/versions/\(v2)/g | uniq").stdout.split(separator: "\n").map { $0.split(separator: " ")[1] }, ["2"])
        run("echo more >> \(q(main))/g")
        XCTAssertEqual(run("cat \(q(main))/f").stdout, "a\nmore\n")
        XCTAssertEqual(run("\(q(artifactfsBinary)) status \(q(main))").stdout, "M f\nM g\n")
        let v3 = run("\(q(artifactfsBinary)) commit \(q(main)) -m write").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("cat \(q(d))/versions/\(v3)/f \(q(d))/versions/\(v3)/g").stdout, "a\nmore\na\nmore\n")
        fsx.unmount()
        try fsx.mount()
        XCTAssertEqual(run("cat \(q(main))/f \(q(main))/g").stdout, "a\nmore\na\nmore\n")
        XCTAssertEqual(run("stat -c %h \(q(main))/f").stdout, "2\n")
    }

    /// `rsync -aHAX` into a writable tree and back out of a run or a version exits 0 and
    /// brings the tree back as it was (the daemon's own attributes are not listed where a
    /// tool would try to remove them, and none on symlinks or special files).
    func testRsyncWithAttributesRoundTrips() throws {
        try freshMount(quietPeriod: 600)  // sealed and committed when the test says, not mid-rsync
        let src = "\(work!)/tree"
        makeWholeTree(src)
        let p = fsx.project("p")
        run("mkdir \(q(p)) \(q(fsx.mnt))/datasets/d")
        run("rsync -aHAX \(q(src))/ \(q(p))/incoming/")
        run("rsync -aHAX \(q(src))/ \(q(fsx.mnt))/datasets/d/@main/")
        let sealed = run("\(q(artifactfsBinary)) seal \(q(p))/incoming").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let v = run("\(q(artifactfsBinary)) commit \(q(fsx.mnt))/datasets/d/@main -m tree").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        run("rsync -aHAX \(q(p))/runs/\(sealed)/raw_source/ \(q(work))/from-run/")
        run("rsync -aHAX --chmod=u+w \(q(fsx.mnt))/datasets/d/@main/ \(q(work))/from-branch/")
        XCTAssertEqual(dump("\(work!)/from-run"), dump(src))
        XCTAssertEqual(dump("\(work!)/from-branch"), dump(src))
        XCTAssertFalse(v.isEmpty)
    }

    /// A version's hard links never share an inode with the working tree: after a remount,
    /// with the version looked up first, writes to the branch never show in the version.
    func testAVersionStaysImmutableBesideItsBranchsHardLinks() throws {
        let d = "\(fsx.mnt)/datasets/d"
        run("mkdir \(q(d)) && echo orig > \(q(d))/@main/a && ln \(q(d))/@main/a \(q(d))/@main/b")
        let v = run("\(q(artifactfsBinary)) commit \(q(d))/@main -m hl").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        fsx.unmount()
        try fsx.mount()
        let versionIno = run("stat -c %i \(q(d))/versions/\(v)/a \(q(d))/versions/\(v)/b | uniq").stdout
        XCTAssertEqual(versionIno.split(separator: "\n").count, 1)
        run("echo changed >> \(q(d))/@main/a")
        XCTAssertEqual(run("cat \(q(d))/versions/\(v)/a \(q(d))/versions/\(v)/b").stdout, "orig\norig\n")
        XCTAssertEqual(run("cat \(q(d))/@main/b").stdout, "orig\nchanged\n")
        XCTAssertNotEqual(run("stat -c %i \(q(d))/@main/a").stdout, versionIno)
    }
}
