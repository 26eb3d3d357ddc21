import ArtifactCore
import ArtifactPipeline
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Stage commands run in their bubblewrap sandbox (SPEC §6, §7): writes outside the output
/// folder fail and the job is recorded as failed, the store is out of reach, and there is no
/// network unless the stage asks for it. Real commands, real bubblewrap.
final class StageSandboxTests: RunnerTestCase {
    /// Every file under `folder`, relative, sorted.
    private func files(under folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).sorted()
    }

    func testWritesOutsideTheOutputFolderFailAndLeaveNothing() throws {
        let marker = "escaped-\(UUID().uuidString.prefix(8))"
        let storeFilesBefore = files(under: root)
        let p = try pipeline("""
            [[stage]]
            name = "dotdot"
            command = ["sh", "-c", "echo x > {output_dir}/../../\(marker)"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "absolute"
            command = ["sh", "-c", "echo x > \(scratch!)/\(marker)"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "store"
            command = ["sh", "-c", "echo x > \(root!)/\(marker)"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "symlink"
            command = ["sh", "-c", "ln -s /usr/share {output_dir}/share && echo x > {output_dir}/share/\(marker)"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "input"
            command = ["sh", "-c", "echo x >> {input}"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "private_tmp"
            command = ["sh", "-c", "echo x > /tmp/\(marker) && cat /tmp/\(marker) > {output_dir}/ok"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        XCTAssertEqual(try waitForRun(r.id).status, .completedWithErrors)
        for stage in ["dotdot", "absolute", "store", "symlink", "input"] {
            let job = try XCTUnwrap(jobs(r.id, stage: stage).first, stage)
            XCTAssertEqual(job.status, .failed, stage)
            XCTAssertTrue(job.error?.contains("exit status") ?? false, "\(stage): \(job.error ?? "nil")")
            XCTAssertEqual(try outputs(r.id, stage: stage), [], "nothing of a failed job is registered")
        }
        XCTAssertTrue(try XCTUnwrap(jobs(r.id, stage: "dotdot").first?.error).contains("Read-only file system"))
        // The private /tmp works and is the job's own.
        XCTAssertEqual(try jobs(r.id, stage: "private_tmp").first?.status, .completed)
        XCTAssertEqual(try outputs(r.id, stage: "private_tmp").map(\.path), ["ok"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/\(marker)"))
        // Nothing was written anywhere the commands aimed at.
        for path in ["/\(marker)", "\(scratch!)/\(marker)", "\(root!)/\(marker)", "/usr/share/\(marker)",
                     "\(root!)/tmp/\(marker)", "\(root!)/tmp/jobs/\(marker)"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), path)
        }
        XCTAssertEqual(files(under: scratch), [])
        XCTAssertFalse(files(under: root).contains { $0.hasSuffix(marker) })
        XCTAssertFalse(storeFilesBefore.contains { $0.hasSuffix(marker) })
        XCTAssertEqual(try blobContent(entry("a.txt", "x").hash), "x", "the input's blob is intact")
    }

    func testTheStoreIsOutOfReachExceptTheInput() throws {
        let p = try pipeline("""
            [[stage]]
            name = "look"
            command = ["sh", "-c", "cat {input} > {output_dir}/input; ls -A / > {output_dir}/root; ls -A /job > {output_dir}/job; find / -path /proc -prune -o -name 'catalog.sqlite*' -print > {output_dir}/found 2>/dev/null; cat \(root!)/catalog.sqlite > {output_dir}/catalog 2>/dev/null; echo $? > {output_dir}/catalog_status; id -u > {output_dir}/uid"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        // Another project's file, whose blob is in the same store.
        let other = try XCTUnwrap(store.createProject(name: "other", uid: 1000).id)
        _ = try sealedRun(other, [("secret.txt", "top secret")])
        let r = try seal(p, [("a.txt", "mine")])
        let done = try waitForRun(r.id)
        let errors = try jobs(r.id).map { $0.error ?? "" }
        XCTAssertEqual(done.status, .completed, "\(errors)")
        var seen: [String: String] = [:]
        for o in try outputs(r.id) { seen[o.path.description] = try blobContent(o.blob) }
        XCTAssertEqual(seen["input"], "mine")
        XCTAssertEqual(seen["found"], "", "no catalog anywhere in the sandbox")
        XCTAssertEqual(seen["catalog"], "")
        XCTAssertNotEqual(seen["catalog_status"], "0\n")
        XCTAssertEqual(seen["job"]?.split(separator: "\n").sorted(), ["in", "out", "tmp"], "its logs are kept out of its reach")
        let top = Set(seen["root"]?.split(separator: "\n").map(String.init) ?? [])
        XCTAssertTrue(top.isSuperset(of: ["usr", "etc", "job", "tmp", "proc", "dev"]), "\(top)")
        XCTAssertFalse(top.contains("root") || top.contains("home") || top.contains("var") || top.contains("work"), "\(top)")
        if getuid() == 0 {
            XCTAssertNotEqual(seen["uid"], "0\n", "a root daemon runs stages as an unprivileged user")
        }
        XCTAssertFalse(seen.values.contains { $0.contains("top secret") })
    }

    /// No network unless the stage says `network = true`: a TCP listener on the host's
    /// loopback is reachable only from the stage that asks.
    func testNetworkOnlyWhenTheStageAsksForIt() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        XCTAssertTrue(bound)
        let port = UInt16(bigEndian: addr.sin_port)
        let probe = "[\"bash\", \"-c\", \"if echo hi > /dev/tcp/127.0.0.1/\(port); then echo reached; else echo unreachable; fi > {output_dir}/net\"]"
        let p = try pipeline("""
            [[stage]]
            name = "offline"
            command = \(probe)
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "online"
            command = \(probe)
            inputs = "raw_source/*.txt"
            network = true
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        let done = try waitForRun(r.id)
        let errors = try jobs(r.id).map { $0.error ?? "" }
        XCTAssertEqual(done.status, .completed, "\(errors)")
        XCTAssertEqual(try blobContent(XCTUnwrap(outputs(r.id, stage: "offline").first).blob), "unreachable\n")
        XCTAssertEqual(try blobContent(XCTUnwrap(outputs(r.id, stage: "online").first).blob), "reached\n")
    }

    /// The daemon's descriptors (catalog, /dev/fuse, users' staged files) stay out of the
    /// command, and the log the daemon reads back is out of its reach: a symlink put where the
    /// command may write is never followed.
    func testTheCommandGetsNoDescriptorAndCannotAimTheDaemonsReads() throws {
        let p = try pipeline("""
            [[stage]]
            name = "fds"
            command = ["sh", "-c", "ls /proc/self/fd > {output_dir}/fds"]
            inputs = "raw_source/*.txt"

            [[stage]]
            name = "aim"
            command = ["sh", "-c", "ln -s /etc/passwd stderr.log; ln -s /etc/passwd /job/stderr.log; ln -s /etc/passwd {output_dir}/../stderr.log; exit 1"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        _ = try waitForRun(r.id)
        let fds = try blobContent(XCTUnwrap(outputs(r.id, stage: "fds").first).blob)
        XCTAssertEqual(fds, "0\n1\n2\n3\n", "stdin, stdout, stderr and ls's own listing only")
        let aim = try XCTUnwrap(jobs(r.id, stage: "aim").first)
        XCTAssertEqual(aim.status, .failed)
        XCTAssertFalse(aim.error?.contains("root:") ?? true, aim.error ?? "nil")
    }

    /// The daemon's environment (an administrator's exported credentials, say) stays out.
    func testTheCommandGetsItsOwnEnvironment() throws {
        setenv("ARTIFACTFS_TEST_SECRET", "hunter2", 1)
        defer { unsetenv("ARTIFACTFS_TEST_SECRET") }
        let p = try pipeline("""
            [[stage]]
            name = "env"
            command = ["sh", "-c", "env > {output_dir}/env"]
            inputs = "raw_source/*.txt"
            """)
        _ = try startRunner()
        let r = try seal(p, [("a.txt", "x")])
        XCTAssertEqual(try waitForRun(r.id).status, .completed)
        let env = try blobContent(XCTUnwrap(outputs(r.id).first).blob)
        XCTAssertFalse(env.contains("hunter2"), env)
        // sh adds PWD (and maybe SHLVL) of its own.
        let names = env.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
        XCTAssertEqual(Set(names).subtracting(["PWD", "SHLVL", "_"]), ["HOME", "LANG", "PATH", "TMPDIR"], env)
        XCTAssertTrue(env.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), env)
    }

    func testAStageUserThatDoesNotExistOrIsRootIsRefused() throws {
        guard getuid() == 0 else { return }
        XCTAssertThrowsError(try StageSandbox(userName: "no-such-user-\(UUID().uuidString.prefix(6))")) {
            XCTAssertEqual(($0 as? ArtifactError)?.code, .notFound)
        }
        XCTAssertThrowsError(try StageSandbox(userName: "root")) {
            XCTAssertEqual(($0 as? ArtifactError)?.code, .invalidArgument)
        }
    }
}
