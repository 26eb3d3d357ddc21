import CSystemShims
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Thin wrappers for the system calls swift-system lacks, in its style: they throw `Errno`
/// and retry on EINTR.
public enum Syscalls {
    @inline(__always)
    public static func retrying(_ body: () -> Int32) throws -> Int32 {
        while true {
            let rc = body()
            if rc >= 0 { return rc }
            let err = afs_errno()
            if err == EINTR { continue }
            throw Errno(rawValue: err)
        }
    }

    public static func fsync(_ fd: Int32) throws {
        _ = try retrying { Glibc.fsync(fd) }
    }

    /// Flushes the whole filesystem that holds `fd`: one call instead of one fsync per file.
    public static func syncfs(_ fd: Int32) throws {
        _ = try retrying { afs_syncfs(fd) }
    }

    /// Opens `path` and fsyncs it, which makes a directory's entries durable.
    public static func fsyncPath(_ path: String, directory: Bool = true) throws {
        let fd = try open(path, flags: O_RDONLY | (directory ? O_DIRECTORY : 0))
        defer { Glibc.close(fd) }
        try fsync(fd)
    }

    public static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws -> Int32 {
        try retrying { afs_open(path, flags | O_CLOEXEC, mode) }
    }

    public static func openat(_ dirfd: Int32, _ path: String, flags: Int32, mode: mode_t = 0) throws -> Int32 {
        try retrying { afs_openat(dirfd, path, flags | O_CLOEXEC, mode) }
    }

    public static func link(_ from: String, _ to: String) throws {
        _ = try retrying { Glibc.link(from, to) }
    }

    public static func rename(_ from: String, _ to: String) throws {
        _ = try retrying { Glibc.rename(from, to) }
    }

    public static func renameat2(_ olddirfd: Int32, _ old: String, _ newdirfd: Int32, _ new: String, flags: UInt32) throws {
        _ = try retrying { afs_renameat2(olddirfd, old, newdirfd, new, flags) }
    }

    public static func unlink(_ path: String) throws {
        _ = try retrying { Glibc.unlink(path) }
    }

    public static func rmdir(_ path: String) throws {
        _ = try retrying { Glibc.rmdir(path) }
    }

    public static func mkdir(_ path: String, mode: mode_t = 0o700) throws {
        _ = try retrying { Glibc.mkdir(path, mode) }
    }

    /// mkdir -p; returns whether anything was created.
    @discardableResult
    public static func mkdirs(_ path: String, mode: mode_t = 0o700) throws -> Bool {
        if exists(path) { return false }
        let parent = pathParent(path)
        if !parent.isEmpty && parent != path { try mkdirs(parent, mode: mode) }
        do { try mkdir(path, mode: mode) } catch Errno.fileExists { return false }
        return true
    }

    public static func lstat(_ path: String) throws -> stat {
        var st = stat()
        _ = try retrying { Glibc.lstat(path, &st) }
        return st
    }

    public static func fstat(_ fd: Int32) throws -> stat {
        var st = stat()
        _ = try retrying { Glibc.fstat(fd, &st) }
        return st
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return Glibc.lstat(path, &st) == 0
    }

