import Foundation

/// Resolves the read-only virtual tree (projects, runs, latest, history) from the catalog.
///
/// It knows nothing of FUSE: the adapter asks it for lookups, listings, attributes, content
/// and extended attributes, and serves incoming/ from disk itself.
public final class Namespace: Sendable {
    public let store: ArtifactStore
    var catalog: Catalog { store.catalog }
    let startNs = Int64(Date().timeIntervalSince1970 * 1e9)

    public let trees: VersionTrees
    public let worktrees: Worktrees
    let datasetLogs = DatasetLogCache()
    /// The pipeline's definitions and jobs (nil: no pipeline shown).
    let pipeline: (any PipelineState)?

    public init(store: ArtifactStore, pipeline: (any PipelineState)? = nil) {
        self.store = store
        self.pipeline = pipeline
        self.trees = VersionTrees(catalog: store.catalog)
        self.worktrees = Worktrees(store: store, trees: trees)
    }

    // MARK: lookup

    /// The child `name` of `parent`, or nil when there is none.
    public func lookup(_ parent: Node, _ name: PathBytes) throws -> Node? {
        // Projects, runs, stages and refs have text names (NameRules); bytes that are not
        // UTF-8 name none of them ("\0" matches no name: NameRules refuse NUL).
        let text = name.validUTF8 ?? "\u{0}"
        switch parent {
        case .root:
            switch name {
            case "projects": return .projects
            case "datasets": return .datasets
            default: return nil
            }
        case .projects:
            return try catalog.project(named: text).map { .project($0.id!) }
        case .datasets, .dataset, .worktree, .versions, .tags, .versionDir, .versionFile, .datasetLog:
            return try lookupDataset(parent, name)
        case .project(let p):
            switch name {
            case "incoming": return .incoming(p)
            case "runs": return .runs(p)
            case "latest": return .latest(project: p, dir: "")
            case "history": return .history(project: p, dir: "")
            case "pipeline.toml": return try pipeline?.definitionSource(projectId: p) == nil ? nil : .pipelineDefinition(p)
            default: return nil
            }
        case .runs(let p):
            return try catalog.run(projectId: p, name: text).map { .run($0.id!) }
        case .run(let r):
            switch name {
            case "raw_source": return .runSource(run: r, dir: "")
            case ".run.json": return .runJSON(r)
            default: return try (pipeline?.stages(runId: r) ?? []).contains(text) ? .stageOutputs(run: r, stage: text, dir: .empty) : nil
            }
        case .stageOutputs(let r, let stage, let dir):
            if let o = try catalog.output(runId: r, stage: stage, dir: dir, name: name) { return .output(o.id!) }
            if try catalog.outputHasDirectory(runId: r, stage: stage, parent: dir, name: name) {
                return .stageOutputs(run: r, stage: stage, dir: dir.appending(name))
            }
            return nil
        case .runSource(let r, let dir):
            if let f = try catalog.runFile(runId: r, dir: dir, name: name) { return .file(f.linkGroup ?? f.id!) }
            if try catalog.runHasDirectory(runId: r, parent: dir, name: name) { return .runSource(run: r, dir: dir.appending(name)) }
            return nil
        case .latest(let p, let dir):
            if let f = try catalog.latestFile(projectId: p, dir: dir, name: name) { return .file(f.linkGroup ?? f.id!) }
            if try catalog.latestHasDirectory(projectId: p, parent: dir, name: name) { return .latest(project: p, dir: dir.appending(name)) }
            return nil
        case .history(let p, let dir):
            if let f = try catalog.latestFile(projectId: p, dir: dir, name: name) { return .historyOfFile(f.id!) }
            if try catalog.latestHasDirectory(projectId: p, parent: dir, name: name) { return .history(project: p, dir: dir.appending(name)) }
            return nil
        case .historyOfFile(let id):
            let f = try historyPath(id)
            return try catalog.historyVersion(projectId: f.projectId, path: f.path, runName: text).map { .file($0.id!) }
        case .incoming, .file, .runJSON, .output, .pipelineDefinition:
            return nil
        }
    }

