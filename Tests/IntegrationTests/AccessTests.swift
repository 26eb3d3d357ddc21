import Foundation
import XCTest

/// A mount shared with `--allow-other` (SPEC §6, "Access"), driven by real Unix users made
/// for the test class (useradd, removed afterwards) through `setpriv`: each right against each
/// operation, through the mount and through the CLI; group grants; revoke; the store folder.
final class AccessTests: MountTestCase {
    /// alice makes the project and the dataset (admin), bob gets read, carol write through the
    /// group, dave nothing.
    static let users = ["afs-t-alice", "afs-t-bob", "afs-t-carol", "afs-t-dave"]
    static let group = "afs-t-team"

    override class func setUp() {
        super.setUp()
        sh("getent group \(group) >/dev/null || groupadd \(group)")
        for u in users { sh("id \(u) >/dev/null 2>&1 || useradd -M -s /bin/sh \(u)") }
        sh("usermod -aG \(group) afs-t-carol")
    }

    override class func tearDown() {
        for u in users { sh("userdel \(u)") }
        sh("groupdel \(group)")
        super.tearDown()
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try freshMount(quietPeriod: 600, extraMountArgs: ["--allow-other"])
        // Other users reach the mountpoint through the test's folders (the store stays 0700).
        run("chmod 755 \(q(fsx.base)) \(q(work))")
    }

    /// `command` (a bash line) run as `user`, with its groups.
    @discardableResult
    func asUser(_ user: String, _ command: String) -> ShellResult {
        sh("setpriv --reuid=\(user) --regid=\(user) --init-groups -- bash -c \(q(command))")
    }

    private var cli: String { q(artifactfsBinary) }

    /// A project and a dataset made by alice, one sealed run and one commit in them, and the
    /// grants of the table.
    private func setUpShared() throws -> (project: String, dataset: String, run: String) {
        let p = fsx.project("p"), d = "\(fsx.mnt)/datasets/d"
        XCTAssertEqual(asUser("afs-t-alice", "mkdir \(q(p)) \(q(d))").status, 0)
        XCTAssertEqual(asUser("afs-t-alice", "echo one > \(q(p))/incoming/a.txt && \(cli) seal \(q(p))/incoming && echo v1 > \(q(d))/@main/f.txt && \(cli) commit \(q(d))/@main -m first").stderr, "")
        for (who, right) in [("afs-t-bob", "read"), ("@\(Self.group)", "write")] {
            for r in [p, d] { XCTAssertEqual(asUser("afs-t-alice", "\(cli) grant \(q(r)) \(who) \(right)").status, 0) }
        }
        try "[[stage]]\nname = \"copy\"\ncommand = [\"cp\", \"{input}\", \"{output_dir}/{name}\"]\ninputs = \"raw_source/*\"\n"
            .write(toFile: "\(work!)/pipeline.toml", atomically: true, encoding: .utf8)
        run("chmod 644 \(q(work))/pipeline.toml")
        XCTAssertEqual(asUser("afs-t-alice", "\(cli) pipeline set \(q(p)) \(q(work))/pipeline.toml && \(cli) branch \(q(d)) old").stderr, "")
        let runs = asUser("afs-t-alice", "ls \(q(p))/runs").stdout.split(separator: "\n").map(String.init)
        return (p, d, try XCTUnwrap(runs.first))
    }

