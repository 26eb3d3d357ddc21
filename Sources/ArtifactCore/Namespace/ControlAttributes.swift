import Foundation

/// The daemon's own extended attributes, in one place: what a file or folder of the mount says
/// about itself (read with `getfattr`), and the control handshake through which the CLI asks
/// a mounted daemon to seal or commit (a `setxattr` on the folder, answered by the daemon).
/// All live in the `user.artifactfs.` namespace, which is never stored as a user's attribute.
public enum ControlAttribute {
    public static let prefix = "user.artifactfs."

    // MARK: what a node says about itself
    public static let project = prefix + "project"
    public static let run = prefix + "run"
    public static let path = prefix + "path"
    public static let sha256 = prefix + "sha256"
    public static let status = prefix + "status"
    public static let superseded = prefix + "superseded"
    public static let supersededBy = prefix + "superseded_by"
    public static let lastRun = prefix + "last_run"
    public static let stage = prefix + "stage"
    public static let input = prefix + "input"
    public static let dataset = prefix + "dataset"
    public static let branch = prefix + "branch"
    public static let version = prefix + "version"
    public static let head = prefix + "head"
    public static let schema = prefix + "schema"
    public static let message = prefix + "message"
    /// On `@branch/`: "true" while changes are waiting to be committed.
    public static let uncommitted = prefix + "uncommitted"
    /// On the mount's root: the store folder and the daemon's pid (how the CLI finds them).
    public static let store = prefix + "store"
    public static let pid = prefix + "pid"
    /// On the mount's root: how many inodes the kernel holds of the mount, each an entry in
    /// the daemon's memory (for troubleshooting memory use).
    public static let inodes = prefix + "inodes"
    /// On the mount's root: the requests the kernel has sent the daemon since mount, by
    /// opcode (`LOOKUP=12 CREATE=3 …`), so a test can bound what an operation costs.
    public static let requests = prefix + "requests"

    // MARK: a staged file's state on disk (`StagingMark`)
    /// Open for writing now.
    public static let writing = prefix + "writing"
    /// Was open for writing when the daemon died: maybe a truncated copy.
    public static let interrupted = prefix + "interrupted"

    // MARK: control: set by the CLI, answered by the daemon
    /// On an incoming/ folder: seal now (value: anything).
    public static let seal = prefix + "seal"
    /// On `@branch/`: commit now (value: the message).
    public static let commit = prefix + "commit"
    /// On an incoming/ folder (value: a run id) or `@branch/` (value: a version id): `import`
    /// registered it from outside the daemon; show it now and queue the run's pipeline.
    public static let imported = prefix + "imported"
}

/// The CLI's side of the control handshake with a mounted daemon: set a control attribute
/// on a folder of the mount, and read what changed. Only an artifactfs folder that answers
/// the matching attribute is ever asked (never someone else's folder).
public enum MountControl {
    /// Seals the incoming/ folder at `path` (absolute) now. Returns the new run's id, or nil
    /// when there was nothing to seal. Throws `.busy` while files are open for writing,
    /// `.notFound`/`.notMounted` for a path that is not an incoming/ of a mount.
    public static func seal(incoming path: String) throws -> String? {
        guard (try? ExtendedAttributes.get(path, ControlAttribute.project)) != nil else {
            throw notOurs(path, "not an incoming/ folder of an artifactfs mount")
        }
        let before = try? ExtendedAttributes.get(path, ControlAttribute.lastRun)
        try ask(path, ControlAttribute.seal, "1", busy: "files are still open for writing; nothing was sealed",
                other: { "not an incoming/ folder of an artifactfs mount (\($0))" }, otherCode: .notMounted)
        let after = try? ExtendedAttributes.get(path, ControlAttribute.lastRun)
        return after != before ? after : nil
    }

    /// Whether `path` is an `@branch/` folder of a mount.
    public static func isBranch(_ path: String) -> Bool { (try? ExtendedAttributes.get(path, ControlAttribute.head)) != nil }

    /// Commits the `@branch/` folder at `path` now, with `message` (nil: a generated one).
    /// Returns the new version's id, or nil when nothing changed. Throws as `seal`.
    public static func commit(branch path: String, message: String?) throws -> String? {
        guard isBranch(path) else { throw notOurs(path, "not an @branch folder of an artifactfs mount") }
        let before = try? ExtendedAttributes.get(path, ControlAttribute.head)
        if let message {
            try ask(path, ControlAttribute.commit, message, busy: "files are still open for writing; nothing was committed",
                    other: { "commit failed (\($0)); see the daemon log" }, otherCode: .io)
        } else {
            try ask(path, ControlAttribute.seal, "1", busy: "files are still open for writing; nothing was committed",
                    other: { "commit failed (\($0)); see the daemon log" }, otherCode: .io)
        }
        let after = try? ExtendedAttributes.get(path, ControlAttribute.head)
        guard let after, after != before, !after.isEmpty else { return nil }
        return after
    }

    /// Tells the mount that `import` registered run or version `name` for the incoming/ or
    /// `@branch/` folder at `path` (absolute), so that it shows it at once (and queues a run's
    /// pipeline). Throws as `seal`.
    public static func announceImport(at path: String, name: String) throws {
        try ask(path, ControlAttribute.imported, name, busy: "the mount is busy",
                other: { "the mount did not take the import (\($0)); it shows it after the next mount" }, otherCode: .io)
    }

    private static func notOurs(_ path: String, _ reason: String) -> ArtifactError {
        FileManager.default.fileExists(atPath: path) ? ArtifactError(.notMounted, reason, path: path)
            : ArtifactError(.notFound, "no such folder", path: path)
    }

    /// Sets `name` on `path`; EBUSY and ENOENT have their own answers, any other errno is
    /// `otherCode` with the message `other` makes of it.
    private static func ask(_ path: String, _ name: String, _ value: String, busy: String,
                            other: (String) -> String, otherCode: ArtifactError.Code) throws {
        do {
            try ExtendedAttributes.set(path, name, value)
        } catch let e as ArtifactError {
            switch e.underlying {
            case .resourceBusy?: throw ArtifactError(.busy, busy, path: path)
            case .noSuchFileOrDirectory?: throw ArtifactError(.notFound, "no such folder", path: path)
            default: throw ArtifactError(otherCode, other(e.underlying.map { "\($0)" } ?? e.message), path: path)
            }
        }
    }
}