    // MARK: listing

    public func children(_ node: Node) throws -> [DirectoryEntry] {
        switch node {
        case .root:
            return [entry("datasets", .datasets), entry("projects", .projects)].compactMap { $0 }
        case .projects:
            return try catalog.projects().map { DirectoryEntry(name: PathBytes($0.name), node: .project($0.id!), attributes: projectAttributes($0)) }
        case .datasets, .dataset, .worktree, .versions, .tags, .versionDir, .versionFile, .datasetLog:
            return try datasetChildren(node)
        case .project(let p):
            guard let project = try catalog.project(id: p) else { return [] }
            let base = projectAttributes(project)
            // incoming/ is served from disk; the FUSE adapter adds it to this listing.
            var out = [
                DirectoryEntry(name: "history", node: .history(project: p, dir: .empty), attributes: base),
                DirectoryEntry(name: "latest", node: .latest(project: p, dir: .empty), attributes: base),
                DirectoryEntry(name: "runs", node: .runs(p), attributes: base),
            ]
            if try pipeline?.definitionSource(projectId: p) != nil {
                out.append(DirectoryEntry(name: "pipeline.toml", node: .pipelineDefinition(p), attributes: try attributes(.pipelineDefinition(p))))
            }
            return out
        case .runs(let p):
            return try catalog.runs(projectId: p).map { DirectoryEntry(name: PathBytes($0.name), node: .run($0.id!), attributes: runAttributes($0)) }
        case .run(let r):
            guard let run = try catalog.run(id: r) else { return [] }
            let dirAttrs = runAttributes(run)
            return [
                DirectoryEntry(name: ".run.json", node: .runJSON(r), attributes: try attributes(.runJSON(r))),
                DirectoryEntry(name: "raw_source", node: .runSource(run: r, dir: .empty), attributes: try attributes(.runSource(run: r, dir: .empty))),
            ] + (try pipeline?.stages(runId: r) ?? []).map {
                DirectoryEntry(name: PathBytes($0), node: .stageOutputs(run: r, stage: $0, dir: .empty), attributes: dirAttrs)
            }
        case .stageOutputs(let r, let stage, let dir):
            guard let run = try catalog.run(id: r) else { return [] }
            let dirAttrs = runAttributes(run)
            var out = try catalog.outputSubdirectories(runId: r, stage: stage, parent: dir).map {
                DirectoryEntry(name: $0, node: .stageOutputs(run: r, stage: stage, dir: dir.appending($0)), attributes: dirAttrs)
            }
            out += try catalog.outputs(runId: r, stage: stage, dir: dir).map {
                DirectoryEntry(name: $0.name, node: .output($0.id!), attributes: outputAttributes($0, uid: run.uid))
            }
            return out.sorted { $0.name < $1.name }
        case .runSource(let r, let dir):
            guard let run = try catalog.run(id: r) else { return [] }
            let dirAttrs = runAttributes(run)
            var out = try catalog.runSubdirectories(runId: r, parent: dir).map {
                var a = folderAttributes($0, else: dirAttrs)
                a.nlink = UInt32(2 + (try catalog.runSubdirectoryCount(runId: r, parent: dir.appending($0.name))))
                return DirectoryEntry(name: $0.name, node: .runSource(run: r, dir: dir.appending($0.name)), attributes: a)
            }
            out += try catalog.runFiles(runId: r, dir: dir).map {
                DirectoryEntry(name: $0.name, node: .file($0.linkGroup ?? $0.id!), attributes: fileAttributes($0))
            }
            return out.sorted { $0.name < $1.name }
        case .latest(let p, let dir):
            let dirAttrs = try attributes(node)
            var out = try catalog.latestSubdirectories(projectId: p, parent: dir).map {
                DirectoryEntry(name: $0.name, node: .latest(project: p, dir: dir.appending($0.name)), attributes: folderAttributes($0, else: dirAttrs))
            }
            out += try catalog.latestFiles(projectId: p, dir: dir).map {
                DirectoryEntry(name: $0.name, node: .file($0.linkGroup ?? $0.id!), attributes: fileAttributes($0))
            }
            return out.sorted { $0.name < $1.name }
        case .history(let p, let dir):
            let dirAttrs = try attributes(node)
            var out = try catalog.latestSubdirectories(projectId: p, parent: dir).map {
                DirectoryEntry(name: $0.name, node: .history(project: p, dir: dir.appending($0.name)), attributes: dirAttrs)
            }
            out += try catalog.latestFiles(projectId: p, dir: dir).map {
                DirectoryEntry(name: $0.name, node: .historyOfFile($0.id!), attributes: dirAttrs)
            }
            return out.sorted { $0.name < $1.name }
        case .historyOfFile(let id):
            let f = try historyPath(id)
            return try catalog.history(projectId: f.projectId, path: f.path).map {
                DirectoryEntry(name: PathBytes($0.run), node: .file($0.file.id!), attributes: fileAttributes($0.file))
            }
        case .incoming, .file, .runJSON, .output, .pipelineDefinition:
            return []
        }
    }

