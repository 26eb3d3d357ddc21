import ArtifactCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a stage command is confined (SPEC §6, "Stages are sandboxed").
///
/// The sandbox is bubblewrap, Debian's `bubblewrap` package and the sandbox Flatpak uses. It is
/// used rather than namespace code of our own, because a mistake there is an escape. It builds
/// a new root:
/// - `/usr`, `/etc` and `/opt` of the system, read-only, and Debian's `/bin`-style links;
/// - the job's input folder read-only at `/job/in`;
/// - its output folder writable at `/job/out`;
/// - a private, writable `/tmp`, also `$TMPDIR` and `$HOME`.
///
/// It then remounts that root read-only, so a write anywhere else fails with EROFS: by `..`,
/// by an absolute path, or through a symlink. The stage's exit status then records it as
/// failed. The store (catalog, blobs, other jobs) is not in the new root at all.
///
/// The command gets an environment of its own (`PATH`, `LANG`, `HOME`, `TMPDIR`), no network
/// unless its stage says `network = true`, its own PID, IPC and
/// UTS namespaces, and it dies with the daemon. When the daemon runs as root, the command runs
/// as `user` (default `nobody`), dropped with util-linux's `setpriv` inside the sandbox.
/// Otherwise it runs as the daemon's own user, in an unprivileged user namespace.
public struct StageSandbox: Sendable {
    /// Paths the command sees.
    public static let input = "/job/in", output = "/job/out", temporary = "/tmp", workingFolder = "/job"
    public static let bwrap = "/usr/bin/bwrap", setpriv = "/usr/bin/setpriv"

    /// The user and group the command runs as (nil: the daemon's own).
    public let user: (uid: uid_t, gid: gid_t)?

    /// A sandbox that runs commands as `userName` when the daemon is root. Throws
    /// `.notFound` for a user the system does not have, and `.invalidArgument` for root
    /// or when bubblewrap is not installed.
    public init(userName: String = "nobody") throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bwrap) else {
            throw ArtifactError(.notFound, "bubblewrap is not installed (apt-get install bubblewrap; mount-scripts/install-deps.sh does)", path: Self.bwrap)
        }
        guard getuid() == 0 else { user = nil; return }
        guard let pw = getpwnam(userName) else { throw ArtifactError(.notFound, "no such user for stage commands", path: userName) }
        guard pw.pointee.pw_uid != 0 else { throw ArtifactError(.invalidArgument, "stage commands must not run as root", path: userName) }
        user = (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    /// Makes the folders the command may write (`out`, `tmp`) its user's.
    public func prepare(writable folders: [String]) {
        guard let user else { return }
        for f in folders { _ = chown(f, user.uid, user.gid) }
    }

    /// The command line that runs `argv` in the sandbox, with the job's `jobDir`, `inDir`,
    /// `outDir` and `tmpDir` (host paths) at `workingFolder`, `input`, `output` and `temporary`.
    public func command(_ argv: [PathBytes], jobDir: String, inDir: String, outDir: String, tmpDir: String, network: Bool) -> [PathBytes] {
        var a = [Self.bwrap, "--die-with-parent", "--new-session",
                 "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if user == nil { a.append("--unshare-user") }
        if !network { a.append("--unshare-net") }
        a += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--ro-bind-try", "/opt", "/opt"]
        for link in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/" + link) {
                a += ["--symlink", target, "/" + link]
            } else if FileManager.default.fileExists(atPath: "/" + link) {
                a += ["--ro-bind", "/" + link, "/" + link]
            }
        }
        // bubblewrap makes a missing folder 0700 when run as root: /job must be open to the user.
        // The job folder itself is bound writable at /job, so what a command leaves there is
        // found by the runner's stray check (and fails the job) rather than vanishing.
        a += ["--dev", "/dev", "--proc", "/proc", "--bind", jobDir, Self.workingFolder,
              "--ro-bind", inDir, Self.input, "--bind", outDir, Self.output, "--bind", tmpDir, Self.temporary,
              "--remount-ro", "/", "--chdir", Self.workingFolder,
              // Nothing of the daemon's environment (credentials an administrator exported
              // before `mount`, say) reaches the command: only these.
              "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
              "--setenv", "TMPDIR", Self.temporary, "--setenv", "HOME", Self.temporary, "--"]
        if let user {
            a += [Self.setpriv, "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--"]
        }
        return a.map { PathBytes($0) } + argv
    }
}
