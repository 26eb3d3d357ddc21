import Foundation
import XCTest

/// Output of one shell command.
struct ShellResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var ok: Bool { status == 0 }
}

/// Runs `command` with bash and returns what it printed. Real tools only: cp, rsync, tar...
///
/// posix_spawn and waitpid rather than Foundation's Process, whose waiting proved unreliable
/// when the command leaves a daemon behind; output goes through temp files for the same reason.
@discardableResult
func sh(_ command: String, environment: [String: String] = [:]) -> ShellResult {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("afs-sh-\(UUID().uuidString)").path
    let outPath = tmp + ".out", errPath = tmp + ".err"
    defer { unlink(outPath); unlink(errPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    let argv: [UnsafeMutablePointer<CChar>?] = [String]([String]([ "/bin/bash", "-c", command ])).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp)
    guard rc == 0 else { return ShellResult(status: 127, stdout: "", stderr: "posix_spawn failed: \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return ShellResult(status: code, stdout: out, stderr: err)
}

/// Quotes a string for bash.
func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// The artifactfs binary under test: $ARTIFACTFS_BIN, else this package's release build.
let artifactfsBinary: String = {
    if let b = ProcessInfo.processInfo.environment["ARTIFACTFS_BIN"], !b.isEmpty { return b }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["release", "debug"] {
        let p = root.appendingPathComponent(".build/\(config)/artifactfs").path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return "artifactfs"
}()

/// A fresh store mounted in a temp folder; `tearDown` unmounts it even when a test failed.
final class MountedStore {
    let base: String
    let store: String
    let mnt: String
    var quietPeriod: Double
    var extraMountArgs: [String]
    /// When set, the daemon starts with this soft and hard limit on open descriptors.
    var descriptorLimit: Int?
    private(set) var mounted = false

    init(quietPeriod: Double = 0.3, extraMountArgs: [String] = [], storeOverride: String? = nil) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("afs-it-\(UUID().uuidString.prefix(8))").path
        base = dir
        store = storeOverride ?? "\(dir)/store"
        mnt = "\(dir)/mnt"
        self.quietPeriod = quietPeriod
        self.extraMountArgs = extraMountArgs
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try mount()
    }

    func cli(_ args: String) -> ShellResult {
        sh("\(q(artifactfsBinary)) \(args)")
    }

    /// Mounts the test's store, made first with `artifactfs init` when it is new.
    func mount() throws {
        if !FileManager.default.fileExists(atPath: store + "/catalog.sqlite") {
            let r = cli("init --store \(q(store))")
            guard r.ok else { throw NSError(domain: "init", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "init failed: \(r.stderr)"]) }
        }
        let limit = descriptorLimit.map { "ulimit -Sn \($0) && ulimit -Hn \($0) && " } ?? ""
        let r = sh(limit + "\(q(artifactfsBinary)) mount --store \(q(store)) \(q(mnt)) --quiet-period \(quietPeriod) \(extraMountArgs.joined(separator: " "))")
        guard r.ok else {
            throw NSError(domain: "mount", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "mount failed: \(r.stderr)"])
        }
        mounted = true
    }

    func unmount() {
        guard mounted else { return }
        let r = cli("unmount \(q(mnt))")
        if !r.ok { sh("fusermount3 -uz \(q(mnt))") }
        mounted = false
    }

    /// The daemon's pid, from the root's extended attribute.
    var daemonPID: Int32? {
        Int32(sh("getfattr --only-values -n user.artifactfs.pid \(q(mnt))").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// kill -9 of the daemon, then a lazy unmount of the dead mount and a wait for the pid.
    func crash() {
        guard let pid = daemonPID else { return }
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(20_000) }
        sh("fusermount3 -uz \(q(mnt))")
        mounted = false
    }

    func tearDown() {
        unmount()
        sh("rm -rf \(q(base))")
    }

    func project(_ name: String) -> String { "\(mnt)/projects/\(name)" }

    /// Run ids of a project, as plain `ls` lists them.
    func runs(_ project: String) -> [String] {
        sh("ls \(q(self.project(project)))/runs").stdout.split(separator: "\n").map(String.init)
    }

    /// Waits (liveness only, not a performance bound) until the project has `count` runs;
    /// throws, failing the test cleanly, if it never does.
    func waitForRuns(_ project: String, count: Int) throws -> [String] {
        for _ in 0..<600 {
            let r = runs(project)
            if r.count >= count { return r }
            usleep(100_000)
        }
        throw NSError(domain: "wait", code: 1, userInfo: [NSLocalizedDescriptionKey:
            "project \(project) never reached \(count) runs; has \(runs(project)); log: \(daemonLog.suffix(2000))"])
    }

    var daemonLog: String { (try? String(contentsOfFile: "\(store)/daemon.log", encoding: .utf8)) ?? "" }

    func runJSON(_ project: String, _ run: String) -> [String: Any] {
        let data = FileManager.default.contents(atPath: "\(self.project(project))/runs/\(run)/.run.json") ?? Data()
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// Number of blob files in the store.
    var blobCount: Int {
        Int(sh("find \(q(store))/objects -type f | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// Base class: every test gets its own mounted store.
class MountTestCase: XCTestCase {
    var fsx: MountedStore!
    var work: String!
    var quietPeriod: Double { 0.3 }

    override func setUpWithError() throws {
        try freshMount(quietPeriod: quietPeriod)
    }

    /// Replaces this test's mount with a new store mounted with other settings.
    func freshMount(quietPeriod: Double, extraMountArgs: [String] = [], storeOverride: String? = nil) throws {
        fsx?.tearDown()
        fsx = try MountedStore(quietPeriod: quietPeriod, extraMountArgs: extraMountArgs, storeOverride: storeOverride)
        work = "\(fsx.base)/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    /// Replaces this test's mount with a new store on a tmpfs of 48 MiB, for the disk-full
    /// cases (quiet period of 600 s: only explicit seals), and returns the tmpfs folder. The
    /// tmpfs goes away when the test ends.
    @discardableResult
    func freshMountOnSmallDisk() throws -> String {
        let small = FileManager.default.temporaryDirectory.appendingPathComponent("afs-full-\(UUID().uuidString.prefix(6))").path
        run("mkdir -p \(q(small)) && mount -t tmpfs -o size=48m tmpfs \(q(small))")
        addTeardownBlock { sh("umount -l \(q(small)); rmdir \(q(small))") }
        try freshMount(quietPeriod: 600, storeOverride: "\(small)/store")
        return small
    }

    override func tearDown() {
        fsx?.tearDown()
    }

    /// Asserts a command succeeded, showing its stderr when it did not.
    @discardableResult
    func run(_ command: String, file: StaticString = #filePath, line: UInt = #line) -> ShellResult {
        let r = sh(command)
        XCTAssertEqual(r.status, 0, "\(command) failed: \(r.stderr)", file: file, line: line)
        return r
    }

    /// Makes a sample folder: text, binary, nested folders, odd modes and old mtimes.
    func makeSampleTree(_ dir: String, seed: Int = 1) {
        run("""
            mkdir -p \(q(dir))/sub/deeper && cd \(q(dir)) &&
            printf 'id,name\\n1,alpha\\n2,beta\\n' > data.csv &&
            head -c 300000 /dev/urandom > sub/blob.bin &&
            echo 'seed \(seed)' > sub/deeper/notes.txt &&
            printf 'with space' > 'name with space.txt' &&
            chmod 640 data.csv && chmod 755 sub/deeper/notes.txt &&
            touch -d '2021-03-04 05:06:07' data.csv && touch -d '2019-12-31 23:59:59' sub/blob.bin
            """)
    }
}
