import ArgumentParser
import ArtifactCore
import Foundation

@main
struct ArtifactFS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifactfs",
        abstract: "A FUSE filesystem for versioned data artifacts.",
        discussion: """
            Global options, before or after the subcommand: --store DIR, --json, --quiet (-q). \
            Every command but init refuses a folder that is not a store.

            Exit codes: \(ExitCodes.table)
            """,
        version: ArtifactFSVersion.current,
        subcommands: [Init.self, Mount.self, Unmount.self, Seal.self, Commit.self, Status.self, Log.self, Diff.self, Branch.self,
                      Tag.self, GrantCommand.self, Revoke.self, Grants.self, Import.self, Verify.self, Forget.self, GC.self, Pipeline.self, Version.self]
    )

    /// Parses with the global options moved behind the subcommand, and reports every failure
    /// in one style: `artifactfs: PATH: reason` (usage errors too, with where to find help),
    /// exit codes as `ExitCodes` says. No arguments: the help, on stderr, and 64.
    static func main() {
        let given = Array(CommandLine.arguments.dropFirst())
        if given.isEmpty {
            FileHandle.standardError.write(Data((helpMessage() + "\n").utf8))
            Foundation.exit(ExitCodes.usage)
        }
        let arguments = GlobalOptions.hoisted(given)
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version: printed as asked
            let path = subcommandPath(arguments)
            let reason = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: "; ")
            printError("\(reason) (see: artifactfs \(path.isEmpty ? "" : path + " ")--help)")
            Foundation.exit(code == .validationFailure ? ExitCodes.usage : code.rawValue)
        }
    }

    /// The subcommand names at the head of `arguments` (`pipeline set`), for a usage hint.
    private static func subcommandPath(_ arguments: [String]) -> String {
        var names: [String] = []
        var commands: [ParsableCommand.Type] = configuration.subcommands
        for argument in arguments {
            guard let sub = commands.first(where: { $0._commandName == argument }) else { break }
            names.append(argument)
            commands = sub.configuration.subcommands
        }
        return names.joined(separator: " ")
    }
}

/// Options every command takes, before or after its name (`artifactfs --store S status` and
/// `artifactfs status --store S`), as git's and restic's global flags. Without `--store`:
/// `$ARTIFACTFS_STORE`, else the store of the artifactfs mount the current folder is in, else
/// the embedded default.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Store folder (default: $ARTIFACTFS_STORE, else the store of the mount the current folder is in, else $XDG_DATA_HOME/artifactfs or ~/.local/share/artifactfs).")
    var store: String?

    @Flag(help: "Print JSON: one document on stdout, numbers as numbers (shapes in the README).")
    var json = false

    @Flag(name: [.long, .customShort("q")], help: "Print no progress and no notes on stderr; errors still.")
    var quiet = false

    var root: String {
        if let store { return absolutePath(store) }
        let env = ProcessInfo.processInfo.environment["ARTIFACTFS_STORE"] ?? ""
        if env.isEmpty, let mounted = mountedStore(containing: FileManager.default.currentDirectoryPath) { return mounted }
        return absolutePath(ArtifactStore.defaultRoot())
    }

    /// The store at `root`; throws `.notFound` (exit 4) when the folder is not a store.
    func open() throws -> ArtifactStore {
        try ArtifactStore(root: root, create: false)
    }

    /// `arguments` with the global options found before the subcommand's name moved behind
    /// it (before a `--`, if any), where the subcommand's parser takes them.
    static func hoisted(_ arguments: [String]) -> [String] {
        var globals: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--json" || a == "--quiet" || a == "-q" || a.hasPrefix("--store=") {
                globals.append(a); i += 1
            } else if a == "--store", i + 1 < arguments.count {
                globals += [a, arguments[i + 1]]; i += 2
            } else {
                break
            }
        }
        guard !globals.isEmpty, i < arguments.count else { return arguments }
        var rest = Array(arguments[i...])
        let end = rest.firstIndex(of: "--") ?? rest.count
        rest.insert(contentsOf: globals, at: end)
        return rest
    }
}

/// A command with the global options: `json` and `quiet` read them.
protocol GlobalCommand {
    var global: GlobalOptions { get }
}

extension GlobalCommand {
    var json: Bool { global.json }
    var quiet: Bool { global.quiet }

    /// A note for people on stderr (`artifactfs: TEXT`), unless `--quiet` or `--json`.
    func note(_ text: String) {
        if !quiet && !json { printError(text) }
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
