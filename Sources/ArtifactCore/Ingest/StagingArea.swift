import CSystemShims
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A folder found in a project's incoming/ on disk, with the metadata a run keeps of it.
public struct StagedDirectory: Sendable {
    public var relativePath: PathBytes
    public var mode: Int64? = nil
    public var uid: Int64? = nil
    public var gid: Int64? = nil
    public var mtimeNs: Int64? = nil
    public var xattrs = UserXattrs()

    public init(relativePath: PathBytes, mode: Int64? = nil, uid: Int64? = nil, gid: Int64? = nil, mtimeNs: Int64? = nil,
                xattrs: UserXattrs = UserXattrs()) {
        self.relativePath = relativePath; self.mode = mode; self.uid = uid; self.gid = gid; self.mtimeNs = mtimeNs; self.xattrs = xattrs
    }
}

/// A file found in a project's incoming/ folder on disk: a regular file, a symlink or a
/// special file (FIFO, socket, device node).
public struct StagedFile: Sendable {
    public var relativePath: PathBytes
    public var fullPath: PathBytes
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    public var ino: UInt64
    /// It was open for writing when the daemon died: maybe a truncated copy (see `StagingMark`).
    public var interrupted: Bool
    /// It is open for writing now (its `writing` mark; after a crash, until recovery).
    public var beingWritten = false
    public var kind: FileKind = .regular
    /// A symlink's target, byte for byte.
    public var target: PathBytes? = nil
    public var nlink: Int64 = 1
    public var rdev: Int64 = 0
    public var atimeNs: Int64 = 0
    public var xattrs = UserXattrs()
}

/// Marks the daemon keeps on staged files on disk, as extended attributes in its own
/// namespace, so that they survive a crash of the daemon.
///
/// `writing` is set while a file is open for writing and removed when its last writer closes;
/// a file that still carries it at the next mount was cut short (a `cp` killed with the
/// daemon), so recovery turns it into `interrupted`. An interrupted file is never sealed by the
/// quiet period: it stays in incoming/ until it is written again or sealed explicitly.
public enum StagingMark {
    public static let writing = ControlAttribute.writing
    public static let interrupted = ControlAttribute.interrupted

    /// Whether the file at `path` carries `mark` (without following a final symlink).
    public static func has(_ mark: String, at path: PathBytes) -> Bool {
        path.withCString { afs_lgetxattr($0, mark, nil, 0) } >= 0
    }

    /// Whether the file behind a `/proc/self/fd/N` path (an O_PATH descriptor) carries `mark`.
    public static func has(_ mark: String, procPath: String) -> Bool {
        afs_getxattr(procPath, mark, nil, 0) >= 0
    }

    public static func remove(_ mark: String, at path: PathBytes) {
        _ = path.withCString { afs_lremovexattr($0, mark) }
    }

    /// Marks an open file as being written (and no longer interrupted).
    /// `created`: the file was made just now, so it carries no `interrupted` mark to remove.
    public static func beginWriting(fd: Int32, created: Bool = false) {
        _ = afs_fsetxattr(fd, writing, "1", 1)
        if !created { _ = afs_fremovexattr(fd, interrupted) }
    }

    public static func endWriting(fd: Int32) {
        _ = afs_fremovexattr(fd, writing)
    }

    /// After a crash: a file still marked `writing` becomes `interrupted`.
    public static func recover(at path: PathBytes) {
        guard has(writing, at: path) else { return }
        _ = path.withCString { afs_setxattr($0, interrupted, "1", 1) }
        remove(writing, at: path)
    }
}

/// The on-disk folders behind every project's incoming/: `staging/<project-id>/incoming`.
///
/// Staged data lives inside the store, next to `objects/`, so sealing moves it by hard link
/// and a crash or remount finds it still there.
public final class StagingArea: Sendable {
    public let root: String

    public init(root: String) throws {
        self.root = root
        do { try Syscalls.mkdirs(root) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot create the staging folder", path: root)
        }
    }

    public func incomingPath(projectId: ProjectID) -> String { "\(root)/\(projectId)/incoming" }