    /// The version that names a history/<path>/ folder: its project and path.
    private func historyPath(_ id: FileID) throws -> FileRecord {
        guard let f = try catalog.file(id: id) else { throw ArtifactError(.notFound, "no such file version") }
        return f
    }

    private func entry(_ name: PathBytes, _ node: Node) -> DirectoryEntry? {
        (try? attributes(node)).map { DirectoryEntry(name: name, node: node, attributes: $0) }
    }

    // MARK: attributes

    public func attributes(_ node: Node) throws -> NodeAttributes {
        switch node {
        case .root:
            return dirAttributes(uid: 0, gid: 0, mtimeNs: startNs, writable: false)
        case .dataset, .worktree, .versions, .tags, .versionDir, .versionFile, .datasetLog:
            return try datasetAttributes(node)
        case .projects, .datasets:
            // Like /tmp: anyone who can use the mount may create one; grants come per project.
            var a = dirAttributes(uid: 0, gid: 0, mtimeNs: startNs, writable: true)
            a.mode = 0o1777
            return a
        case .latest(let p, let dir) where !dir.isEmpty:
            guard let project = try catalog.project(id: p) else { throw ArtifactError(.notFound, "no such project") }
            return folderAttributes(try catalog.folder(projectId: p, runId: nil, path: dir), else: projectAttributes(project))
        case .historyOfFile(let id):
            let p = try historyPath(id).projectId
            guard let project = try catalog.project(id: p) else { throw ArtifactError(.notFound, "no such project") }
            return projectAttributes(project)
        case .project(let p), .runs(let p), .latest(let p, _), .history(let p, _), .incoming(let p):
            guard let project = try catalog.project(id: p) else { throw ArtifactError(.notFound, "no such project") }
            return projectAttributes(project)
        case .runSource(let r, let dir):
            // A run's folders (raw_source/ too) count their folders in their link count, as on ext4.
            guard let run = try catalog.run(id: r) else { throw ArtifactError(.notFound, "no such run") }
            var a = dir.isEmpty ? runAttributes(run)
                : folderAttributes(try catalog.folder(projectId: run.projectId, runId: r, path: dir), else: runAttributes(run))
            a.nlink = UInt32(2 + (try catalog.runSubdirectoryCount(runId: r, parent: dir)))
            return a
        case .run(let r), .stageOutputs(let r, _, _):
            guard let run = try catalog.run(id: r) else { throw ArtifactError(.notFound, "no such run") }
            return runAttributes(run)
        case .runJSON(let r):
            guard let run = try catalog.run(id: r) else { throw ArtifactError(.notFound, "no such run") }
            let bytes = try runJSON(r)
            return NodeAttributes(isDirectory: false, mode: 0o444, size: Int64(bytes.count),
                                  uid: UInt32(run.uid), gid: 0, mtimeNs: Int64((run.completedAt ?? run.createdAt) * 1e9))
        case .file(let f):
            guard let file = try catalog.file(id: f) else { throw ArtifactError(.notFound, "no such file") }
            return fileAttributes(file)
        case .output(let o):
            guard let out = try catalog.output(id: o), let run = try catalog.run(id: out.runId) else {
                throw ArtifactError(.notFound, "no such output")
            }
            return outputAttributes(out, uid: run.uid)
        case .pipelineDefinition(let p):
            guard let project = try catalog.project(id: p), let source = try pipeline?.definitionSource(projectId: p) else {
                throw ArtifactError(.notFound, "no pipeline")
            }
            return NodeAttributes(isDirectory: false, mode: 0o444, size: Int64(source.utf8.count),
                                  uid: UInt32(project.ownerUid), gid: 0, mtimeNs: startNs)
        }
    }

