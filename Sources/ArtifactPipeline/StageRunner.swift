import ArtifactCore
import CSystemShims
import Foundation
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Runs the durable queue beside the filesystem: a pool of worker threads that claim jobs,
/// reuse memoized outputs or run the stage command in an empty folder, and record the
/// result. It is the core's `RunSealedSink`; FUSE requests never wait on it.
public final class StageRunner: RunSealedSink {
    public let queue: JobQueue
    let store: ArtifactStore
    let workers: Int
    let logger: Logger
    /// Where stage commands run (`StageSandbox`).
    let sandbox: StageSandbox
    private let wake = DispatchSemaphore(value: 0)

    public init(store: ArtifactStore, workers: Int = ProcessInfo.processInfo.activeProcessorCount, sandbox: StageSandbox,
                logger: Logger) {
        self.store = store
        self.queue = JobQueue(catalog: store.catalog)
        self.workers = max(1, workers)
        self.sandbox = sandbox
        self.logger = logger
    }

    /// Resumes what a stop interrupted and starts the workers.
    public func start() throws {
        try queue.recover()
        for i in 0..<workers {
            let t = Thread { [self] in workLoop() }
            t.name = "artifactfs-stage-\(i)"
            t.start()
        }
    }

    public func runSealed(_ run: RunRecord) {
        do { try queue.start(runId: run.id!) } catch { logger.error("cannot queue run \(run.name): \(error)") }
        for _ in 0..<workers { wake.signal() }
    }

    private func workLoop() {
        while true {
            let job: JobRecord?
            do { job = try queue.claim() } catch {
                logger.error("cannot claim a job: \(error)")
                job = nil
            }
            guard let job else {
                // Idle: woken by a seal, or polling for retries and `pipeline rerun`.
                _ = wake.wait(timeout: .now() + .milliseconds(250))
                continue
            }
            process(job)
        }
    }

    func process(_ job: JobRecord) {
        do {
            guard let (definition, run, project) = try queue.definition(forRun: job.runId),
                  let stage = definition.stage(named: job.stage), let inputHash = job.inputBlob else {
                try queue.fail(job, error: "the run's pipeline definition no longer has this stage")
                return
            }
            // The memoized outputs are held while their rows go in, so no gc takes them meanwhile.
            if let outputs = try queue.memo(key: job.memoKey, inputBlob: inputHash),
               let held = try store.blobs.holdExisting(outputs.map(\.blob)) {
                defer { store.blobs.release(held) }
                try queue.complete(job, outputs: outputs, memoized: true)
                return
            }
            let result = try execute(stage: stage, job: job, input: inputHash, runName: run.name, project: project)
            switch result {
            case .success(let outputs, let adopted):
                // Held until the rows that name them are in (see `BlobStore.adopt`).
                defer { store.blobs.release(adopted) }
                try queue.complete(job, outputs: outputs, memoized: false)
            case .failure(let message):
                logger.warning("stage \(stage.name) on \(job.inputPath) of run \(run.name): \(message)")
                try queue.fail(job, error: message)
            }
        } catch {
            logger.error("stage job \(job.id.map(\.description) ?? "?") failed to record: \(error)")
            try? queue.fail(job, error: "\(error)")
        }
        wake.signal()
    }

    enum Result { case success([JobQueue.Output], BlobStore.Adopted), failure(String) }

    /// The last `bytes` bytes of the daemon's own log file at `path`, as text (never following
    /// a symlink, never reading more than that however much the command wrote).
    static func tail(of path: String, bytes: Int) -> String {
        guard let fd = try? Syscalls.open(path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK) else { return "" }
        defer { close(fd) }
        guard let st = try? Syscalls.fstat(fd), st.st_mode & S_IFMT == S_IFREG else { return "" }
        let start = max(0, Int(st.st_size) - bytes)
        var buffer = [UInt8](repeating: 0, count: Int(st.st_size) - start)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        return String(decoding: buffer.prefix(max(0, n)), as: UTF8.self)
    }

