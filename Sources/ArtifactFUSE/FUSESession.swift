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
    public var allowOther = false
    public var threads = 8
    public init(mountpoint: String) { self.mountpoint = mountpoint }
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
        var argv = ["artifactfs", "-o", "fsname=artifactfs,subtype=artifactfs,default_permissions"]
        if options.allowOther { argv += ["-o", "allow_other"] }
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