    func outputAttributes(_ o: OutputRecord, uid: Int64) -> NodeAttributes {
        NodeAttributes(isDirectory: false, mode: UInt32(o.mode & 0o7777), size: o.size, uid: UInt32(uid), gid: 0, mtimeNs: o.mtimeNs)
    }

    func dirAttributes(uid: UInt32, gid: UInt32, mtimeNs: Int64, writable: Bool) -> NodeAttributes {
        NodeAttributes(isDirectory: true, mode: writable ? 0o755 : 0o555, size: 0, uid: uid, gid: gid, mtimeNs: mtimeNs, nlink: 2)
    }

    func projectAttributes(_ p: ProjectRecord) -> NodeAttributes {
        dirAttributes(uid: UInt32(p.ownerUid), gid: 0, mtimeNs: Int64(p.createdAt * 1e9), writable: false)
    }

    func runAttributes(_ r: RunRecord) -> NodeAttributes {
        dirAttributes(uid: UInt32(r.uid), gid: 0, mtimeNs: Int64(r.createdAt * 1e9), writable: false)
    }

    public func fileAttributes(_ f: FileRecord) -> NodeAttributes {
        var a = NodeAttributes(isDirectory: false, mode: UInt32(f.mode & 0o7777), size: f.size,
                               uid: UInt32(f.uid), gid: UInt32(f.gid), mtimeNs: f.mtimeNs, nlink: UInt32(max(1, f.nlink)))
        a.kind = f.kind
        a.rdev = UInt64(f.rdev)
        a.atimeNs = f.atimeNs
        return a
    }

    /// A sealed folder's own metadata; folders sealed before it was kept show `fallback`.
    func folderAttributes(_ f: FolderRecord?, else fallback: NodeAttributes) -> NodeAttributes {
        guard let f, let mode = f.mode else { return fallback }
        return NodeAttributes(isDirectory: true, mode: UInt32(mode & 0o7777), size: 0, uid: UInt32(f.uid ?? 0),
                              gid: UInt32(f.gid ?? 0), mtimeNs: f.mtimeNs ?? fallback.mtimeNs, nlink: 2)
    }

    /// The target of a symlink in a run, latest/, history/ or a version: its blob's bytes.
    public func linkTarget(_ node: Node) throws -> PathBytes {
        let hash: BlobHash
        switch node {
        case .file(let f):
            guard let file = try catalog.file(id: f), file.kind == .symlink else { throw ArtifactError(.invalidArgument, "not a symbolic link") }
            hash = file.blob
        case .versionFile, .worktree:
            return try datasetLinkTarget(node)
        default:
            throw ArtifactError(.invalidArgument, "not a symbolic link")
        }
        return PathBytes(try store.blobs.read(hash))
    }

