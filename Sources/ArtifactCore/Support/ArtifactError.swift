import SystemPackage

/// An error from the core that says what went wrong, where, and why, in one line.
///
/// The FUSE adapter turns `code` into an errno and the CLI turns it into an exit code;
/// the core itself never speaks either.
public struct ArtifactError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case notFound, alreadyExists, invalidName, nameTooLong, readOnly, noSpace
        case corrupt, busy, notEmpty, io, invalidArgument, notMounted, crossDevice
        /// An operation the object does not allow (EPERM), e.g. a hard link to a folder.
        case permissionDenied
        /// No such extended attribute (ENODATA).
        case noAttribute
    }

    public var code: Code
    public var message: String
    public var path: String?
    public var underlying: Errno?

    public init(_ code: Code, _ message: String, path: String? = nil, underlying: Errno? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.underlying = underlying
    }

    /// An error about a user's file: the path is shown to humans, so invalid UTF-8 shows as U+FFFD.
    public init(_ code: Code, _ message: String, path: PathBytes, underlying: Errno? = nil) {
        self.init(code, message, path: path.description, underlying: underlying)
    }

    /// Wraps a failed system call, keeping ENOSPC recognisable as `.noSpace`.
    public static func system(_ errno: Errno, _ what: String, path: String?) -> ArtifactError {
        let code: Code
        switch errno {
        case .noSpace, .diskQuotaExceeded: code = .noSpace
        case .noSuchFileOrDirectory: code = .notFound
        case .fileExists: code = .alreadyExists
        case .readOnlyFileSystem: code = .readOnly
        case .fileNameTooLong: code = .nameTooLong
        case .directoryNotEmpty: code = .notEmpty
        case .invalidArgument: code = .invalidArgument
        default: code = .io
        }
        return ArtifactError(code, "\(what): \(errno)", path: path, underlying: errno)
    }

    public static func system(_ errno: Errno, _ what: String, path: PathBytes) -> ArtifactError {
        system(errno, what, path: path.description)
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
