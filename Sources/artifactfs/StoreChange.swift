import ArtifactCore
import ArtifactPipeline
import Foundation

/// A change a command makes to a store's catalog (SPEC §6, "Access"): made in one place,
/// `apply`, whether the CLI makes it itself (a store that is not mounted, by its own user) or
/// asks the mounted daemon to (`perform`, `StoreChangeHandler`), which first checks the
/// caller's right. Names, not ids, so a request means the same on both sides.
enum StoreChange: Codable {
    case createTag(dataset: String, tag: String, version: String?)
    case deleteTag(dataset: String, tag: String)
    case createBranch(dataset: String, branch: String, from: String?)
    case deleteBranch(dataset: String, branch: String)
    case setRetention(dataset: String, seconds: Double)
    case setPipeline(project: String, source: String, file: String)
    case rerun(project: String, run: String, stage: String?)
    case forget(project: String, policy: KeepPolicy, dryRun: Bool, save: Bool)
    case clearKeepPolicy(project: String)
    /// `folder`: `projects` or `datasets`; `principal`: `Principal.wire`; `right` `none` revokes.
    case grant(folder: String, name: String, principal: String, right: String)
    /// Reads rather than changes: through the mount so that a user without access to the
    /// catalog can list them, with read.
    case listGrants(folder: String, name: String)

    /// The project or dataset it changes: (`projects`|`datasets`, name).
    var target: (folder: String, name: String) {
        switch self {
        case .createTag(let d, _, _), .deleteTag(let d, _), .createBranch(let d, _, _), .deleteBranch(let d, _), .setRetention(let d, _):
            return ("datasets", d)
        case .setPipeline(let p, _, _), .rerun(let p, _, _), .forget(let p, _, _, _), .clearKeepPolicy(let p):
            return ("projects", p)
        case .grant(let folder, let name, _, _), .listGrants(let folder, let name):
            return (folder, name)
        }
    }

    /// The right it needs there, and its name in a refusal.
    var needed: (right: Right, action: String) {
        switch self {
        case .createTag: return (.admin, "tag")
        case .deleteTag: return (.admin, "deleting a tag")
        case .createBranch: return (.write, "making a branch")
        case .deleteBranch: return (.admin, "deleting a branch")
        case .setRetention: return (.admin, "setting retention")
        case .setPipeline: return (.admin, "pipeline set")
        case .rerun: return (.write, "pipeline rerun")
        case .forget(_, _, true, false): return (.read, "forget --dry-run")
        case .forget, .clearKeepPolicy: return (.admin, "forget")
        case .grant(_, _, _, "none"): return (.admin, "revoke")
        case .grant: return (.admin, "grant")
        case .listGrants: return (.read, "listing grants")
        }
    }

    /// The project or dataset in `store`; `.notFound` when there is none of that name.
    func resource(in store: ArtifactStore) throws -> Resource {
        let (folder, name) = target
        if folder == "projects" {
            guard let p = try store.catalog.project(named: name) else {
                throw ArtifactError(.notFound, "no such project (mkdir MOUNT/projects/\(name) creates one)", path: name)
            }
            return .project(p.id!)
        }
        guard let d = try store.catalog.dataset(named: name) else {
            throw ArtifactError(.notFound, "no such dataset (mkdir MOUNT/datasets/\(name) creates one)", path: name)
        }
        return .dataset(d.id!)
    }

