import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A regular file found in a project's incoming/ folder on disk.
public struct StagedFile: Sendable {
    public var relativePath: String
    public var fullPath: String
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    public var ino: UInt64
}

/// The on-disk folders behind every project's incoming/: `staging/<project-id>/incoming`.
///
/// Staged data lives inside the store, next to `objects/`, so sealing moves it by hard link
/// and a crash or remount finds it still there.
public final class StagingArea: @unchecked Sendable {
    public let root: String

    public init(root: String) throws {
        self.root = root
        do { try Syscalls.mkdirs(root) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot create the staging folder", path: root)
        }
    }

    public func incomingPath(projectId: Int64) -> String { "\(root)/\(projectId)/incoming" }

    @discardableResult
    public func ensureIncoming(projectId: Int64) throws -> String {
        let p = incomingPath(projectId: projectId)
        do {
            if try Syscalls.mkdirs(p, mode: 0o755) {
                try Syscalls.fsyncPath(pathParent(p))
                try Syscalls.fsyncPath(root)
            }
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot create incoming folder", path: p)
        }
        return p
    }

    /// Every regular file and folder below incoming/, depth first. Other kinds are skipped.
    public func scan(projectId: Int64) throws -> (files: [StagedFile], directories: [String]) {
        let base = incomingPath(projectId: projectId)
        var files: [StagedFile] = []
        var dirs: [String] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? base : "\(base)/\(rel)"
            let entries: [(name: String, type: UInt8)]
            do { entries = try Syscalls.listDirectory(full) } catch let e as Errno {
                if e == .noSuchFileOrDirectory && rel.isEmpty { return }
                throw ArtifactError.system(e, "cannot list staged folder", path: full)
            }
            for entry in entries {
                let childRel = rel.isEmpty ? entry.name : "\(rel)/\(entry.name)"
                let childFull = "\(full)/\(entry.name)"
                guard let st = try? Syscalls.lstat(childFull) else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    dirs.append(childRel)
                    try walk(childRel)
                case S_IFREG:
                    files.append(StagedFile(
                        relativePath: childRel, fullPath: childFull, size: Int64(st.st_size),
                        mode: Int64(st.st_mode & 0o7777),
                        mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                        uid: Int64(st.st_uid), gid: Int64(st.st_gid), ino: UInt64(st.st_ino)))
                default:
                    continue
                }
            }
        }
        try walk("")
        return (files, dirs)
    }

    /// Removes the now-empty folders below incoming/ (deepest first), keeping incoming/ itself.
    func removeEmptyDirectories(projectId: Int64, _ dirs: [String]) {
        let base = incomingPath(projectId: projectId)
        for d in dirs.sorted(by: { $0.count > $1.count }) {
            _ = Glibc.rmdir("\(base)/\(d)")
        }
    }
}

/// SHA-256s computed while files were written, keyed by the staged file's inode, so that
/// sealing need not read them again. Anything in doubt is simply absent.
public final class StagedHashCache: @unchecked Sendable {
    private var entries: [UInt64: (hash: BlobHash, size: Int64)] = [:]
    private let lock = Mutex()

    public init() {}

    public func store(ino: UInt64, hash: BlobHash, size: Int64) {
        lock.withLock { entries[ino] = (hash, size) }
    }

    public func forget(ino: UInt64) {
        lock.withLock { _ = entries.removeValue(forKey: ino) }
    }

    public func lookup(ino: UInt64, size: Int64) -> BlobHash? {
        lock.withLock {
            guard let e = entries[ino], e.size == size else { return nil }
            return e.hash
        }
    }
}