    func testEachRightAgainstEachOperation() throws {
        let (p, d, r) = try setUpShared()
        let listing = asUser("afs-t-alice", "\(cli) grants \(q(p))").stdout
        XCTAssertEqual(listing, "afs-t-alice\tadmin\nafs-t-bob\tread\n@afs-t-team\twrite\n")
        // (operation, the lowest right that may do it); each user tries each.
        let rights: [String: Int] = ["afs-t-dave": 0, "afs-t-bob": 1, "afs-t-carol": 2, "afs-t-alice": 3]
        for (user, level) in rights {
            let ops: [(String, Int, String?)] = [
                ("ls \(q(p))/runs", 1, "Permission denied"),
                ("cat \(q(p))/runs/\(r)/raw_source/a.txt", 1, "Permission denied"),
                ("stat \(q(p))/runs/\(r)/raw_source/a.txt", 1, "Permission denied"),
                ("getfattr -n user.artifactfs.sha256 \(q(p))/runs/\(r)/raw_source/a.txt", 1, "Permission denied"),
                ("cat \(q(d))/@main/f.txt", 1, "Permission denied"),
                ("ls \(q(d))/versions", 1, "Permission denied"),
                ("\(cli) grants \(q(d))", 1, "has no access; listing grants needs read"),
                ("cp /etc/hostname \(q(p))/incoming/\(user).txt", 2, "Permission denied"),
                ("\(cli) seal \(q(p))/incoming", 2, "incoming: permission denied: \(user) has \(["no", "read"][min(level, 1)]) access; seal needs write"),
                ("echo \(user) > \(q(d))/@main/\(user).txt", 2, "Permission denied"),
                ("\(cli) commit \(q(d))/@main -m \(user)", 2, "@main: permission denied: \(user) has \(["no", "read"][min(level, 1)]) access; commit needs write"),
                ("mkdir \(q(d))/@\(user)", 2, "Permission denied"),
                ("test -w \(q(p))/incoming", 2, nil),
                ("\(cli) grant \(q(p)) afs-t-dave read && \(cli) revoke \(q(p)) afs-t-dave", 3, "grant needs admin"),
                // Changes the CLI asks the daemon to make through the mount.
                ("\(cli) branch \(q(d)) b-\(user)", 2, "datasets/d: permission denied: \(user) has"),
                ("\(cli) pipeline rerun \(q(p)) \(r)", 2, "projects/p: permission denied: \(user) has"),
                ("\(cli) forget \(q(p)) --keep-last 100 --dry-run", 1, "forget --dry-run needs read"),
                ("\(cli) tag \(q(d)) t-\(user)", 3, "tag needs admin"),
                ("\(cli) branch \(q(d)) --delete old", 3, "deleting a branch needs admin"),
                ("\(cli) pipeline set \(q(p)) \(q(work!))/pipeline.toml", 3, "pipeline set needs admin"),
                ("\(cli) forget \(q(p)) --keep-last 100", 3, "forget needs admin"),
                ("\(cli) branch \(q(d)) --retention 7d", 3, "setting retention needs admin"),
            ]
            for (command, needed, refusal) in ops {
                let result = asUser(user, command)
                if level >= needed {
                    XCTAssertEqual(result.status, 0, "\(user): \(command): \(result.stderr)")
                } else {
                    XCTAssertNotEqual(result.status, 0, "\(user) (level \(level)) may not: \(command)")
                    if let refusal { XCTAssertTrue(result.stderr.contains(refusal), "\(user): \(command): \(result.stderr)") }
                }
            }
            // Mode bits show the caller's right: w only for writers; without read, the project's
            // folder shows no bits and nothing in it can be looked at.
            let mode = asUser(user, "stat -c %A \(q(p))/incoming").stdout
            XCTAssertEqual(mode.dropFirst(2).first, level >= 2 ? "w" : level == 1 ? "-" : nil, "\(user): \(mode)")
            XCTAssertEqual(mode.dropFirst(1).first, level >= 1 ? "r" : nil, "\(user): \(mode)")
            XCTAssertEqual(asUser(user, "stat -c %A \(q(p))").stdout, level >= 1 ? "dr-xr-xr-x\n" : "d---------\n", "\(user): the project folder itself")
        }
        // A name alice just looked up is not answered to dave from the kernel's cache.
        let known = "\(p)/runs/\(r)/raw_source/a.txt"
        XCTAssertEqual(asUser("afs-t-alice", "cat \(q(known))").stdout, "one\n")
        XCTAssertEqual(asUser("afs-t-dave", "/usr/bin/python3 -c 'import os, sys; print(os.access(sys.argv[1], os.F_OK))' \(q(known))").stdout, "False\n")
        XCTAssertNotEqual(asUser("afs-t-dave", "test -e \(q(known))").status, 0)
        // The CLI's refusal names the resource, the user, what they have and what is needed.
        let refused = asUser("afs-t-bob", "\(cli) grant \(q(p)) afs-t-bob admin")
        XCTAssertEqual(refused.status, 77)
        XCTAssertEqual(refused.stderr, "artifactfs: projects/p: permission denied: afs-t-bob has read access; grant needs admin\n")
        // What the writers did landed, attributed to them.
        XCTAssertEqual(asUser("afs-t-alice", "stat -c %U \(q(d))/@main/afs-t-carol.txt").stdout, "afs-t-carol\n")
        XCTAssertEqual(asUser("afs-t-alice", "ls \(q(p))/runs | wc -l").stdout.trimmingCharacters(in: .whitespaces), "3\n",
                       "alice's first run and one seal each by carol and alice")
    }

    func testRootIsNotSpecialUnlessTheMountSaysSo() throws {
        let (p, _, _) = try setUpShared()
        XCTAssertTrue(sh("ls \(q(p))/runs").stderr.contains("Permission denied"))
        XCTAssertEqual(fsx.cli("grants \(q(p))").status, 77)
        fsx.unmount()
        fsx.extraMountArgs = ["--allow-other", "--root-is-admin"]
        try fsx.mount()
        run("ls \(q(p))/runs")
        run("\(cli) grant \(q(p)) afs-t-dave read")
        XCTAssertEqual(asUser("afs-t-dave", "ls \(q(p))").status, 0)
    }