    /// Makes the change in `store` and returns its result as JSON (the types below).
    /// `forgotten` is told which runs a forget removed.
    func apply(to store: ArtifactStore, forgotten: (ForgottenRuns) throws -> Void) throws -> Data {
        let catalog = store.catalog
        func dataset(_ name: String) throws -> DatasetRecord {
            guard let d = try catalog.dataset(named: name) else { throw ArtifactError(.notFound, "no such dataset", path: name) }
            return d
        }
        func project(_ name: String) throws -> ProjectRecord {
            guard let p = try catalog.project(named: name) else { throw ArtifactError(.notFound, "no such project", path: name) }
            return p
        }
        let encoder = JSONEncoder()
        switch self {
        case .createTag(let d, let tag, let version):
            let ds = try dataset(d)
            let target = try catalog.resolve(datasetId: ds.id!, reference: version ?? "main")
            _ = try catalog.createTag(datasetId: ds.id!, name: tag, at: target.id!)
            return try encoder.encode(RefLine(name: tag, version: target.name))
        case .deleteTag(let d, let tag):
            return try encoder.encode(try catalog.deleteTag(datasetId: try dataset(d).id!, name: tag))
        case .createBranch(let d, let branch, let from):
            let ds = try dataset(d)
            let start: VersionRecord?
            if let from {
                start = try catalog.resolve(datasetId: ds.id!, reference: from)
            } else {
                start = try catalog.ref(datasetId: ds.id!, kind: .branch, name: "main")?.versionId.flatMap { try catalog.version(id: $0) }
            }
            _ = try catalog.createBranch(datasetId: ds.id!, name: branch, at: start?.id)
            return try encoder.encode(RefLine(name: branch, version: start?.name))
        case .deleteBranch(let d, let branch):
            let ds = try dataset(d)
            let deleted = try catalog.deleteBranch(datasetId: ds.id!, name: branch)
            if let id = deleted.refId { try? FileManager.default.removeItem(atPath: "\(Worktrees.upperRoot(of: store))/\(id)") }
            let kept = try VersionRetention.stored(for: ds.id!, in: catalog).deletedBranches
            return try encoder.encode(DeletedBranchLine(deleted: deleted, keptSeconds: kept))
        case .setRetention(let d, let seconds):
            try VersionRetention(deletedBranches: seconds).store(for: try dataset(d).id!, in: catalog)
            return Data("{}".utf8)
        case .setPipeline(let p, let source, let file):
            do { _ = try JobQueue(catalog: catalog).setPipeline(projectId: try project(p).id!, source: source) } catch let e as PipelineDefinitionError {
                throw ArtifactError(.invalidArgument, "invalid pipeline: \(e.description)", path: file)
            }
            return Data("{}".utf8)
        case .rerun(let p, let run, let stage):
            let pr = try project(p)
            guard let r = try catalog.run(projectId: pr.id!, name: run) else {
                throw ArtifactError(.notFound, "no such run in project \(pr.name)", path: run)
            }
            do { try JobQueue(catalog: catalog).rerun(runId: r.id!, stage: stage) } catch let e as ArtifactError where e.path == nil {
                throw ArtifactError(e.code, e.message, path: pr.name)
            }
            return Data("{}".utf8)
        case .forget(let p, let policy, let dryRun, let save):
            let pr = try project(p)
            let (report, gone) = try RunRetention(store: store).forget(project: pr, policy: policy, dryRun: dryRun)
            if save && !dryRun { try policy.store(for: pr.id!, in: catalog) }
            if let gone { try forgotten(gone) }
            return try encoder.encode(report)
        case .clearKeepPolicy(let p):
            try KeepPolicy().store(for: try project(p).id!, in: catalog)
            return Data("{}".utf8)
        case .grant(_, _, let principal, let right):
            guard let who = Principal(wire: principal), let r = Right(name: right) else {
                throw ArtifactError(.invalidArgument, "not a grant", path: "\(principal)=\(right)")
            }
            try catalog.setGrant(r, to: who, on: try resource(in: store))
            return Data("{}".utf8)
        case .listGrants:
            return try encoder.encode(try catalog.grants(on: try resource(in: store)).map { GrantWire(principal: $0.principal.wire, right: $0.right.description) })
        }
    }
}

/// A tag or branch and the version it names (nil: an empty branch).
struct RefLine: Codable { var name: String; var version: String? }

