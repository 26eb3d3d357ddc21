import ArgumentParser
import ArtifactCore
import Foundation

struct Init: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a store: the only command that does (as restic init).",
        discussion: """
            Makes the folder (--store DIR, else the default store) and the store in it. A folder \
            that already holds a store is left as it is (exit 0, as git init). A folder that holds \
            other files, or one inside an artifactfs mount, is refused.
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let root = global.root
        do {
            let created = try ArtifactStore.initialize(root: root) != nil
            if json { try printJSON(InitResult(store: root, created: created)); return }
            if !quiet { print(created ? "artifactfs: created a store in \(root)" : "artifactfs: \(root) is a store already; nothing changed") }
        } catch { throw fail(error) }
    }

    private struct InitResult: Codable { var store: String; var created: Bool }
}

struct Version: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version (as --version does).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        if json { try printJSON(["version": ArtifactFSVersion.current]) } else { print(ArtifactFSVersion.current) }
    }
}
