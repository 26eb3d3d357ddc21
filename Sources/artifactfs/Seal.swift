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
        if MountControl.isBranch(target) {
            do { try commitBranch(at: target, message: nil) } catch { throw fail(error) }
            return
        }
        do {
            if let run = try MountControl.seal(incoming: target) {
                print(run)
            } else {
                FileHandle.standardError.write(Data("artifactfs: nothing to seal in \(target)\n".utf8))
            }
        } catch { throw fail(error) }
    }
}
