import Foundation
import SystemPackage

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
    /// On any folder or file of a mount: the caller's own right (`none`, `read`, `write`,
    /// `admin`) on the project or dataset it belongs to.
    public static let right = prefix + "right"
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
    /// On a file in the store's quarantine/: why the blob was taken out of objects/.
    public static let quarantine = prefix + "quarantine"

    // MARK: control: set by the CLI, answered by the daemon
    /// On an incoming/ folder: seal now (value: anything).
    public static let seal = prefix + "seal"
    /// On `@branch/`: commit now (value: the message).
    public static let commit = prefix + "commit"
    /// On the mount's root: runs were forgotten (value: the path of a `ForgottenRuns` JSON
    /// file in the store's tmp/); the daemon drops the kernel's entries for them.
    public static let forgotten = prefix + "forgotten"
    /// On the mount's root: a change the CLI asks the daemon to make for the caller
    /// (`ControlRequestHandler`; value: JSON with the request's `id`).
    public static let request = prefix + "request"
    /// On the mount's root, `result.ID`: the outcome of request ID, for the user who asked,
    /// a chunk per read (`ControlOutcome`).
    public static let result = prefix + "result"
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
    /// `.notFound`/`.notMounted` for a path that is not an incoming/ of a mount, `.noSpace`
    /// when the store's disk is full, `.daemonGone` when the daemon stopped while asked (the
    /// outcome is unknown), `.io` when the seal failed otherwise.
    public static func seal(incoming path: String) throws -> String? {
        _ = try probe(path, ControlAttribute.project, else: "not an incoming/ folder of an artifactfs mount")
        let before = try? ExtendedAttributes.get(path, ControlAttribute.lastRun)
        try ask(path, ControlAttribute.seal, "1", busy: "files are still open for writing; nothing was sealed",
                other: { "seal failed (\($0)); nothing was sealed, the daemon's log (STORE/daemon.log) says why" }, otherCode: .io)
        let after = try? ExtendedAttributes.get(path, ControlAttribute.lastRun)
        return after != before ? after : nil
    }

    /// Whether `path` is an `@branch/` folder of a mount.
    public static func isBranch(_ path: String) -> Bool { (try? ExtendedAttributes.get(path, ControlAttribute.head)) != nil }

    /// Commits the `@branch/` folder at `path` now, with `message` (nil: a generated one).
    /// Returns the new version's id, or nil when nothing changed. Throws as `seal`.
    public static func commit(branch path: String, message: String?) throws -> String? {
        _ = try probe(path, ControlAttribute.head, else: "not an @branch folder of an artifactfs mount")
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

    /// The mountpoints where the store at `storeRoot` is mounted now (from /proc/self/mounts,
    /// each asked for its store), so that a command that changed the store's catalog directly
    /// can tell each daemon.
    public static func mountpoints(ofStore storeRoot: String) -> [String] {
        artifactfsMountpoints().filter { (try? ExtendedAttributes.get($0, ControlAttribute.store)) == storeRoot }
    }

    /// Every artifactfs mountpoint on this host (`fuse.artifactfs` in /proc/self/mounts),
    /// live or dead (a daemon killed leaves its mount until it is unmounted).
    public static func artifactfsMountpoints() -> [String] {
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        return table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count >= 3, fields[2] == "fuse.artifactfs" else { return nil }
            return unescapeMountField(String(fields[1]))
        }
    }

    /// /proc/self/mounts writes space, tab, newline and backslash as `\ooo`.
    private static func unescapeMountField(_ field: String) -> String {
        var bytes: [UInt8] = []
        var it = Array(field.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "\\"), it.count >= 3, let v = UInt8(String(decoding: it.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(v)
                it = it.dropFirst(3)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Tells every daemon that mounts `storeRoot` that `forgotten` runs are gone, so that the
    /// kernel's cached entries for them (runs/, latest/, history/) are dropped before this
    /// returns. Throws `.io` when a mount does not answer.
    public static func announce(_ forgotten: ForgottenRuns, storeRoot: String) throws {
        let mounts = mountpoints(ofStore: storeRoot)
        guard !mounts.isEmpty else { return }
        let file = "\(storeRoot)/tmp/forgotten-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).json"
        try JSONEncoder().encode(forgotten).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        for mnt in mounts {
            do { try ExtendedAttributes.set(mnt, ControlAttribute.forgotten, file) } catch {
                throw ArtifactError(.io, "the mount did not take the change in (\(error)); it may show forgotten runs for up to an hour", path: mnt)
            }
        }
    }

    /// Tells the mount that `import` registered run or version `name` for the incoming/ or
    /// `@branch/` folder at `path` (absolute), so that it shows it at once (and queues a run's
    /// pipeline). Throws as `seal`.
    public static func announceImport(at path: String, name: String) throws {
        try ask(path, ControlAttribute.imported, name, busy: "the mount is busy",
                other: { "the mount did not take the import (\($0)); it shows it after the next mount" }, otherCode: .io)
    }

    /// The value of control attribute `name` on `path`; throws `.daemonGone` for a dead mount,
    /// `.permissionDenied` when the caller may not read there (see `denied`), else (a folder
    /// that does not answer it) `.notMounted` with `reason`, or `.notFound`.
    private static func probe(_ path: String, _ name: String, else reason: String) throws -> String {
        do { return try ExtendedAttributes.get(path, name) } catch let e as ArtifactError where e.code == .daemonGone {
            throw deadMount(path)
        } catch let e as ArtifactError where e.underlying == .permissionDenied {
            throw denied(path, action: name == ControlAttribute.head ? "commit" : "seal", needs: .write)
        } catch {
            throw notOurs(path, reason)
        }
    }

    private static func notOurs(_ path: String, _ reason: String) -> ArtifactError {
        do {
            _ = try Syscalls.lstat(path)
            return ArtifactError(.notMounted, reason, path: path)
        } catch let e as Errno where ArtifactError.code(for: e) == .daemonGone {
            return deadMount(path)
        } catch {
            return ArtifactError(.notFound, "no such folder", path: path)
        }
    }

    /// The error for a path in a mount whose daemon is not running (ENOTCONN), with what to run.
    public static func deadMount(_ path: String) -> ArtifactError {
        let mnt = mountpoint(containing: path) ?? path
        return ArtifactError(.daemonGone, "the mount's daemon is not running (a dead mount at \(mnt)); "
                             + "`artifactfs unmount \(mnt)`, then mount it again", path: path)
    }

    /// The artifactfs mountpoint that holds `path` (absolute), from /proc/self/mounts.
    public static func mountpoint(containing path: String) -> String? {
        artifactfsMountpoints().filter { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }.max { $0.count < $1.count }
    }

    /// Whether `path` is an artifactfs mountpoint whose daemon is gone: listed as mounted,
    /// and answering ENOTCONN (or ECONNABORTED).
    public static func isDeadMount(_ path: String) -> Bool {
        guard artifactfsMountpoints().contains(path) else { return false }
        do { _ = try Syscalls.listDirectory(path); return false } catch let e as Errno {
            return ArtifactError.code(for: e) == .daemonGone
        } catch { return false }
    }

    /// The CLI's refusal when a mount answered EACCES on `path` (SPEC §6): who the caller is,
    /// the right it has there (the mount tells it, `ControlAttribute.right`) and the one
    /// `action` needs, e.g. `PATH: permission denied: bob has read access; seal needs write`.
    public static func denied(_ path: String, action: String, needs: Right) -> ArtifactError {
        let has = (try? ExtendedAttributes.get(path, ControlAttribute.right)).flatMap { Right(name: $0) } ?? .none
        return ArtifactError(.permissionDenied, "permission denied: \(Caller.current.name) has \(has == .none ? "no" : "\(has)") access; "
                             + "\(action) needs \(needs)", path: path)
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
            case .permissionDenied?:
                throw denied(path, action: name == ControlAttribute.commit || isBranch(path) ? "commit" : name == ControlAttribute.seal ? "seal" : "this", needs: .write)
            case .noSpace?:
                throw ArtifactError(.noSpace, "no space left on the store's disk (\(name == ControlAttribute.commit || isBranch(path) ? "nothing was committed, the changes stay in the working tree" : "nothing was sealed, the files stay in incoming/"))", path: path)
            case .socketNotConnected?, .connectionAbort?:
                // Asked, and the daemon died before it answered: it may or may not have done it.
                let mnt = mountpoint(containing: path) ?? path
                throw ArtifactError(.daemonGone, "outcome unknown: the daemon stopped while it was asked; `artifactfs unmount \(mnt)`, "
                                    + "mount it again, and `artifactfs status` (or `log`) shows whether it went through", path: path)
            default: throw ArtifactError(otherCode, other(e.underlying.map { "\($0)" } ?? e.message), path: path)
            }
        }
    }
}
