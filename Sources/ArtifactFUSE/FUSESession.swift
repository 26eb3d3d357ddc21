import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// How a mount is set up.
public struct MountOptions: Sendable {
    public var mountpoint: String
    public var threads = 8
    /// What `/proc/mounts`, `findmnt` and `df` show as the mount's source: the store folder.
    public var source = "artifactfs"
    public init(mountpoint: String) { self.mountpoint = mountpoint }

    /// `source` as a libfuse `-o` value: fuse_opt splits options at commas and takes a
    /// backslash as an escape, so both are escaped (libfuse lib/fuse_opt.c).
    var escapedSource: String {
        source.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,")
    }
}

/// One mounted session of libfuse's low-level API: mount, serve on several threads, unmount.
public final class FUSESession {
    let fileSystem: ArtifactFileSystem
    let options: MountOptions
    private var session: OpaquePointer?
    private var ops = Operations.make()

    public init(fileSystem: ArtifactFileSystem, options: MountOptions) {
        self.fileSystem = fileSystem
        self.options = options
    }

    /// Mounts; when this returns without throwing, the kernel has the mount.
    public func mount() throws {
        // The kernel has applied the caller's umask to every mode it sends (we do not ask for
        // FUSE_CAP_DONT_MASK); the daemon's own umask must not mask it a second time.
        umask(0)
        var argv = ["artifactfs", "-o", "fsname=\(options.escapedSource),subtype=artifactfs"]
        if fileSystem.access.shared {
            // Grants decide, not mode bits (`ArtifactFileSystem+Access`): the kernel asks the
            // daemon, with each request's caller, and access(2) becomes FUSE_ACCESS. No set-ID
            // programs or device files from a mount that many users write.
            argv += ["-o", "allow_other,nosuid,nodev"]
            ops.access = { Operations.access($0, $1, $2) }
        } else {
            // One user: the kernel checks mode bits as on any filesystem.
            argv += ["-o", "default_permissions"]
        }
        var cargs = argv.map { strdup($0) }
        var args = afs_args_init(Int32(cargs.count), &cargs)
        let userdata = Unmanaged.passUnretained(fileSystem).toOpaque()
        guard let se = afs_session_new(&args, &ops, userdata) else {
            throw ArtifactError(.invalidArgument, "libfuse refused the session options")
        }
        fuse_opt_free_args(&args)
        session = se
        fileSystem.session.store(Int(bitPattern: se), ordering: .releasing)
        if fuse_set_signal_handlers(se) != 0 {
            throw ArtifactError(.io, "cannot install signal handlers")
        }
        if fuse_session_mount(se, options.mountpoint) != 0 {
            fuse_remove_signal_handlers(se)
            fuse_session_destroy(se)
            session = nil
            fileSystem.session.store(0, ordering: .releasing)
            throw ArtifactError(.io, "cannot mount (is it an empty folder you may mount on? is /dev/fuse there?)",
                                path: options.mountpoint)
        }
        // O_TMPFILE: see afs_session_read in the CFuse3 shim.
        afs_count_requests(Self.requestCounters)
        if afs_session_read_tmpfile(se) != 0 {
            fuse_session_unmount(se)
            fuse_remove_signal_handlers(se)
            fuse_session_destroy(se)
            session = nil
            fileSystem.session.store(0, ordering: .releasing)
            throw ArtifactError(.io, "libfuse refused the session reader", path: options.mountpoint)
        }
    }

    /// Serves requests until the filesystem is unmounted or the process is signalled.
    public func run() -> Int32 {
        guard let se = session else { return 1 }
        let rc = afs_session_loop_mt(se, UInt32(options.threads))
        fileSystem.session.store(0, ordering: .releasing)
        // Entries being dropped on the background queue use the session: let the one in
        // flight finish (the rest see 0 and stop) before the session goes.
        fileSystem.invalidations.sync {}
        fuse_session_unmount(se)
        fuse_remove_signal_handlers(se)
        fuse_session_destroy(se)
        session = nil
        return rc
    }
}

extension FUSESession {
    /// The session reader's counters (one process, one session): allocated once, never freed.
    nonisolated(unsafe) private static let requestCounters: UnsafeMutablePointer<UInt64> = {
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(AFS_OPCODES))
        p.initialize(repeating: 0, count: Int(AFS_OPCODES))
        return p
    }()

    /// Names of FUSE opcodes, by number (<linux/fuse.h>, `enum fuse_opcode`).
    private static let opcodeNames: [UInt32: String] = [
        1: "LOOKUP", 2: "FORGET", 3: "GETATTR", 4: "SETATTR", 5: "READLINK", 6: "SYMLINK", 8: "MKNOD", 9: "MKDIR",
        10: "UNLINK", 11: "RMDIR", 12: "RENAME", 13: "LINK", 14: "OPEN", 15: "READ", 16: "WRITE", 17: "STATFS",
        18: "RELEASE", 20: "FSYNC", 21: "SETXATTR", 22: "GETXATTR", 23: "LISTXATTR", 24: "REMOVEXATTR", 25: "FLUSH",
        26: "INIT", 27: "OPENDIR", 28: "READDIR", 29: "RELEASEDIR", 30: "FSYNCDIR", 31: "GETLK", 32: "SETLK",
        33: "SETLKW", 34: "ACCESS", 35: "CREATE", 36: "INTERRUPT", 37: "BMAP", 38: "DESTROY", 39: "IOCTL", 40: "POLL",
        41: "NOTIFY_REPLY", 42: "BATCH_FORGET", 43: "FALLOCATE", 44: "READDIRPLUS", 45: "RENAME2", 46: "LSEEK",
        47: "COPY_FILE_RANGE", 48: "SETUPMAPPING", 49: "REMOVEMAPPING", 50: "SYNCFS", 51: "TMPFILE", 52: "STATX",
    ]

    /// The requests the kernel has sent this process's mount, as `NAME=count` words in opcode
    /// order, nonzero counts only (`OTHER` for opcodes past the table): the value of
    /// `user.artifactfs.requests` on the root, so tests bound the round trips an operation
    /// costs. O_TMPFILE requests count as the TMPFILE they arrive as.
    static func requestCounts() -> String {
        (0..<UInt32(AFS_OPCODES)).compactMap { op -> String? in
            let n = afs_request_count(requestCounters, op)
            guard n > 0 else { return nil }
            return "\(op == 0 ? "OTHER" : opcodeNames[op] ?? "OP\(op)")=\(n)"
        }.joined(separator: " ")
    }
}
