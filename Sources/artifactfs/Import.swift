import ArgumentParser
import ArtifactCore
import ArtifactPipeline
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Import: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register an existing folder tree as one new run of a project, or one new version of a dataset branch.",
        discussion: """
            Works whether the store is mounted or not (a mount shows the run or version at once). \
            Each file is read once, hashed while it is copied into the store; the folder is never \
            changed or linked. A version's tree equals DIR: files of the branch that DIR lacks are \
            deleted in it. Resumable: after a kill, run the same command again; files already \
            stored are not read again, and the run or version appears whole or not at all. \
            Files that cannot be read are reported (artifactfs: PATH: reason) and left out; the \
            rest is registered (the run ends completed_with_errors) and the exit code is 6.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The folder to import.")
    var dir: String

    @Option(help: "Register DIR as a new run of this project (created if missing).")
    var project: String?

    @Option(help: "Register DIR as a new version of this dataset (created if missing).")
    var dataset: String?

    @Option(help: "The dataset's branch (default main; forked from main if missing).")
    var branch: String?

    @Option(name: .short, help: "The version's message.")
    var message: String?

    @Flag(help: "Print what would happen (files new, duplicate, superseded, deleted; bytes to store); change nothing.")
    var dryRun = false

    @Option(help: "Files stored and recorded per catalog transaction (what a rerun after a kill keeps).")
    var batchSize = 1_000


    func validate() throws {
        guard (project == nil) != (dataset == nil) else { throw ValidationError("give exactly one of --project P or --dataset D") }
        if project != nil, branch != nil || message != nil { throw ValidationError("--branch and -m go with --dataset") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be 1 or more") }
    }

    func run() throws {
        let summary: TreeImporter.Summary
        do {
            let target: TreeImporter.Target = project.map { .project($0) } ?? .dataset(dataset!, branch: branch ?? "main", message: message)
            let store = try ArtifactStore(root: global.root, create: false, readOnly: dryRun)
            let importer = try TreeImporter(store: store, source: absolutePath(dir), target: target)
            importer.batchSize = batchSize
            let env = ProcessInfo.processInfo.environment
            TestHooks.install(on: importer, environment: env)
            let queue = ImportedRunQueue(queue: JobQueue(catalog: store.catalog))
            importer.sink = queue
            importer.announce = { announce($0, store: store.root, target: target) }
            let bar = ProgressLine(label: dryRun ? "import (dry run)" : "import", enabled: !json && !quiet)
            importer.countsTotals = bar.enabled
            let progress: (TreeImporter.Progress) -> Void = { bar.update($0.files, $0.totalFiles, bytes: $0.bytes, totalBytes: $0.totalBytes) }
            let failed: (TreeImporter.Failure) -> Void = { f in
                bar.interrupt()
                FileHandle.standardError.write(Data("artifactfs: \(f.path): \(f.reason)\n".utf8))
            }
            summary = dryRun ? try importer.dryRun(progress: progress, failed: failed) : try importer.run(progress: progress, failed: failed)
            bar.finish()
        } catch { throw fail(error) }
        if json { try printJSON(summary) } else { printText(summary) }
        if summary.filesFailed > 0 { throw ExitCode(ExitCodes.someFilesFailed) }
    }

    private func printText(_ s: TreeImporter.Summary) {
        var counts = "\(s.filesNew) new, \(s.filesDuplicate) duplicate, \(s.filesSuperseded) superseded"
        if dataset != nil { counts += ", \(s.filesDeleted) deleted" }
        if s.filesFailed > 0 { counts += ", \(s.filesFailed) failed" }
        if s.dryRun {
            print("would import: \(counts); \(formatBytes(s.bytesStored)) to store")
            return
        }
        if s.filesReused > 0 { counts += " (\(s.filesReused) stored by an earlier attempt)" }
        if let run = s.run {
            print("run \(run): \(counts); \(formatBytes(s.bytesStored)) stored")
        } else if let version = s.version {
            print("version \(version): \(counts); \(formatBytes(s.bytesStored)) stored")
        } else {
            print("nothing to import: the branch already equals \(absolutePath(dir))")
        }
    }
}

/// Hands an imported run to the pipeline as the daemon's `StageRunner` does for a seal: its
/// jobs are queued in the catalog, where a mounted daemon's workers (or those of the next
/// mount) take them.
final class ImportedRunQueue: RunSealedSink, @unchecked Sendable {
    let queue: JobQueue
    init(queue: JobQueue) { self.queue = queue }
    func runSealed(_ run: RunRecord) {
        do { try queue.start(runId: run.id!) } catch {
            // The run stays in progress with no pipeline: the next mount starts it (`JobQueue.recover`).
            FileHandle.standardError.write(Data("artifactfs: run \(run.name): not queued for the pipeline yet (\(error)); the next mount queues it\n".utf8))
        }
    }
}

/// Tells every mount of the store about the new run or version, so it shows at once.
private func announce(_ summary: TreeImporter.Summary, store: String, target: TreeImporter.Target) {
    for mountpoint in MountControl.mountpoints(ofStore: store) {
        let path: String, name: String
        switch target {
        case .project(let p):
            guard let run = summary.run else { return }
            (path, name) = ("\(mountpoint)/projects/\(p)/incoming", run)
        case .dataset(let d, let b, _):
            guard let version = summary.version else { return }
            (path, name) = ("\(mountpoint)/datasets/\(d)/@\(b)", version)
        }
        do { try MountControl.announceImport(at: path, name: name) } catch {
            FileHandle.standardError.write(Data("artifactfs: \(error)\n".utf8))
        }
    }
}


/// Hidden hooks for the integration tests, read from the environment: kill the import with
/// SIGKILL after batch K (`ARTIFACTFS_IMPORT_KILL_AFTER=batch:K`) or once the run or version
/// is registered (`=registered`), and refuse to open some relative paths as if they were
/// unreadable (`ARTIFACTFS_IMPORT_UNREADABLE=a/b:c`; root reads any mode).
enum TestHooks {
    static func install(on importer: TreeImporter, environment env: [String: String]) {
        if let kill = env["ARTIFACTFS_IMPORT_KILL_AFTER"] {
            if kill == "registered" {
                importer.afterRegistering = { raise(SIGKILL) }
            } else if kill.hasPrefix("batch:"), let k = Int(kill.dropFirst(6)) {
                importer.afterBatch = { if $0 == k { raise(SIGKILL) } }
            }
        }
        if let paths = env["ARTIFACTFS_IMPORT_UNREADABLE"] {
            importer.refusedPaths = Set(paths.split(separator: ":").map { PathBytes(String($0)) })
        }
    }
}
