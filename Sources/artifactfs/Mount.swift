import ArgumentParser
import ArtifactCore
import ArtifactFUSE
import ArtifactPipeline
import Foundation
import Logging
import SystemPackage

struct Mount: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mount a store. Returns once the mount is ready; the daemon logs to STORE/daemon.log.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Folder to mount on (created if missing; must be empty).")
    var mountpoint: String

    @Flag(help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Flag(name: .customLong("allow-other"), help: "Share the mount with other users: grants decide who may read, write or administer each project and dataset (needs user_allow_other in /etc/fuse.conf unless root).")
    var allowOther = false

    @Flag(name: .customLong("root-is-admin"), help: "On a shared mount, root administers every project and dataset (default: root needs grants like anyone).")
    var rootIsAdmin = false

    @Option(name: .customLong("quiet-period"), help: "Seconds incoming/ must be quiet, with no writer open, before it seals.")
    var quietPeriod: Double = 1.0

    @Option(help: "Stage commands run at once (default: the number of cores).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("stage-user"), help: "The user stage commands run as when the daemon runs as root (default: nobody).")
    var stageUser = "nobody"

    @Option(name: .customLong("ready-fd"), help: .hidden)
    var readyFD: Int32?

    func validate() throws {
        guard quietPeriod >= 0, quietPeriod.isFinite else { throw ValidationError("--quiet-period must be 0 or more seconds") }
        guard workers >= 1 else { throw ValidationError("--workers must be 1 or more") }
        if rootIsAdmin && !allowOther { throw ValidationError("--root-is-admin is for a mount shared with --allow-other") }
    }

    func run() throws {
        let mnt = absolutePath(mountpoint)
        if !foreground {
            do { try Daemon.start(arguments: CommandLine.arguments, storeRoot: global.root, mountpoint: mnt) } catch {
                throw fail(error)
            }
            if json {
                let pid = (try? ExtendedAttributes.get(mnt, ControlAttribute.pid)).flatMap { Int($0) }
                try printJSON(MountLine(store: global.root, mountpoint: mnt, pid: pid))
            } else if !quiet {
                print("artifactfs: mounted \(global.root) at \(mnt)")
            }
            return
        }
        do {
            try serve(mountpoint: mnt)
        } catch {
            if let fd = readyFD {
                let code = (error as? ArtifactError)?.code.rawValue ?? ArtifactError.Code.io.rawValue
                Daemon.report(fd: fd, "error:\(code): \(error)")
            }
            throw fail(error)
        }
    }

    /// `mount --json`: `{"store", "mountpoint", "pid"}` (the daemon's process id).
    private struct MountLine: Codable { var store: String; var mountpoint: String; var pid: Int? }

    private func serve(mountpoint mnt: String) throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "artifactfs")
        logger.logLevel = .info
        if !FileManager.default.fileExists(atPath: mnt) {
            try? FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        }
        try checkMountpoint(mnt)
        ArtifactFileSystem.raiseDescriptorLimit()
        let store = try global.open()
        try store.checkPrivate(shared: allowOther)
        try store.lockForMount()
        let seals = SealCoordinator(catalog: store.catalog, blobs: store.blobs, staging: store.staging, logger: logger)
        let runner = StageRunner(store: store, workers: workers, sandbox: try StageSandbox(userName: stageUser), logger: logger)
        seals.sink = runner
        try seals.recover()
        try runner.start()
        let access = AccessPolicy(catalog: store.catalog, shared: allowOther, rootIsAdmin: rootIsAdmin)
        let fs = ArtifactFileSystem(store: store, seals: seals, pipeline: runner.queue, access: access, control: StoreChangeHandler(), logger: logger)
        try fs.namespace.worktrees.recover()
        var options = MountOptions(mountpoint: mnt)
        options.source = store.root
        let session = FUSESession(fileSystem: fs, options: options)
        try session.mount()
        logger.info("mounted \(store.root) at \(mnt)")

        QuietPeriodScheduler(seals: seals, committer: fs.committer, quietPeriod: quietPeriod).start()

        if let fd = readyFD { Daemon.report(fd: fd, "ready") }
        let rc = session.run()
        logger.info("unmounted \(mnt)")
        do { try store.catalog.checkpoint() } catch { logger.warning("\(error)") }
        if rc != 0 { throw ExitCode(ExitCodes.failure) }
    }
}

