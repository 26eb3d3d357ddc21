import ArtifactCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What an open file or folder holds between open and release (a `FileHandle`,
/// `BytesHandle` or `DirectoryHandle`); its address is `fi->fh`. The kernel may send the
/// requests of one open file on several threads at once.
protocol Handle: AnyObject, Sendable {}

extension Handle {
    func toFH() -> UInt64 { UInt64(UInt(bitPattern: Unmanaged.passRetained(self).toOpaque())) }
}

/// The handle an `fi->fh` holds: a class instance, to be cast to the kind expected.
enum Handles {
    static func from(_ fh: UInt64) -> AnyObject? {
        guard fh != 0, let raw = UnsafeRawPointer(bitPattern: UInt(fh)) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue()
    }
    static func release(_ fh: UInt64) -> AnyObject? {
        guard fh != 0, let raw = UnsafeRawPointer(bitPattern: UInt(fh)) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(raw).takeRetainedValue()
    }
}

/// A real descriptor: a blob (read-only) or a staged file (read and maybe write).
final class FileHandle: Handle {
    let fd: Int32
    let staged: StagedObject?
    let writable: Bool
    /// The branch whose working tree this file is in (its writers hold off commits).
    let branch: RefID?
    /// For a blob: what its reads are checked against.
    let check: BlobCheck?
    private let state: Mutex<State>

    private struct State {
        /// The working-tree inode this descriptor is attached to (see `Inode.attach`).
        var inode: Inode?
        var upperPath: String?
        var closed = false
    }

    init(fd: Int32, staged: StagedObject?, writable: Bool, branch: RefID? = nil, upperPath: String? = nil, check: BlobCheck? = nil) {
        self.fd = fd; self.staged = staged; self.writable = writable; self.branch = branch; self.check = check
        self.state = Mutex(State(upperPath: upperPath))
    }

    /// The working-tree inode this descriptor is attached to (see `Inode.attach`).
    var inode: Inode? {
        get { state.withLock { $0.inode } }
        set { state.withLock { $0.inode = newValue } }
    }

    /// An O_TMPFILE file of a working tree was just named `upper`: `begin` counts its writer,
    /// unless the file was closed meanwhile (on another thread), when nobody writes it.
    func named(_ upper: String, begin: () -> Void) {
        state.withLock { state in
            guard !state.closed else { return }
            state.upperPath = upper
            begin()
        }
    }

    /// The file is closed: the upper file its writer wrote (see `Worktrees.beginWriting`), if
    /// any, for `end` to end writing.
    func markClosed(end: (String) -> Void) {
        state.withLock { state in
            state.closed = true
            if let upper = state.upperPath { end(upper) }
        }
    }

    deinit { close(fd) }
}

/// Generated content (e.g. `.run.json`), fixed at open.
final class BytesHandle: Handle {
    let bytes: [UInt8]
    init(bytes: [UInt8]) { self.bytes = bytes }
}

/// A folder listing, taken once per open folder so offsets stay stable while it is read.
/// Taken at the first readdir, not at opendir: an immutable folder whose listing the kernel
/// has cached (`cache_readdir`) is opened and closed without one.
final class DirectoryHandle: Handle {
    struct Entry: Sendable {
        let name: PathBytes
        let virtualNode: Node?
        let attributes: NodeAttributes?
        let isDirectory: Bool
    }
    private let listing = Mutex<[Entry]?>(nil)
    private let take: @Sendable () throws -> [Entry]

    init(_ take: @escaping @Sendable () throws -> [Entry]) { self.take = take }

    /// The listing, taken on the first call.
    func entries() throws -> [Entry] {
        try listing.withLock { listing in
            if let listing { return listing }
            let taken = try take()
            listing = taken
            return taken
        }
    }
}