    /// Writes all of `bytes` at the descriptor's position (retrying short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    let err = afs_errno()
                    if err == EINTR { continue }
                    throw Errno(rawValue: err)
                }
                done += n
            }
        }
    }

    /// Reads exactly `count` bytes at `offset` unless the file ends first.
    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let err = afs_errno()
                if err == EINTR { continue }
                throw Errno(rawValue: err)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Names in a directory, without "." and "..", as the bytes the directory holds.
    public static func listDirectory(_ path: String) throws -> [(name: PathBytes, type: UInt8)] {
        guard let dir = opendir(path) else { throw Errno(rawValue: afs_errno()) }
        return list(dir)
    }

    /// Names in a directory, without "." and "..", as the bytes the directory holds.
    public static func listDirectory(_ path: PathBytes) throws -> [(name: PathBytes, type: UInt8)] {
        guard let dir = path.withCString({ opendir($0) }) else { throw Errno(rawValue: afs_errno()) }
        return list(dir)
    }

    private static func list(_ dir: OpaquePointer) -> [(name: PathBytes, type: UInt8)] {
        defer { closedir(dir) }
        var out: [(PathBytes, UInt8)] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { PathBytes(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            out.append((name, entry.pointee.d_type))
        }
        return out
    }

    /// Gives a file the daemon just created on a caller's behalf to that caller, as the kernel's
    /// own create would have: owner uid, and gid unless the folder is set-group-ID (then the
    /// file keeps the folder's group, which the backing filesystem already gave it). chown
    /// clears set-user-ID and set-group-ID, so the requested `mode` is put back afterwards.
    public static func giveToCaller(_ fd: Int32, uid: uid_t, gid: gid_t, mode: mode_t, parentIsSetGID: Bool) {
        _ = fchown(fd, uid, parentIsSetGID ? gid_t.max : gid)
        if mode & (S_ISUID | S_ISGID) != 0 { _ = fchmod(fd, mode & 0o7777) }
    }

    // Byte-path forms of the calls above, for paths that hold users' names.

    public static func open(_ path: PathBytes, flags: Int32, mode: mode_t = 0) throws -> Int32 {
        try path.withCString { p in try retrying { afs_open(p, flags | O_CLOEXEC, mode) } }
    }

    public static func openat(_ dirfd: Int32, _ path: PathBytes, flags: Int32, mode: mode_t = 0) throws -> Int32 {
        try path.withCString { p in try retrying { afs_openat(dirfd, p, flags | O_CLOEXEC, mode) } }
    }

    public static func lstat(_ path: PathBytes) throws -> stat {
        var st = stat()
        _ = try path.withCString { p in try retrying { Glibc.lstat(p, &st) } }
        return st
    }

    public static func unlink(_ path: PathBytes) throws {
        _ = try path.withCString { p in try retrying { Glibc.unlink(p) } }
    }

    public static func rmdir(_ path: PathBytes) throws {
        _ = try path.withCString { p in try retrying { Glibc.rmdir(p) } }
    }

    public static func link(_ from: PathBytes, _ to: String) throws {
        _ = try from.withCString { f in try retrying { Glibc.link(f, to) } }
    }

    public static func renameat2(_ olddirfd: Int32, _ old: PathBytes, _ newdirfd: Int32, _ new: PathBytes, flags: UInt32) throws {
        _ = try old.withCString { o in try new.withCString { n in try retrying { afs_renameat2(olddirfd, o, newdirfd, n, flags) } } }
    }

    /// The target of the symbolic link an O_PATH descriptor names, byte for byte.
    public static func readlink(fd: Int32) throws -> PathBytes {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { afs_readlinkat(fd, "", $0.baseAddress!, $0.count) }
        }
        if n < 0 { throw Errno(rawValue: afs_errno()) }
        return PathBytes(Array(buffer[..<n]))
    }

    /// The target of a symbolic link, byte for byte.
    public static func readlink(_ path: PathBytes) throws -> PathBytes {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = path.withCString { p in buffer.withUnsafeMutableBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { Glibc.readlink(p, $0.baseAddress!, $0.count) }
        } }
        if n < 0 { throw Errno(rawValue: afs_errno()) }
        return PathBytes(Array(buffer[..<n]))
    }
}

/// A timespec from nanoseconds since 1970, before 1970 too (tv_nsec stays in 0..<1e9).
public func timeSpec(nanoseconds ns: Int64) -> timespec {
    let (q, r) = ns.quotientAndRemainder(dividingBy: 1_000_000_000)
    return timespec(tv_sec: Int(r < 0 ? q - 1 : q), tv_nsec: Int(r < 0 ? r + 1_000_000_000 : r))
}

extension timespec {
    /// Nanoseconds since 1970.
    public var nanoseconds: Int64 { Int64(tv_sec) * 1_000_000_000 + Int64(tv_nsec) }
}

/// The folder part of a slash-separated path ("" for a bare name).
public func pathParent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "" }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// The last component of a slash-separated path.
public func pathName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// Monotonic nanoseconds, for quiet periods.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