/// Refuses a mountpoint that is already a mount or holds files: mounting would hide them.
/// A dead artifactfs mount there (its daemon killed) is detached first, as the systemd
/// unit's ExecStartPre does; a dead mount of another filesystem is named, with the command
/// that detaches it.
func checkMountpoint(_ mnt: String) throws {
    if MountControl.isDeadMount(mnt) {
        guard detachDeadMount(mnt) else {
            throw ArtifactError(.busy, "a dead artifactfs mount is here and fusermount3 could not detach it; try `fusermount3 -uz \(mnt)`", path: mnt)
        }
    } else if case .failure(let e as Errno) = Result(catching: { try Syscalls.lstat(mnt) }), ArtifactError.code(for: e) == .daemonGone {
        throw ArtifactError(.daemonGone, "a dead FUSE mount of another filesystem is here (its daemon stopped); `fusermount3 -uz \(mnt)` detaches it", path: mnt)
    }
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: mnt, isDirectory: &isDir), isDir.boolValue else {
        throw ArtifactError(.notFound, "the mountpoint is not a folder", path: mnt)
    }
    if let here = try? Syscalls.lstat(mnt), let parent = try? Syscalls.lstat(mnt + "/.."),
       here.st_dev != parent.st_dev || here.st_ino == parent.st_ino {
        throw ArtifactError(.busy, "something is already mounted here", path: mnt)
    }
    if let entries = try? FileManager.default.contentsOfDirectory(atPath: mnt), !entries.isEmpty {
        throw ArtifactError(.invalidArgument, "the mountpoint is not empty (mounting would hide \(entries.count) entries)", path: mnt)
    }
}

struct Unmount: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(abstract: "Unmount a mount and wait for its daemon to finish.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The mountpoint.")
    var mountpoint: String

    func run() throws {
        let mnt = absolutePath(mountpoint)
        if MountControl.isDeadMount(mnt) {
            guard detachDeadMount(mnt) else {
                throw fail(ArtifactError(.busy, "fusermount3 could not detach the dead mount; try `fusermount3 -uz \(mnt)`", path: mnt))
            }
            try report(mnt, daemonHadStopped: true)
            return
        }
        let pid = (try? ExtendedAttributes.get(mnt, ControlAttribute.pid)).flatMap { Int32($0) }
        guard pid != nil else {
            throw fail(ArtifactError(.notMounted, "not an artifactfs mount", path: mnt))
        }
        let rc = Daemon.runTool("/bin/fusermount3", ["-u", mnt])
        if rc != 0 {
            throw fail(ArtifactError(.busy, "fusermount3 could not unmount it (is a process using it?)", path: mnt))
        }
        if let pid {
            // The daemon closes the catalog on its way out; wait so a new mount finds it free.
            for _ in 0..<1200 where kill(pid, 0) == 0 { usleep(50_000) }
        }
        try report(mnt, daemonHadStopped: false)
    }

    /// `unmount --json`: `{"mountpoint", "daemon_had_stopped"}`.
    private func report(_ mnt: String, daemonHadStopped: Bool) throws {
        struct UnmountLine: Codable {
            var mountpoint: String; var daemonHadStopped: Bool
            enum CodingKeys: String, CodingKey { case mountpoint, daemonHadStopped = "daemon_had_stopped" }
        }
        if json { try printJSON(UnmountLine(mountpoint: mnt, daemonHadStopped: daemonHadStopped)); return }
        if quiet { return }
        print("artifactfs: unmounted \(mnt)" + (daemonHadStopped ? " (its daemon had stopped; files then open for writing stay in incoming/, marked interrupted)" : ""))
    }
}

/// Detaches the dead mount at `mnt` (fusermount3 -u, else lazily with -uz, which also works
/// while a process still has a folder of it open). True when it is gone.
func detachDeadMount(_ mnt: String) -> Bool {
    Daemon.runTool("/bin/fusermount3", ["-u", mnt]) == 0 || Daemon.runTool("/bin/fusermount3", ["-u", "-z", mnt]) == 0
}
