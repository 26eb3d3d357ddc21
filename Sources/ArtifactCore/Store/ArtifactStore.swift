import Foundation
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One store on disk: `catalog.sqlite`, `objects/`, `packs/`, `staging/` and `tmp/` under one folder.
public final class ArtifactStore: Sendable {
    public let root: String
    public let catalog: Catalog
    public let blobs: BlobStore
    public let staging: StagingArea
    /// The descriptor that holds the mount's `flock` (see `lockForMount`), or -1.
    private let lockFD = Mutex<Int32>(-1)

    /// `$ARTIFACTFS_STORE`, else `$XDG_DATA_HOME/artifactfs`, else `~/.local/share/artifactfs`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let s = environment["ARTIFACTFS_STORE"], !s.isEmpty { return s }
        if let x = environment["XDG_DATA_HOME"], !x.isEmpty { return "\(x)/artifactfs" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.local/share/artifactfs"
    }

    /// Whether `root` holds a store (its catalog).
    public static func exists(at root: String) -> Bool { Syscalls.exists("\(root)/catalog.sqlite") }

    /// The one way a store comes to be (`artifactfs init`, as `restic init`): makes the
    /// folder (and its parents) and the store in it. Returns nil, changing nothing, when
    /// `root` holds a store already. Throws `.notEmpty` for a folder that holds other files,
    /// `.invalidArgument` for a folder inside an artifactfs mount (a store cannot live in the
    /// filesystem it serves), `.io`/`.noSpace` when it cannot be written.
    public static func initialize(root: String) throws -> ArtifactStore? {
        if exists(at: root) { return nil }
        var ancestor = root
        while !Syscalls.exists(ancestor) && ancestor != "/" { ancestor = pathParent(ancestor) }
        if let mount = MountControl.artifactfsMountpoints().first(where: { ancestor == $0 || ancestor.hasPrefix($0 + "/") }) {
            throw ArtifactError(.invalidArgument, "a store cannot live inside an artifactfs mount (\(mount)); pick a folder on a local disk", path: root)
        }
        if ancestor == root, let entries = try? Syscalls.listDirectory(root), !entries.isEmpty {
            throw ArtifactError(.notEmpty, "the folder is not empty and holds no store; pick a new or empty folder", path: root)
        }
        return try ArtifactStore(root: root, create: true)
    }

    /// Opens (and with `create`, makes: only `initialize` does) the store at `root`. Throws
    /// `.notFound` when `root` holds no store and `create` is false.
    public init(root: String, create: Bool = false, readOnly: Bool = false) throws {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = absolute
        let catalogPath = "\(absolute)/catalog.sqlite"
        if !Syscalls.exists(catalogPath) {
            if access(absolute, X_OK) != 0 && errno == EACCES {
                throw ArtifactError(.permissionDenied, "the store folder is private to its user; on a mount shared with you, "
                                    + "read through the tree (.run.json, .log, versions/, pipeline.toml) and change through the mount", path: absolute)
            }
            guard create, !readOnly else {
                throw ArtifactError(.notFound, "not an artifactfs store (no catalog.sqlite); `artifactfs init --store DIR` creates one", path: absolute)
            }
            do { try Syscalls.mkdirs(absolute) } catch let e as Errno {
                throw ArtifactError.system(e, "cannot create store", path: absolute)
            }
            // Private to its user: the catalog and the blobs are reached through the mount,
            // where grants apply (SPEC §6).
            _ = chmod(absolute, 0o700)
        }
        catalog = try Catalog(path: catalogPath, readOnly: readOnly)
        blobs = try BlobStore(root: "\(absolute)/objects", tmpDir: "\(absolute)/tmp", packIndex: catalog)
        staging = try StagingArea(root: "\(absolute)/staging")
    }

    deinit { lockFD.withLock { if $0 >= 0 { close($0) } } }

    /// Refuses (`.notPermitted`) to serve a store other users could change behind the daemon's
    /// back: one that others can write, or (for a mount `shared` with other users, where grants
    /// must be the only way in) one that others can enter at all. Says how to fix it.
    public func checkPrivate(shared: Bool) throws {
        let st: stat
        do { st = try Syscalls.lstat(root) } catch let e as Errno { throw ArtifactError.system(e, "cannot stat the store", path: root) }
        let mode = st.st_mode & 0o777
        if mode & 0o022 != 0 {
            throw ArtifactError(.notPermitted, "other users can write the store folder (mode \(String(mode, radix: 8))); `chmod 700 \(root)`", path: root)
        }
        if shared, mode & 0o077 != 0 {
            throw ArtifactError(.notPermitted, "a mount shared with --allow-other needs a store only its user can enter (mode \(String(mode, radix: 8)), "
                                + "others could read the catalog and blobs around the grants); `chmod 700 \(root)`", path: root)
        }
        if shared, st.st_uid != geteuid() {
            throw ArtifactError(.notPermitted, "the store folder belongs to uid \(st.st_uid), not to the daemon's user (uid \(geteuid()))", path: root)
        }
    }

    /// Takes the store's exclusive lock for a mount; fails with `.busy` if another daemon has it.
    public func lockForMount() throws {
        let path = "\(root)/lock"
        let fd: Int32
        do { fd = try Syscalls.open(path, flags: O_RDWR | O_CREAT, mode: 0o600) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot open lock file", path: path)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw ArtifactError(.busy, "the store is already mounted by another artifactfs process", path: root)
        }
        lockFD.withLock { $0 = fd }
    }

    /// Whether a daemon has this store mounted now: this process holds the mount's lock, or
    /// a mount in /proc/self/mounts answers this store. (Not by trying the lock: a probe that
    /// took it for a moment could make a `mount` starting then fail as "already mounted".)
    public var isMounted: Bool {
        if lockFD.withLock({ $0 >= 0 }) { return true }
        return !MountControl.mountpoints(ofStore: root).isEmpty
    }

    /// Creates a project and its incoming/ folder.
    /// The creator owns incoming/, so that with `--allow-other` they can write to it.
    public func createProject(name: String, uid: Int64, gid: Int64 = 0) throws -> ProjectRecord {
        let project = try catalog.createProject(name: name, uid: uid)
        let incoming = try staging.ensureIncoming(projectId: project.id!)
        _ = chown(incoming, uid_t(uid), gid_t(gid))
        return project
    }
}
