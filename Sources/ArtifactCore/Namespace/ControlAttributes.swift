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
}