    /// Runs one command in its sandbox (`StageSandbox`) on `tmp/jobs/<id>-<attempt>/`: the
    /// input copied into `in/`, an empty `out/` and a private `tmp/`; registers only regular
    /// files inside `out/`.
    func execute(stage: StageDefinition, job: JobRecord, input: BlobHash, runName: String, project: String) throws -> Result {
        let jobDir = "\(store.root)/tmp/jobs/\(job.id!)-\(job.attempts)"
        // The command's stdout and stderr go beside its folder, out of its sandbox's reach: a
        // command could otherwise put a symlink in their place for the daemon to read.
        let stdoutLog = jobDir + ".stdout", stderrLog = jobDir + ".stderr"
        _ = try? FileManager.default.removeItem(atPath: jobDir)
        let inDir = "\(jobDir)/in", outDir = "\(jobDir)/out", tmpDir = "\(jobDir)/tmp"
        for dir in [inDir, outDir, tmpDir] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        sandbox.prepare(writable: [jobDir, outDir, tmpDir])
        defer {
            for path in [jobDir, stdoutLog, stderrLog] { _ = try? FileManager.default.removeItem(atPath: path) }
        }

        // The input keeps its name byte for byte, in the file and in the arguments.
        let name = job.inputPath.lastComponent
        let inputPath = PathBytes(inDir).appending(name)
        // A copy, not a link: a command that writes to its input must not damage the blob.
        try store.blobs.copy(input, to: inputPath, mode: 0o444)
        // The name without its last extension; a dot file is its own stem.
        let dot = name.bytes.first == UInt8(ascii: ".") ? nil : name.bytes.lastIndex(of: UInt8(ascii: "."))
        let stem = dot.map { PathBytes(Array(name.bytes[..<$0])) } ?? name
        // The paths the command sees inside its sandbox.
        let values: [String: PathBytes] = ["input": PathBytes(StageSandbox.input).appending(name), "output_dir": PathBytes(StageSandbox.output),
                                           "stem": stem, "name": name, "run": PathBytes(runName), "project": PathBytes(project)]
        let argv = stage.command.map { PipelineDefinition.substitute($0, values: values) }
        let sandboxed = sandbox.command(argv, jobDir: jobDir, inDir: inDir, outDir: outDir, tmpDir: tmpDir, network: stage.network)

        let outcome = ProcessRunner.run(argv: sandboxed, cwd: jobDir, stdout: stdoutLog, stderr: stderrLog, timeout: job.timeout)
        let stderrTail = Self.tail(of: stderrLog, bytes: 2000)
        switch outcome {
        case .spawnFailed(let err):
            return .failure("cannot start \(argv.first?.quoted ?? ""): \(Errno(rawValue: err))")
        case .timedOut:
            return .failure("timed out after \(stage.timeoutSeconds)s and was killed\n\(stderrTail)")
        case .exited(let code) where code != 0:
            return .failure("exit status \(code)\n\(stderrTail)")
        case .signaled(let sig):
            return .failure("killed by signal \(sig)\n\(stderrTail)")
        case .exited:
            break
        }
        // Anything the command left in its working folder besides in/, out/ and the logs was
        // written outside its output folder.
        let allowed: Set<String> = ["in", "out", "tmp"]
        let stray = ((try? FileManager.default.contentsOfDirectory(atPath: jobDir)) ?? []).filter { !allowed.contains($0) }
        if !stray.isEmpty {
            return .failure("wrote outside its output folder: \(stray.sorted().joined(separator: ", "))")
        }
        var files: [(rel: PathBytes, full: PathBytes, mode: Int64)] = []
        let outRoot = PathBytes(outDir)
        func walk(_ rel: PathBytes) throws -> String? {
            let full = outRoot.appending(rel)
            for (entry, _) in try Syscalls.listDirectory(full).sorted(by: { $0.name < $1.name }) {
                let childRel = rel.appending(entry)
                let st = try Syscalls.lstat(full.appending(entry))
                switch st.st_mode & S_IFMT {
                case S_IFREG:
                    // The blob is the store's, not the stage user's: it could write to it otherwise.
                    _ = lchown(full.appending(entry).description, getuid(), getgid())
                    files.append((childRel, full.appending(entry), Int64(st.st_mode & 0o777)))
                case S_IFDIR: if let problem = try walk(childRel) { return problem }
                case S_IFLNK: return "refused \(stage.name)/\(childRel.quoted): a symbolic link"
                default: return "refused \(stage.name)/\(childRel.quoted): not a regular file"
                }
            }
            return nil
        }
        if let problem = try walk(.empty) { return .failure(problem) }

        var outputs: [JobQueue.Output] = []
        var adoptions: [BlobStore.Adoption] = []
        for f in files {
            let d = try BlobStore.digest(fileAt: f.full)
            // A copy: the command may have kept a descriptor to its file (passed to another
            // process over a socket when it has network), which must never reach a blob.
            adoptions.append(BlobStore.Adoption(path: f.full, hash: d.hash, size: d.size, copying: true))
            outputs.append(JobQueue.Output(path: f.rel, blob: d.hash, size: d.size, mode: f.mode, blocks: d.blocks))
        }
        // Copies, and the job folder is removed afterwards: no blob shares an inode with the command's files.
        let adopted = try store.blobs.adopt(adoptions, referenced: store.catalog.referencedBlobs)
        return .success(outputs, adopted)
    }
}

/// Starts a command in its own process group and waits for it, killing the whole group
/// when the timeout passes.
enum ProcessRunner {
    enum Outcome: Equatable { case exited(Int32), signaled(Int32), timedOut, spawnFailed(Int32) }

    static func run(argv: [PathBytes], cwd: String, stdout: String, stderr: String, timeout: Double) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        afs_spawn_addchdir(&actions, cwd)
        // Nothing of the daemon's (catalog, /dev/fuse, users' staged files) reaches the command.
        afs_spawn_addclosefrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { $0.withCString { strdup($0) } } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, cargs[0]!, &actions, &attr, cargs, environ)
        if rc != 0 { return .spawnFailed(rc) }
        let deadline = monotonicNanoseconds() + UInt64(min(max(timeout, 0), 365 * 86_400) * 1e9)
        var status: Int32 = 0
        var delay: UInt32 = 1_000
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .exited(-1) }
            if monotonicNanoseconds() >= deadline {
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
        // The command is done; children it left behind in its group go too.
        kill(-pid, SIGKILL)
        if (status & 0x7f) == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }
}