/// A deleted branch, and how long its versions stay (seconds).
struct DeletedBranchLine: Codable { var deleted: DeletedBranch; var keptSeconds: Double }

/// What a change request carries (`MountControl.request` adds its id).
private struct ChangeEnvelope: Codable { var change: StoreChange }

/// The daemon's side: a change asked through the mount, made once the caller's right allows it.
struct StoreChangeHandler: ControlRequestHandler {
    func handle(_ request: [UInt8], caller: Caller, access: AccessPolicy, store: ArtifactStore,
                forgotten: (ForgottenRuns) throws -> Void) throws -> [UInt8] {
        let change: StoreChange
        do { change = try JSONDecoder().decode(ChangeEnvelope.self, from: Data(request)).change } catch {
            throw ArtifactError(.invalidArgument, "a change request this daemon does not know (is it older than the command?)")
        }
        let (right, action) = change.needed
        try access.require(right, of: caller, on: try change.resource(in: store), to: action)
        return Array(try change.apply(to: store, forgotten: forgotten))
    }
}

extension GlobalOptions {
    /// Where `argument` (a name, or a folder in a mount whose `attribute` names it) lives: the
    /// store's root, the name, and the mount to go through, if the store is mounted.
    func locateNamed(_ argument: String, by attribute: String) throws -> (root: String, name: String, mountpoint: String?) {
        guard isPathArgument(argument) else {
            return (root, argument, MountControl.mountpoints(ofStore: root).first)
        }
        guard let located = try MountedPath.locate(argument) else {
            throw ArtifactError(.notMounted, "not in an artifactfs mount (give the name, with --store)", path: absolutePath(argument))
        }
        // A caller who may not read there cannot ask the folder its name: the path gives it,
        // and the daemon answers for the change itself (with the right it needs).
        let inside = located.absolute.dropFirst(located.mountpoint == "/" ? 1 : located.mountpoint.count + 1).split(separator: "/")
        let folder = attribute == ControlAttribute.project ? "projects" : "datasets"
        let byPath = inside.count >= 2 && inside[0] == folder ? String(inside[1]) : nil
        let refused = (try? ExtendedAttributes.get(located.anchor, ControlAttribute.right)) == Right.none.description
        guard let name = located.attribute(attribute) ?? (refused ? byPath : nil) else {
            let noun = attribute.split(separator: ".").last.map(String.init) ?? "artifactfs"
            throw ArtifactError(.notFound, "not in a \(noun)'s folder of the mount", path: located.absolute)
        }
        let mountedRoot = (try? ExtendedAttributes.get(located.mountpoint, ControlAttribute.store)) ?? root
        return (store.map(absolutePath) ?? mountedRoot, name, located.mountpoint)
    }

    /// Makes `change` (naming a project or dataset by `attribute`, from `argument`), through
    /// the mount when the store is mounted, so that its daemon checks the caller's right,
    /// else directly in the catalog, and decodes its result as `R`.
    func perform<R: Decodable>(_ argument: String, by attribute: String, _ make: (String) -> StoreChange, as: R.Type) throws -> (name: String, result: R) {
        let (root, name, mountpoint) = try locateNamed(argument, by: attribute)
        let change = make(name)
        let data: Data
        if let mountpoint {
            do { data = try MountControl.request(ChangeEnvelope(change: change), mountpoint: mountpoint) } catch let e as ArtifactError where e.code == .permissionDenied {
                throw ArtifactError(.permissionDenied, e.message, path: "\(change.target.folder)/\(name)")
            }
        } else {
            let store = try ArtifactStore(root: root, create: false)
            data = try change.apply(to: store) { _ in }
        }
        return (name, try JSONDecoder().decode(R.self, from: data))
    }
}

/// One grant as a change request's result carries it.
struct GrantWire: Codable { var principal: String; var right: String }

/// A result with nothing in it.
struct NoResult: Codable {}
