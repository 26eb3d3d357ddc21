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
            (bytes or mode), D deleted. Run with no argument inside such a folder, the whole \
            branch's; elsewhere (or with --store), every project and dataset.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A project name or folder, or a path in a mounted @branch folder.")
    var project: String?

    @Argument(help: "A run id of that project.")
    var runID: String?

    func run() throws {
        do {
            // A path in a mount (`status .`, or in a @branch/ `status sub` and `status gone.txt`,
            // as git status takes a path): the working tree, the project or the store there.
            if let project, isPathArgument(project) || Syscalls.exists(project) || MountedPath.currentFolderIsInABranch {
                if let located = try MountedPath.locate(project) {
                    if let branch = located.attribute(ControlAttribute.branch) {
                        if runID != nil { throw ValidationError("give one path in a @branch folder") }
                        return try workingTreeStatus(located, branch: branch)
                    }
                    if located.anchor == located.mountpoint && located.rest.isEmpty, global.store == nil,
                       let root = located.attribute(ControlAttribute.store) {
                        return try overview(try ArtifactStore(root: root, create: false))
                    }
                    if located.attribute(ControlAttribute.project) == nil {
                        throw ArtifactError(.notFound, "not a project or @branch folder (artifactfs status with no argument lists all)", path: located.absolute)
                    }
                } else if isPathArgument(project) {
                    throw ArtifactError(.notMounted, "not in an artifactfs mount", path: absolutePath(project))
                }
            }
            guard let project else {
                // Inside a @branch/, `status` is that working tree's, whole, as git status is.
                if global.store == nil, let here = try MountedPath.locate("."), let branch = here.attribute(ControlAttribute.branch) {
                    return try workingTreeStatus(here, branch: branch, under: .empty)
                }
                return try overview(try global.open())
            }
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
    private func workingTreeStatus(_ located: MountedPath, branch: String, under: PathBytes? = nil) throws {
        let datasetName = located.attribute(ControlAttribute.dataset) ?? "?"
        let under = under ?? located.treePath ?? .empty
        let (store, ds) = try global.openDataset(located.anchor)
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
            let shown = isFolder ? PathBytes(c.path.bytes + [UInt8(ascii: "/")]) : c.path
            print("\(mark) \(shown.quoted)\(c.interrupted ? "\t(interrupted: open for writing when the daemon stopped)" : "")")
        }
    }

    private struct ProjectLine: Encodable {
        var project: String; var runs: Int; var latestRun: String?; var interrupted: Int
        enum CodingKeys: String, CodingKey { case project, runs, latestRun = "latest_run", interrupted }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(project, forKey: .project); try c.encode(runs, forKey: .runs)
            try c.encode(latestRun, forKey: .latestRun); try c.encode(interrupted, forKey: .interrupted)
        }
    }
    private struct DatasetLine: Encodable {
        var dataset: String; var versions: Int; var branches: Int; var tags: Int; var main: String?; var uncommitted: [String]
        enum CodingKeys: String, CodingKey { case dataset, versions, branches, tags, main, uncommitted }
        /// Every key, `main` null for a dataset with no version yet.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(dataset, forKey: .dataset); try c.encode(versions, forKey: .versions)
            try c.encode(branches, forKey: .branches); try c.encode(tags, forKey: .tags)
            try c.encode(main, forKey: .main); try c.encode(uncommitted, forKey: .uncommitted)
        }
    }
    private struct Overview: Encodable { var projects: [ProjectLine]; var datasets: [DatasetLine] }
    private struct BranchStatus: Encodable {
        var dataset: String; var branch: String; var head: String?; var changes: [ChangeLine]
        enum CodingKeys: String, CodingKey { case dataset, branch, head, changes }
        /// Every key, `head` null for a branch with no version yet.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(dataset, forKey: .dataset); try c.encode(branch, forKey: .branch)
            try c.encode(head, forKey: .head); try c.encode(changes, forKey: .changes)
        }
    }
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
