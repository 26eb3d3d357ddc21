import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// datasets/: creating datasets and branches, and the `@branch` working trees.
extension ArtifactFileSystem {
    var worktrees: Worktrees { namespace.worktrees }

    /// mkdir outside the writable trees: a project under projects/, a dataset under
    /// datasets/, or a branch (`@NAME` in a dataset folder forks one from main's head).
    /// Projects, datasets and branches have text names.
    func mkdirVirtual(parent: Node, name: PathBytes, by who: Caller) throws -> fuse_entry_param {
        let text = name.validUTF8
        switch parent {
        case .projects:
            guard let text else { throw ArtifactError(.invalidName, "a project name must be UTF-8 text", path: name) }
            let project = try store.createProject(name: text, uid: Int64(who.uid), gid: Int64(who.gid))
            return try entry(for: .project(project.id!), parent: .projects)
        case .datasets:
            guard let text else { throw ArtifactError(.invalidName, "a dataset name must be UTF-8 text", path: name) }
            let ds = try store.catalog.createDataset(name: text, uid: Int64(who.uid), gid: Int64(who.gid))
            return try entry(for: .dataset(ds.id!), parent: parent)
        case .dataset(let d):
            guard name.hasPrefix("@") else {
                throw ArtifactError(.readOnly, "only @BRANCH folders can be made in a dataset folder", path: name)
            }
            guard let text else { throw ArtifactError(.invalidName, "a branch name must be UTF-8 text", path: name) }
            let main = try store.catalog.ref(datasetId: d, kind: .branch, name: "main")
            let branch = try store.catalog.createBranch(datasetId: d, name: String(text.dropFirst()), at: main?.versionId)
            return try entry(for: .worktree(branch: branch.id!, path: .empty), parent: parent)
        default:
            throw ArtifactError(.readOnly, "read-only")
        }
    }
}