    func testLastAdminStaysAndUnknownUsersAreRefused() throws {
        let (p, _, _) = try setUpShared()
        let last = asUser("afs-t-alice", "\(cli) revoke \(q(p)) afs-t-alice")
        XCTAssertEqual(last.status, 64, last.stderr)
        XCTAssertTrue(last.stderr.contains("last admin"), last.stderr)
        let nobody = asUser("afs-t-alice", "\(cli) grant \(q(p)) no-such-user-xyz read")
        XCTAssertEqual(nobody.status, 4)
        XCTAssertEqual(nobody.stderr, "artifactfs: no-such-user-xyz: no such user\n")
        XCTAssertEqual(asUser("afs-t-alice", "\(cli) grant \(q(p)) afs-t-bob owner").status, 64)
        XCTAssertEqual(asUser("afs-t-alice", "\(cli) grant \(q(fsx.mnt))/projects afs-t-bob read").status, 64)
        // Handing admin on, then leaving, works.
        XCTAssertEqual(asUser("afs-t-alice", "\(cli) grant \(q(p)) afs-t-bob admin && \(cli) revoke \(q(p)) afs-t-alice").status, 0)
        XCTAssertTrue(asUser("afs-t-alice", "ls \(q(p))").stderr.contains("Permission denied"))
    }

    /// A revoke holds from the next operation on; a file opened before keeps its descriptor,
    /// as with chmod on any filesystem.
    func testRevokeTakesEffectAtOnceButAnOpenFileStaysOpen() throws {
        let (p, _, r) = try setUpShared()
        let file = "\(p)/runs/\(r)/raw_source/a.txt"
        let script = """
            import os, subprocess, sys
            uid = int(subprocess.check_output(["id", "-u", "afs-t-bob"]))
            gid = int(subprocess.check_output(["id", "-g", "afs-t-bob"]))
            ready_r, ready_w = os.pipe()
            go_r, go_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.setgroups([]); os.setgid(gid); os.setuid(uid)
                f = open(sys.argv[1], "rb")
                first = f.read(2)
                os.write(ready_w, b"1")
                os.read(go_r, 1)  # until the revoke is done
                rest = f.read()
                size = os.fstat(f.fileno()).st_size
                try:
                    open(sys.argv[1], "rb"); again = "opened again"
                except PermissionError:
                    again = "refused"
                print((first + rest).decode().strip(), again, f"size={size}", flush=True)
                os._exit(0)
            assert os.read(ready_r, 1) == b"1"
            subprocess.check_call(["setpriv", "--reuid=afs-t-alice", "--regid=afs-t-alice", "--init-groups", "--",
                                   sys.argv[2], "revoke", sys.argv[3], "afs-t-bob"], stdout=subprocess.DEVNULL)
            os.write(go_w, b"1")
            os.waitpid(pid, 0)
            """
        let scriptPath = "\(work!)/revoke.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let result = run("python3 \(q(scriptPath)) \(q(file)) \(cli) \(q(p))").stdout
        XCTAssertEqual(result, "one refused size=4\n", "the open file read on (and fstat answered); a new open was refused")
        XCTAssertTrue(asUser("afs-t-bob", "stat \(q(file))").stderr.contains("Permission denied"), "nor does a stat by name")
        XCTAssertTrue(asUser("afs-t-bob", "cat \(q(file))").stderr.contains("Permission denied"))
    }

    func testTheStoreIsPrivateAndAMountRefusesOneOthersCouldChange() throws {
        let (p, _, _) = try setUpShared()
        XCTAssertEqual(sh("stat -c %a \(q(fsx.store))").stdout, "700\n")
        for path in ["catalog.sqlite", "objects", "staging"] {
            XCTAssertTrue(asUser("afs-t-alice", "ls \(q(fsx.store))/\(path)").stderr.contains("Permission denied"), path)
        }
        // By name with --store, alice's grant command finds the store's mount and goes through
        // it: she cannot open the catalog.
        XCTAssertEqual(asUser("afs-t-alice", "\(cli) grants projects/p --store \(q(fsx.store))").stdout,
                       "afs-t-alice\tadmin\nafs-t-bob\tread\n@afs-t-team\twrite\n")
        _ = p
        // Reading commands need the catalog, which is its user's alone: they say so.
        let status = asUser("afs-t-alice", "\(cli) status --store \(q(fsx.store))")
        XCTAssertEqual(status.status, 77)
        XCTAssertTrue(status.stderr.contains("the store folder is private to its user"), status.stderr)
        fsx.unmount()
        XCTAssertEqual(sh("\(cli) mount --store \(q(fsx.store)) --root-is-admin \(q(fsx.mnt))").status, 64, "--root-is-admin needs --allow-other")
        run("chmod 755 \(q(fsx.store))")
        let shared = sh("\(cli) mount --store \(q(fsx.store)) --allow-other \(q(fsx.mnt))")
        XCTAssertEqual(shared.status, 77)
        XCTAssertTrue(shared.stderr.contains("chmod 700"), shared.stderr)
        run("chmod 777 \(q(fsx.store))")
        let open = sh("\(cli) mount --store \(q(fsx.store)) \(q(fsx.mnt))")
        XCTAssertEqual(open.status, 77)
        XCTAssertTrue(open.stderr.contains("other users can write the store folder"), open.stderr)
        XCTAssertFalse(sh("mountpoint -q \(q(fsx.mnt))").ok)
        run("chmod 700 \(q(fsx.store))")
        try fsx.mount()
    }
}