    @discardableResult
    public func ensureIncoming(projectId: ProjectID) throws -> String {
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
    /// `recovering` (once, at mount, before anything is served) turns the `writing` marks a
    /// crash left into `interrupted` ones.
    public func scan(projectId: ProjectID, recovering: Bool = false) throws -> (files: [StagedFile], directories: [StagedDirectory]) {
        let base = PathBytes(incomingPath(projectId: projectId))
        var files: [StagedFile] = []
        var dirs: [StagedDirectory] = []
        func walk(_ rel: PathBytes) throws {
            let full = base.appending(rel)
            let entries: [(name: PathBytes, type: UInt8)]
            do { entries = try Syscalls.listDirectory(full) } catch let e as Errno {
                if e == .noSuchFileOrDirectory && rel.isEmpty { return }
                throw ArtifactError.system(e, "cannot list staged folder", path: full.description)
            }
            for entry in entries {
                let childRel = rel.appending(entry.name)
                let childFull = full.appending(entry.name)
                guard let st = try? Syscalls.lstat(childFull) else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    dirs.append(StagedDirectory(relativePath: childRel, mode: Int64(st.st_mode & 0o7777), uid: Int64(st.st_uid),
                                                gid: Int64(st.st_gid), mtimeNs: st.st_mtim.nanoseconds,
                                                xattrs: UserXattrs.read(childFull)))
                    try walk(childRel)
                    continue
                }
                guard let kind = FileKind(mode: UInt32(st.st_mode)) else { continue }
                if recovering && kind == .regular { StagingMark.recover(at: childFull) }
                var reserved: [String] = []
                let xattrs = UserXattrs.read(childFull, following: false, reserved: &reserved)
                var file = StagedFile(
                    relativePath: childRel, fullPath: childFull, size: Int64(st.st_size),
                    mode: Int64(st.st_mode & 0o7777), mtimeNs: st.st_mtim.nanoseconds,
                    uid: Int64(st.st_uid), gid: Int64(st.st_gid), ino: UInt64(st.st_ino),
                    interrupted: reserved.contains(StagingMark.interrupted))
                file.kind = kind
                file.beingWritten = reserved.contains(StagingMark.writing)
                file.nlink = Int64(st.st_nlink)
                file.rdev = Int64(st.st_rdev)
                file.atimeNs = st.st_atim.nanoseconds
                file.xattrs = xattrs
                if kind == .symlink { file.target = try? Syscalls.readlink(childFull) }
                files.append(file)
            }
        }
        try walk(.empty)
        return (files, dirs)
    }

    /// The rules of the project's `incoming/.artifactfsignore` (none when there is no such file).
    public func ignoreRules(projectId: ProjectID) -> IgnoreRules {
        let path = PathBytes(incomingPath(projectId: projectId)).appending(IgnoreRules.fileName)
        guard let fd = try? Syscalls.open(path, flags: O_RDONLY | O_NOFOLLOW) else { return IgnoreRules(file: []) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        return IgnoreRules(file: bytes)
    }

    /// Removes the now-empty folders below incoming/ (deepest first), keeping incoming/ itself.
    func removeEmptyDirectories(projectId: ProjectID, _ dirs: [StagedDirectory]) {
        let base = PathBytes(incomingPath(projectId: projectId))
        for d in dirs.map(\.relativePath).sorted(by: { $0.count > $1.count }) {
            try? Syscalls.rmdir(base.appending(d))
        }
    }
}

/// SHA-256s computed while files were written, keyed by the staged file's inode, so that
/// sealing need not read them again. Anything in doubt is simply absent.
///
/// A hash finished behind the writer arrives after its writer closed (`BackgroundHasher`), so
/// the close first takes a ticket (`expect`) and the hash is kept only if nothing forgot the
/// inode in between: a new writer, a truncation, or a new file that reuses the inode number.
public final class StagedHashCache: Sendable {
    private enum Entry { case expected(UInt64), hashed(BlobHash, size: Int64, blocks: BlockSums?) }
    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextTicket: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// The hash of `ino` will be handed over later with `store(…, ticket:)`.
    public func expect(ino: UInt64) -> UInt64 {
        state.withLock { s in
            s.nextTicket += 1
            s.entries[ino] = .expected(s.nextTicket)
            return s.nextTicket
        }
    }

    /// Keeps `hash` for `ino` (`size` bytes, with its `blocks` when it has more than one);
    /// with a `ticket`, only if the inode was not forgotten (nor expected again) since that
    /// ticket was taken.
    public func store(ino: UInt64, hash: BlobHash, size: Int64, blocks: BlockSums? = nil, ticket: UInt64? = nil) {
        state.withLock { s in
            if let ticket {
                guard case .expected(let t)? = s.entries[ino], t == ticket else { return }
            }
            s.entries[ino] = .hashed(hash, size: size, blocks: (blocks?.sums.count ?? 0) > 1 ? blocks : nil)
        }
    }

    public func forget(ino: UInt64) {
        state.withLock { _ = $0.entries.removeValue(forKey: ino) }
    }

    public func lookup(ino: UInt64, size: Int64) -> (hash: BlobHash, blocks: BlockSums?)? {
        state.withLock { s in
            guard case .hashed(let hash, let stored, let blocks)? = s.entries[ino], stored == size else { return nil }
            return (hash, blocks)
        }
    }
}
