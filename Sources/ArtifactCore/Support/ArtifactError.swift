import SystemPackage

/// An error from the core that says what went wrong, to what, why, and where in our code,
/// in one line (the shape of swift-nio's `FileSystemError`: a code, a message, the
/// underlying cause and the source location).
///
/// The FUSE adapter turns `code` into an errno (`errnoValue`) and the CLI turns it into an
/// exit code (`fail`); the core itself never speaks either. `Syscalls` is the one layer of
/// the core that throws `Errno` (as swift-system does); core types wrap it with `system`.
public struct ArtifactError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case notFound, alreadyExists, invalidName, nameTooLong, readOnly, noSpace
        case corrupt, busy, notEmpty, io, invalidArgument, notMounted, crossDevice
        /// A folder where a file is needed (EISDIR).
        case isDirectory
        /// A file where a folder is needed (ENOTDIR).
        case notDirectory
        /// The caller lacks a right it needs (EACCES).
        case permissionDenied
        /// An operation the object does not allow for anyone (EPERM), e.g. a hard link to a folder.
        case notPermitted
        /// An operation this filesystem or this object does not support (EOPNOTSUPP).
        case unsupported
        /// No such extended attribute (ENODATA).
        case noAttribute
        /// The mount's daemon is not running (ENOTCONN on a dead mount), or stopped while it
        /// was asked to do something: its outcome is unknown.
        case daemonGone
    }

    public var code: Code
    public var message: String
    public var path: String?
    /// The system call's error, when one caused this.
    public var underlying: Errno?
    /// Any other cause (a database error, say), kept whole rather than flattened into text.
    public var cause: (any Error)?
    /// Where in our code it was raised: `file:line`.
    public var location: String

    public init(_ code: Code, _ message: String, path: String? = nil, underlying: Errno? = nil,
                cause: (any Error)? = nil, file: StaticString = #fileID, line: UInt = #line) {
        self.code = code
        self.message = message
        self.path = path
        self.underlying = underlying
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    /// An error about a user's file: the path is shown to humans, so invalid UTF-8 shows as U+FFFD.
    public init(_ code: Code, _ message: String, path: PathBytes, underlying: Errno? = nil,
                file: StaticString = #fileID, line: UInt = #line) {
        self.init(code, message, path: path.description, underlying: underlying, file: file, line: line)
    }

    /// The code a failed system call's errno stands for (ENOSPC stays recognisable as `.noSpace`).
    public static func code(for errno: Errno) -> Code {
        switch errno {
        case .noSpace, .diskQuotaExceeded: return .noSpace
        case .noSuchFileOrDirectory: return .notFound
        case .fileExists: return .alreadyExists
        case .readOnlyFileSystem: return .readOnly
        case .fileNameTooLong: return .nameTooLong
        case .directoryNotEmpty: return .notEmpty
        case .invalidArgument: return .invalidArgument
        case .isDirectory: return .isDirectory
        case .notDirectory: return .notDirectory
        case .permissionDenied: return .permissionDenied
        case .notPermitted: return .notPermitted
        case .notSupported, .notSupportedOnSocket: return .unsupported
        case .improperLink: return .crossDevice
        case .resourceBusy: return .busy
        case .socketNotConnected, .connectionAbort: return .daemonGone  // a FUSE mount whose daemon died
        default: return .io
        }
    }

    /// Wraps a failed system call.
    public static func system(_ errno: Errno, _ what: String, path: String?,
                              file: StaticString = #fileID, line: UInt = #line) -> ArtifactError {
        ArtifactError(code(for: errno), "\(what): \(errno)", path: path, underlying: errno, file: file, line: line)
    }

    public static func system(_ errno: Errno, _ what: String, path: PathBytes,
                              file: StaticString = #fileID, line: UInt = #line) -> ArtifactError {
        system(errno, what, path: path.description, file: file, line: line)
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
