import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The lock between the processes that bring blobs into a store and the ones that take them
/// out: a `flock` on `STORE/blobs.lock`. Every process that holds blobs (`BlobStore.adopt`,
/// `BlobStore.holdExisting`) keeps it shared until its last hold ends; gc and `verify --fix`
/// take it exclusively while they delete or move blobs. So a blob another process has just
/// linked or found, and whose rows it is about to commit, is never removed under it, and a
/// file in `objects/` that no row names while nobody holds the lock can only be a leftover.
///
/// `flock` rather than a catalog row: it is released by the kernel when a process dies, so a
/// kill -9 never leaves the store locked (restic's stale-lock problem, `restic unlock`).
public final class BlobHoldLock: Sendable {
    public let path: String
    private struct State {
        var fd: Int32 = -1
        /// Holds of this process that are not released yet.
        var holders = 0
    }
    private let state = Mutex(State())

    public init(path: String) { self.path = path }

    deinit { state.withLock { if $0.fd >= 0 { close($0.fd) } } }

    /// One more hold in this process; the first takes the shared lock, waiting while a gc has
    /// it. Throws `.io` when the lock file cannot be opened.
    func acquireShared() throws {
        try state.withLock { s in
            if s.holders == 0 {
                if s.fd < 0 { s.fd = try Self.open(path) }
                while flock(s.fd, LOCK_SH) != 0 {
                    guard errno == EINTR else { throw ArtifactError.system(Errno(rawValue: errno), "cannot lock the blob store", path: path) }
                }
            }
            s.holders += 1
        }
    }

    /// One hold fewer; the last lets go of the shared lock.
    func releaseShared() {
        state.withLock { s in
            s.holders -= 1
            if s.holders == 0, s.fd >= 0 { _ = flock(s.fd, LOCK_UN) }
        }
    }

    /// Runs `body` with the lock held exclusively by this process (no blob is held by any
    /// process meanwhile). Waits for every holder to finish. Must not be called by a thread of
    /// a process that holds blobs itself (it would wait for itself).
    public func exclusively<T>(_ body: () throws -> T) throws -> T {
        let fd = try Self.open(path)
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw ArtifactError.system(Errno(rawValue: errno), "cannot lock the blob store", path: path) }
        }
        return try body()
    }

    /// Runs `body` with the lock held exclusively if no process (this one included) holds
    /// blobs now; returns nil without waiting otherwise. Throws when the lock file cannot be
    /// opened, or what `body` throws.
    public func exclusivelyIfFree<T>(_ body: () throws -> T) throws -> T? {
        let fd = try Self.open(path)
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        return try body()
    }

    private static func open(_ path: String) throws -> Int32 {
        do { return try Syscalls.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot open the blob store's lock", path: path)
        }
    }
}
