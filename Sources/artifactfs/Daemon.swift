import ArtifactCore
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Starts the mount daemon in its own session and waits until it reports "ready" (or an
/// error) on a pipe, so that `artifactfs mount` returns only once the mount works.
enum Daemon {
    static func start(arguments: [String], storeRoot: String, mountpoint: String) throws {
        guard ArtifactStore.exists(at: storeRoot) else {
            throw ArtifactError(.notFound, "not an artifactfs store (no catalog.sqlite); `artifactfs init --store DIR` creates one", path: storeRoot)
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ArtifactError(.io, "cannot create a pipe") }
        let readEnd = fds[0], writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)

        // argv[0] as this process was called; the program itself is /proc/self/exe, this very
        // binary, whatever bytes its path holds.
        var childArgs = [CommandLine.arguments.first ?? "artifactfs"] + arguments.dropFirst()
        childArgs += ["--foreground", "--ready-fd", String(writeEnd)]
        // The daemon must open the store this process resolved, wherever it was found.
        if !arguments.contains(where: { $0 == "--store" || $0.hasPrefix("--store=") }) { childArgs += ["--store", storeRoot] }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let log = "\(storeRoot)/daemon.log"
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(0x80))  // POSIX_SPAWN_SETSID: survive the shell

        var pid: pid_t = 0
        let cargs = childArgs.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attr, cargs, environ)
        close(writeEnd)
        guard rc == 0 else { close(readEnd); throw ArtifactError(.io, "cannot start the daemon: \(Errno(rawValue: rc))") }

        var collected = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(readEnd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            collected += buffer[0..<n]
        }
        close(readEnd)
        let message = String(decoding: collected, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if message == "ready" { return }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        // The daemon reports "error:<code>: <what went wrong>".
        if message.hasPrefix("error:"), let colon = message.dropFirst(6).firstIndex(of: ":") {
            let code = ArtifactError.Code(rawValue: String(message[message.index(message.startIndex, offsetBy: 6)..<colon])) ?? .io
            throw ArtifactError(code, String(message[message.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        throw ArtifactError(.io, "the daemon exited before the mount was ready (see \(log))", path: mountpoint)
    }

    /// Tells the waiting parent how the mount went, then closes the pipe.
    static func report(fd: Int32, _ message: String) {
        let bytes = Array((message + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Runs a helper tool and returns its exit status.
    static func runTool(_ path: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        do { try p.run() } catch { return 127 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}
