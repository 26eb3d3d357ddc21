import ArtifactCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The one place core errors become errno values.
func errnoValue(for error: Error) -> Int32 {
    if let e = error as? Errno { return e.rawValue }
    if let e = error as? ArtifactError {
        switch e.code {
        case .notFound: return ENOENT
        case .alreadyExists: return EEXIST
        case .invalidName, .invalidArgument: return EINVAL
        case .nameTooLong: return ENAMETOOLONG
        case .readOnly: return EROFS
        case .noSpace: return ENOSPC
        case .corrupt, .io: return EIO
        case .busy: return EBUSY
        case .notEmpty: return ENOTEMPTY
        case .notMounted, .daemonGone: return ENOTCONN
        case .crossDevice: return EXDEV
        case .isDirectory: return EISDIR
        case .notDirectory: return ENOTDIR
        case .permissionDenied: return EACCES
        case .notPermitted: return EPERM
        case .unsupported: return EOPNOTSUPP
        case .noAttribute: return ENODATA
        }
    }
    return EIO
}
