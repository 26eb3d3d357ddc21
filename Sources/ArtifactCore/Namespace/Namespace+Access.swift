import Foundation

extension Namespace {
    /// The project or dataset whose grants decide access to `node` (SPEC §6): the node itself
    /// or the one it lies under. Nil for the root, `projects/` and `datasets/`, which every
    /// user of the mount may list. Costs at most two point reads of the catalog.
    public func resource(of node: Node) throws -> Resource? {
        switch node {
        case .root, .projects, .datasets: return nil
        case .project(let p), .incoming(let p), .runs(let p), .pipelineDefinition(let p),
             .latest(let p, _), .history(let p, _):
            return .project(p)
        case .run(let r), .runSource(let r, _), .runJSON(let r), .stageOutputs(let r, _, _):
            return try project(ofRun: r)
        case .historyOfFile(let f), .file(let f):
            guard let file = try store.catalog.file(id: f) else { throw ArtifactError(.notFound, "no such file", path: "\(f)") }
            return try project(ofRun: file.runId)
        case .output(let o):
            guard let output = try store.catalog.output(id: o) else { throw ArtifactError(.notFound, "no such output", path: "\(o)") }
            return try project(ofRun: output.runId)
        case .dataset(let d), .versions(let d), .tags(let d), .datasetLog(let d):
            return .dataset(d)
        case .worktree(let b, _):
            guard let ref = try store.catalog.ref(id: b) else { throw ArtifactError(.notFound, "no such branch", path: "\(b)") }
            return .dataset(ref.datasetId)
        case .versionDir(let v, _, _):
            guard let version = try store.catalog.version(id: v) else { throw ArtifactError(.notFound, "no such version", path: "\(v)") }
            return .dataset(version.datasetId)
        case .versionFile(let e):
            guard let entry = try store.catalog.entry(id: e) else { throw ArtifactError(.notFound, "no such entry", path: "\(e)") }
            return .dataset(entry.datasetId)
        }
    }

    private func project(ofRun r: RunID) throws -> Resource {
        guard let run = try store.catalog.run(id: r) else { throw ArtifactError(.notFound, "no such run", path: "\(r)") }
        return .project(run.projectId)
    }
}
