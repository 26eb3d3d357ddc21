import ArtifactCore
import CFuse3
import Foundation

extension ArtifactFileSystem {
    /// `user.artifactfs.forgotten` on the root: a command forgot runs of this store, and
    /// `file` (in the store's tmp/) says which. The kernel keeps names of runs/, latest/ and
    /// history/ for an hour (`immutableTimeout`); this drops each one the forgotten runs had,
    /// before the command's setxattr is answered, so that none is shown afterwards.
    /// Throws `.invalidArgument` for a file outside the store or one that does not decode.
    func forgotten(file: String) throws {
        guard file.hasPrefix(store.root + "/tmp/"), !file.contains("/../"),
              let data = FileManager.default.contents(atPath: file),
              let forgotten = try? JSONDecoder().decode(ForgottenRuns.self, from: data) else {
            throw ArtifactError(.invalidArgument, "not a list of forgotten runs of this store", path: file)
        }
        dropForgotten(forgotten)
    }

    /// Drops the kernel's entries of runs that were forgotten (see `forgotten(file:)`).
    func dropForgotten(_ forgotten: ForgottenRuns) {
        guard let se = OpaquePointer(bitPattern: session.load(ordering: .acquiring)) else { return }
        func drop(_ parent: UInt64?, _ name: PathBytes) {
            guard let parent else { return }
            _ = name.withCString { fuse_lowlevel_notify_inval_entry(se, fuse_ino_t(parent), $0, name.count) }
        }
        let p = forgotten.projectId
        let runs = inodes.known(.runs(p))
        for run in forgotten.runs { drop(runs, PathBytes(run)) }
        var folders = Set<PathBytes>()
        for (path, versions) in forgotten.paths {
            drop(inodes.known(.latest(project: p, dir: path.parent)), path.lastComponent)
            drop(inodes.known(.history(project: p, dir: path.parent)), path.lastComponent)
            for id in versions.ids {
                guard let folder = inodes.known(.historyOfFile(id)) else { continue }
                for run in versions.runs { drop(folder, PathBytes(run)) }
            }
            folders.formUnion(path.parent.folderAndAncestors)
        }
        // A folder only forgotten runs had is gone from latest/ and history/ too.
        for folder in folders where !folder.isEmpty {
            drop(inodes.known(.latest(project: p, dir: folder.parent)), folder.lastComponent)
            drop(inodes.known(.history(project: p, dir: folder.parent)), folder.lastComponent)
        }
    }
}
