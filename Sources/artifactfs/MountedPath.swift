import ArtifactCore
import Foundation
import SystemPackage

/// Where a path the user typed lies in an artifactfs mount, for the commands that take a
/// path (`status PATH`, `log PATH -- PATH`, `diff PATH …`): the nearest folder at or above it
/// that exists, whose attributes say what it is (`user.artifactfs.*`), and the names below
/// that folder. A file is always found through its folder, so a deleted file, a symlink
/// (dangling or not) or a FIFO is located like any name, as git locates a path it no longer
/// has.
struct MountedPath {
    /// The path, absolute and without `.` or `..`.
    let absolute: String
    let mountpoint: String
    /// The nearest existing folder at or above `absolute`.
    let anchor: String
    /// The names from `anchor` down to `absolute`.
    let rest: [String]

    /// `argument` (relative to the current folder) in a live mount; nil when it is in no
    /// artifactfs mount. Throws `.daemonGone` when the mount's daemon is not running.
    static func locate(_ argument: String) throws -> MountedPath? {
        let absolute = absolutePath(argument)
        guard let mountpoint = MountControl.mountpoint(containing: absolute) else { return nil }
        if MountControl.isDeadMount(mountpoint) { throw MountControl.deadMount(absolute) }
        var anchor = absolute, rest: [String] = []
        while anchor != mountpoint {
            if let st = try? Syscalls.lstat(anchor), st.st_mode & S_IFMT == S_IFDIR { break }
            rest.insert((anchor as NSString).lastPathComponent, at: 0)
            anchor = (anchor as NSString).deletingLastPathComponent
        }
        return MountedPath(absolute: absolute, mountpoint: mountpoint, anchor: anchor, rest: rest)
    }

    /// An attribute of `anchor` (`ControlAttribute.dataset`, `.branch`, `.project`, …).
    func attribute(_ name: String) -> String? { try? ExtendedAttributes.get(anchor, name) }

    /// The path inside the dataset's tree (of a `@branch/` or a version): the anchor's own
    /// path there and the names below it. nil outside a dataset's trees.
    var treePath: PathBytes? {
        guard attribute(ControlAttribute.dataset) != nil,
              attribute(ControlAttribute.branch) != nil || attribute(ControlAttribute.version) != nil else { return nil }
        let base = attribute(ControlAttribute.path) ?? ""
        return PathBytes((base.isEmpty ? rest : [base] + rest).joined(separator: "/"))
    }

    /// Whether the current folder is inside a mounted `@branch/` (then a bare name on the
    /// command line is a path there, as it is for git).
    static var currentFolderIsInABranch: Bool {
        (try? locate("."))??.attribute(ControlAttribute.branch) != nil
    }
}
