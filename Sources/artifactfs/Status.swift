import ArgumentParser
import ArtifactCore
import ArtifactPipeline
import Foundation

struct Status: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show projects and datasets, the runs of a project, one run, or what is uncommitted in a @branch folder.",
        discussion: """
            With a path inside a mounted datasets/<dataset>/@<branch>/ folder, lists what the next \
            commit would record under that path, like git status --short: A added, M changed \
            (bytes or mode), D deleted.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A project name or folder, or a path in a mounted @branch folder.")
    var project: String?

    @Argument(help: "A run id of that project.")
    var runID: String?

    func run() throws {
        do {
            // A path in a mounted @branch/ (`status .`, `status sub` there, as git status takes a path).
            if let project, runID == nil, isPathArgument(project) || FileManager.default.fileExists(atPath: project),
               let branch = try? ExtendedAttributes.get(absolutePath(project), ControlAttribute.branch) {
                return try workingTreeStatus(path: project, branch: branch)
            }
            guard let project else { return try overview(try global.open()) }
            let (store, p) = try global.openProject(project)
            let catalog = store.catalog
            if let runName = runID {
                guard let r = try catalog.run(projectId: p.id!, name: runName) else {
                    throw ArtifactError(.notFound, "no such run in project \(p.name)", path: runName)
                }
                let report = try RunReport.load(catalog: catalog, pipeline: JobQueue(catalog: catalog), runId: r.id!)!
                if json { FileHandle.standardOutput.write(report.jsonData()) } else { printHuman(report, order: stageOrder(store, p)) }
                return
            }
            let queue = JobQueue(catalog: catalog)
            let reports = try catalog.runs(projectId: p.id!).map { RunReport(run: $0, project: p, jobs: try queue.jobs(runId: $0.id!)) }
            if json { try printJSON(reports); return }
            if reports.isEmpty { print("project \(p.name) has no runs yet") }
            let order = stageOrder(store, p)
            for r in reports { printHuman(r, order: order) }
            let interrupted = interruptedFiles(store, p.id!)
            if !interrupted.isEmpty {
                print("incoming/: \(plural(interrupted.count, "interrupted file")), kept out of seals "
                      + "(open for writing when the daemon stopped; write again, or artifactfs seal the folder to keep as is):")
                for f in interrupted { print("  \(f.relativePath.quoted)\t\(f.size) bytes") }
            }
        } catch { throw fail(error) }
    }

    /// `status` with no argument: every project and every dataset, one line each.
    private func overview(_ store: ArtifactStore) throws {
        let catalog = store.catalog
        let projects = try catalog.projects().map { p -> ProjectLine in
            let runs = try catalog.runs(projectId: p.id!)
            return ProjectLine(project: p.name, runs: runs.count, latestRun: runs.last?.name,
                               interrupted: interruptedFiles(store, p.id!).count)
        }
        let worktrees = Worktrees(store: store, trees: VersionTrees(catalog: catalog))
        let datasets = try catalog.datasets().map { d -> DatasetLine in
            let branches = try catalog.refs(datasetId: d.id!, kind: .branch)
            let main = try branches.first { $0.name == "main" }?.versionId.flatMap { try catalog.version(id: $0)?.name }
            return DatasetLine(dataset: d.name, versions: try catalog.versionCount(datasetId: d.id!), branches: branches.count,
                               tags: try catalog.refs(datasetId: d.id!, kind: .tag).count, main: main,
                               uncommitted: try branches.filter { try worktrees.hasChanges(branch: $0.id!) }.map(\.name))
        }
        if json { try printJSON(Overview(projects: projects, datasets: datasets)); return }
        if projects.isEmpty && datasets.isEmpty {
            print("no projects or datasets (mkdir MOUNT/projects/NAME or MOUNT/datasets/NAME creates one)")
        }
        for p in projects {
            let interrupted = p.interrupted == 0 ? "" : "\t\(p.interrupted) interrupted in incoming/"
            print("projects/\(p.project)\t\(plural(p.runs, "run"))\t\(p.latestRun ?? "")\(interrupted)")
        }
        for d in datasets {
            let dirty = d.uncommitted.isEmpty ? "" : "\tuncommitted: " + d.uncommitted.map { "@\($0)" }.joined(separator: " ")
            print("datasets/\(d.dataset)\t\(plural(d.versions, "version"))\t\(plural(d.branches, "branch"))"
                  + "\t\(plural(d.tags, "tag"))\t@main \(d.main ?? "(empty)")\(dirty)")
        }
    }

    /// `status PATH` in a mounted `@branch/`: the changes the next commit records under PATH.
    private func workingTreeStatus(path: String, branch: String) throws {
        let target = absolutePath(path)
        let datasetName = try ExtendedAttributes.get(target, ControlAttribute.dataset)
        let under = (try? ExtendedAttributes.get(target, ControlAttribute.path)).map { PathBytes($0) } ?? .empty
        let (store, ds) = try global.openDataset(target)
        guard let ref = try store.catalog.ref(datasetId: ds.id!, kind: .branch, name: branch) else {
            throw ArtifactError(.notFound, "no such branch of \(datasetName)", path: "@\(branch)")
        }
        let committer = DatasetCommitter(worktrees: Worktrees(store: store, trees: VersionTrees(catalog: store.catalog)))
        let changes = try committer.pendingChanges(branch: ref.id!).filter { under.isEmpty || $0.path == under || $0.path.isBelow(under) }
        let head = try ref.versionId.flatMap { try store.catalog.version(id: $0)?.name }
        if json {
            try printJSON(BranchStatus(dataset: ds.name, branch: branch, head: head, changes: changes.map { ChangeLine($0) }))
            return
        }
        if changes.isEmpty {
            if !quiet { print("nothing to commit in @\(branch) of \(ds.name) (at \(head ?? "no version yet"))") }
            return
        }
        for c in changes {
            let mark = switch c.kind { case .added: "A"; case .changed: "M"; case .deleted: "D" }
            let isFolder = (c.next ?? c.head)?.isDirectory == true
            print("\(mark) \(c.path.quoted)\(isFolder ? "/" : "")\(c.interrupted ? "\t(interrupted: open for writing when the daemon stopped)" : "")")
        }
    }

    private struct ProjectLine: Codable {
        var project: String; var runs: Int; var latestRun: String?; var interrupted: Int
        enum CodingKeys: String, CodingKey { case project, runs, latestRun = "latest_run", interrupted }
    }
    private struct DatasetLine: Codable {
        var dataset: String; var versions: Int; var branches: Int; var tags: Int; var main: String?; var uncommitted: [String]
    }
    private struct Overview: Codable { var projects: [ProjectLine]; var datasets: [DatasetLine] }
    private struct BranchStatus: Encodable { var dataset: String; var branch: String; var head: String?; var changes: [ChangeLine] }
    /// One change in `status --json`: `path` (and `path_bytes` when not UTF-8), its kind, and
    /// the size and SHA-256 the next commit records (nil for a deletion or a folder).
    private struct ChangeLine: Encodable {
        var change: WorkingTreeChange
        init(_ change: WorkingTreeChange) { self.change = change }
        enum Keys: String, CodingKey { case path, pathBytes = "path_bytes", kind, folder, size, sha256, interrupted }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            let fields = change.path.jsonFields("path")
            try c.encode(fields["path"]!, forKey: .path)
            try c.encodeIfPresent(fields["path_bytes"], forKey: .pathBytes)
            try c.encode(change.kind.rawValue, forKey: .kind)
            try c.encode((change.next ?? change.head)?.isDirectory == true, forKey: .folder)
            try c.encode(change.next.flatMap { $0.isDirectory ? nil : $0.size }, forKey: .size)
            try c.encode(change.next?.blob?.hex, forKey: .sha256)
            try c.encode(change.interrupted, forKey: .interrupted)
        }
    }

    /// The project's stages in pipeline order (a stage after those it needs); nil: no pipeline.
    private func stageOrder(_ store: ArtifactStore, _ p: ProjectRecord) -> [String]? {
        guard let source = try? JobQueue(catalog: store.catalog).definitionSource(projectId: p.id!),
              let definition = try? PipelineDefinition.parse(source) else { return nil }
        return definition.stages.map(\.name)
    }

    /// Files in a project's incoming/ that a crash cut short (`StagingMark.interrupted`).
    private func interruptedFiles(_ store: ArtifactStore, _ projectId: ProjectID) -> [StagedFile] {
        ((try? store.staging.scan(projectId: projectId).files) ?? []).filter(\.interrupted)
    }

    private func printHuman(_ r: RunReport, order: [String]?) {
        print("\(r.id)  \(r.status)  files: \(r.files.new) new, \(r.files.superseded) superseded, \(r.files.duplicate) duplicate  \(plural(Int(r.bytes), "byte"))")
        guard runID != nil else { return }
        // Pipeline order; a stage the pipeline no longer has (changed since) after, by name.
        let rank = Dictionary((order ?? []).enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, stage) in r.stages.sorted(by: { (rank[$0.key] ?? Int.max, $0.key) < (rank[$1.key] ?? Int.max, $1.key) }) {
            print("  stage \(name): \(stage.status)")
            for (input, i) in stage.inputs.sorted {
                let memo = i.memoized ? " (memoized)" : ""
                print("    \(input.quoted): \(i.status), \(i.attempts) attempt\(i.attempts == 1 ? "" : "s")\(memo)")
                if let e = i.error, i.status != "completed" {
                    for line in e.split(separator: "\n").suffix(5) { print("      \(line)") }
                }
            }
        }
    }
}

/// Whether a command-line argument names a path (not a project or dataset name): names never hold `/`.
func isPathArgument(_ argument: String) -> Bool { argument.contains("/") || argument == "." || argument == ".." }

func printJSON<T: Encodable>(_ value: T) throws {
    FileHandle.standardOutput.write(try NameKeyedJSON.encode(value))
}
