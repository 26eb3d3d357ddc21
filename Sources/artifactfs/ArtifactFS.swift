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
            64 bad usage.
            """,
        subcommands: [Mount.self, Unmount.self, Seal.self, Commit.self, Status.self, Log.self, Diff.self, Branch.self, Tag.self,
                      Verify.self, Pipeline.self]
    )
}

/// `--store DIR`, shared by every command that reads the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Store folder (default: $ARTIFACTFS_STORE, else $XDG_DATA_HOME/artifactfs or ~/.local/share/artifactfs).")
    var store: String?

    var root: String {
        let r = store ?? ArtifactStore.defaultRoot()
        return r.hasPrefix("/") ? r : FileManager.default.currentDirectoryPath + "/" + r
    }

    func open(create: Bool = false) throws -> ArtifactStore {
        try ArtifactStore(root: root, create: create)
    }
}
