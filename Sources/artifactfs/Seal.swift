import ArgumentParser
import ArtifactCore
import ArtifactFUSE
import Foundation
import SystemPackage

struct Seal: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal an incoming/ folder now, or commit an @branch folder, without waiting for the quiet period.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A projects/<project>/incoming or datasets/<dataset>/@<branch> folder inside a mount.")
    var path: String

    func run() throws {
        let target = absolutePath(path)
        if MountControl.isBranch(target) {
            do { try commitBranch(at: target, message: nil, json: json, quiet: quiet) } catch { throw fail(error) }
            return
        }
        do {
            if let run = try MountControl.seal(incoming: target) {
                if json { try printJSON(["run": run]) } else { print(run) }
            } else {
                if json { try printJSON(["run": nil] as [String: String?]) }
                note("nothing to seal in \(target)")
            }
        } catch let e as ArtifactError where e.code == .busy {
            throw fail(ArtifactError(.busy, "files are still open for writing\(openForWriting(in: target)); nothing was sealed", path: target))
        } catch { throw fail(error) }
    }

    /// ` (a.csv, b/c.txt and 2 more)`: the files of the incoming/ folder at `path` that are
    /// open for writing now (their `writing` mark in the store's staging folder); empty when
    /// they cannot be told.
    private func openForWriting(in path: String) -> String {
        guard let root = mountedStore(containing: path),
              let name = try? ExtendedAttributes.get(path, ControlAttribute.project),
              let store = try? ArtifactStore(root: root, readOnly: true),
              let project = try? store.catalog.project(named: name),
              let files = try? store.staging.scan(projectId: project.id!).files else { return "" }
        let open = files.filter(\.beingWritten).map { $0.relativePath.description }.sorted()
        guard !open.isEmpty else { return "" }
        return " (" + open.prefix(3).joined(separator: ", ") + (open.count > 3 ? " and \(open.count - 3) more" : "") + ")"
    }
}
