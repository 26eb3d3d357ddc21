import ArgumentParser
import ArtifactCore
import Foundation

@main
struct ArtifactFS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifactfs",
        abstract: "A FUSE filesystem for versioned data artifacts.",
        discussion: """
            Exit codes: 0 success; 1 failure; 3 verify found problems; 4 not found (store, \
            project, dataset, version, run, or a path outside a mount); 5 busy (writers still open, or store in use); \
            6 import left out files it could not read (the rest is registered); 64 bad usage.
            """,
        subcommands: [Mount.self, Unmount.self, Seal.self, Commit.self, Status.self, Log.self, Diff.self, Branch.self, Tag.self,
                      Import.self, Verify.self, Forget.self, GC.self, Pipeline.self]
    )
}

/// `--store DIR`, shared by every command that reads the store. Without it: `$ARTIFACTFS_STORE`,
/// else the store of the artifactfs mount the current folder is in, else the embedded default.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Store folder (default: $ARTIFACTFS_STORE, else the store of the mount the current folder is in, else $XDG_DATA_HOME/artifactfs or ~/.local/share/artifactfs).")
    var store: String?

    var root: String {
        if let store { return absolutePath(store) }
        let env = ProcessInfo.processInfo.environment["ARTIFACTFS_STORE"] ?? ""
        if env.isEmpty, let mounted = mountedStore(containing: FileManager.default.currentDirectoryPath) { return mounted }
        return absolutePath(ArtifactStore.defaultRoot())
    }

    func open(create: Bool = false) throws -> ArtifactStore {
        try ArtifactStore(root: root, create: create)
    }
}

/// The store behind the artifactfs mount that holds `path`: its root answers
/// `user.artifactfs.store`. Nil outside a mount.
func mountedStore(containing path: String) -> String? {
    var p = absolutePath(path)
    while true {
        if let s = try? ExtendedAttributes.get(p, ControlAttribute.store), !s.isEmpty { return s }
        if p == "/" || p.isEmpty { return nil }
        p = (p as NSString).deletingLastPathComponent
    }
}
