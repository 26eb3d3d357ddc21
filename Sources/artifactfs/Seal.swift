import ArgumentParser
import ArtifactCore
import ArtifactFUSE
import Foundation
import SystemPackage

struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal an incoming/ folder now, or commit an @branch folder, without waiting for the quiet period.")

    @Argument(help: "A projects/<project>/incoming or datasets/<dataset>/@<branch> folder inside a mount.")
    var path: String

    func run() throws {
        let target = absolutePath(path)
        if (try? ExtendedAttributes.get(target, ControlAttribute.head)) != nil {
            do { try commitBranch(at: target, message: nil) } catch { throw fail(error) }
            return
        }
        // Only an artifactfs incoming/ answers this; never set attributes on someone else's folder.
        guard (try? ExtendedAttributes.get(target, ControlAttribute.project)) != nil else {
            let reason = FileManager.default.fileExists(atPath: target) ? "not an incoming/ folder of an artifactfs mount" : "no such folder"
            throw fail(ArtifactError(FileManager.default.fileExists(atPath: target) ? .notMounted : .notFound, reason, path: target))
        }
        let before = try? ExtendedAttributes.get(target, ControlAttribute.lastRun)
        do {
            try ExtendedAttributes.set(target, ControlAttribute.seal, "1")
        } catch let e as Errno {
            switch e {
            case .resourceBusy:
                throw fail(ArtifactError(.busy, "files are still open for writing; nothing was sealed", path: target))
            case .noSuchFileOrDirectory:
                throw fail(ArtifactError(.notFound, "no such folder", path: target))
            default:
                throw fail(ArtifactError(.notMounted, "not an incoming/ folder of an artifactfs mount (\(e))", path: target))
            }
        }
        let after = try? ExtendedAttributes.get(target, ControlAttribute.lastRun)
        if let after, after != before {
            print(after)
        } else {
            FileHandle.standardError.write(Data("artifactfs: nothing to seal in \(target)\n".utf8))
        }
    }
}