    /// The `user.*` attributes a file or folder was sealed or committed with.
    public func userXattrs(_ node: Node) throws -> UserXattrs {
        switch node {
        case .file(let f):
            return UserXattrs(encoded: try catalog.file(id: f)?.xattrs.map { Array($0) })
        case .runSource(let r, let dir) where !dir.isEmpty:
            guard let run = try catalog.run(id: r) else { return UserXattrs() }
            return UserXattrs(encoded: try catalog.folder(projectId: run.projectId, runId: r, path: dir)?.xattrs)
        case .latest(let p, let dir) where !dir.isEmpty:
            return UserXattrs(encoded: try catalog.folder(projectId: p, runId: nil, path: dir)?.xattrs)
        case .versionFile, .versionDir, .worktree:
            return try datasetUserXattrs(node)
        default:
            return UserXattrs()
        }
    }

    // MARK: content and metadata

    public func content(_ node: Node) throws -> NodeContent {
        switch node {
        case .file(let f):
            guard let file = try catalog.file(id: f) else { throw ArtifactError(.notFound, "no such file") }
            return .blob(file.blob, size: file.size)
        case .runJSON(let r):
            return .bytes(try runJSON(r))
        case .output(let o):
            guard let out = try catalog.output(id: o) else { throw ArtifactError(.notFound, "no such output") }
            return .blob(out.blob, size: out.size)
        case .pipelineDefinition(let p):
            return .bytes(Array((try pipeline?.definitionSource(projectId: p) ?? "").utf8))
        case .worktree, .versionFile, .datasetLog:
            return try datasetContent(node)
        default:
            throw ArtifactError(.invalidArgument, "not a file")
        }
    }

    public func runJSON(_ runId: RunID) throws -> [UInt8] {
        guard let report = try RunReport.load(catalog: catalog, pipeline: pipeline, runId: runId) else { throw ArtifactError(.notFound, "no such run") }
        return Array(report.jsonData())
    }

    /// Extended attributes (`user.artifactfs.*`) of a node, in a stable order.
    public func extendedAttributes(_ node: Node) throws -> [(String, String)] {
        switch node {
        case .file(let f):
            guard let file = try catalog.file(id: f), let project = try catalog.project(id: file.projectId),
                  let run = try catalog.runName(id: file.runId) else { return [] }
            var out: [(String, String)] = [
                (ControlAttribute.sha256, file.blob.hex),
                (ControlAttribute.project, project.name),
                (ControlAttribute.run, run),
                (ControlAttribute.path, file.path.description),
                (ControlAttribute.status, file.status.rawValue),
                (ControlAttribute.superseded, file.supersededBy == nil ? "false" : "true"),
            ]
            if let by = try catalog.supersedingRunName(of: file) { out.append((ControlAttribute.supersededBy, by)) }
            return out
        case .output(let o):
            guard let out = try catalog.output(id: o), let run = try catalog.runName(id: out.runId) else { return [] }
            return [
                (ControlAttribute.sha256, out.blob.hex),
                (ControlAttribute.run, run),
                (ControlAttribute.stage, out.stage),
                (ControlAttribute.input, out.inputPath.description),
            ]
        case .run(let r):
            guard let run = try catalog.run(id: r) else { return [] }
            return [(ControlAttribute.run, run.name), (ControlAttribute.status, run.status.rawValue)]
        case .root:
            return [(ControlAttribute.store, store.root)]
        case .project(let p):
            // How a command given the folder (`artifactfs forget MNT/projects/p`) finds the project.
            guard let project = try catalog.project(id: p) else { return [] }
            return [(ControlAttribute.project, project.name)]
        case .dataset, .worktree, .versions, .tags, .versionDir, .versionFile, .datasetLog:
            return try datasetExtendedAttributes(node)
        default:
            return []
        }
    }

}
