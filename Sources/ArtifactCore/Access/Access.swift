import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a grant allows on a project or a dataset (SPEC §6, "Access"). Each right includes the
/// ones below it:
/// - `read`: list and read;
/// - `write`: also change `incoming/` and `@branch/` working trees, seal, commit, make branches;
/// - `admin`: also grant and revoke, set pipelines, tag, delete branches, forget and retention.
public enum Right: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0, read, write, admin

    public static func < (a: Right, b: Right) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .none: return "none"
        case .read: return "read"
        case .write: return "write"
        case .admin: return "admin"
        }
    }

    /// `read`, `write`, `admin` or `none`; nil for anything else.
    public init?(name: String) {
        guard let r = Right.allCases.first(where: { $0.description == name }) else { return nil }
        self = r
    }
}

/// Who a grant is for: one Unix user or every member of one Unix group, by number.
public enum Principal: Hashable, Sendable, CustomStringConvertible {
    case user(uid_t)
    case group(gid_t)

    /// `alice` or `@staff` when the system knows the name, else the number (`1001`, `@1001`).
    public var description: String {
        // The reentrant lookups: the daemon names callers from many request threads at once.
        var buffer = [CChar](repeating: 0, count: 4096)
        switch self {
        case .user(let uid):
            var pw = passwd(), result: UnsafeMutablePointer<passwd>?
            // A name that is not UTF-8 shows as its number rather than repaired.
            if getpwuid_r(uid, &pw, &buffer, buffer.count, &result) == 0, result != nil, let name = String(validatingCString: pw.pw_name) { return name }
            return "\(uid)"
        case .group(let gid):
            var gr = Glibc.group(), result: UnsafeMutablePointer<Glibc.group>?
            if getgrgid_r(gid, &gr, &buffer, buffer.count, &result) == 0, result != nil, let name = String(validatingCString: gr.gr_name) { return "@" + name }
            return "@\(gid)"
        }
    }

    /// `USER`, `@GROUP`, or their numbers (`1001`, `@1001`), looked up in the system's user
    /// and group databases. Throws `.notFound` for a name the system does not know.
    public init(parsing text: String) throws {
        if text.hasPrefix("@") {
            let name = String(text.dropFirst())
            if let gr = getgrnam(name) { self = .group(gr.pointee.gr_gid); return }
            if let gid = gid_t(name) { self = .group(gid); return }
            throw ArtifactError(.notFound, "no such group", path: text)
        }
        if let pw = getpwnam(text) { self = .user(pw.pointee.pw_uid); return }
        if let uid = uid_t(text) { self = .user(uid); return }
        throw ArtifactError(.notFound, "no such user", path: text)
    }

    /// The form a control request carries: `user:UID` or `group:GID`.
    public var wire: String {
        switch self {
        case .user(let uid): return "user:\(uid)"
        case .group(let gid): return "group:\(gid)"
        }
    }

    public init?(wire: some StringProtocol) {
        let parts = wire.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let n = UInt32(parts[1]) else { return nil }
        switch parts[0] {
        case "user": self = .user(n)
        case "group": self = .group(n)
        default: return nil
        }
    }
}

/// What grants are attached to: a project or a dataset, and everything under it.
public enum Resource: Hashable, Sendable {
    case project(ProjectID)
    case dataset(DatasetID)
}

/// One grant: `principal` has `right` on a resource.
public struct Grant: Equatable, Sendable {
    public var principal: Principal
    public var right: Right
    public init(principal: Principal, right: Right) { self.principal = principal; self.right = right }
}

/// Who asks: the uid, gid and supplementary groups the kernel reports for a request (FUSE's
/// `fuse_req_ctx` and `fuse_req_getgroups`), or the CLI's own. `groups` is asked for only when
/// a group grant could matter, since the kernel's answer costs a read of /proc.
public struct Caller: Sendable {
    public var uid: uid_t
    public var gid: gid_t
    private let supplementary: @Sendable () -> [gid_t]

    public init(uid: uid_t, gid: gid_t, groups: @escaping @Sendable () -> [gid_t] = { [] }) {
        self.uid = uid; self.gid = gid; self.supplementary = groups
    }

    /// Every group the caller is in: its gid and its supplementary groups.
    public var groups: [gid_t] { [gid] + supplementary() }

    /// This process's user and groups.
    public static var current: Caller {
        Caller(uid: getuid(), gid: getgid()) {
            let n = getgroups(0, nil)
            guard n > 0 else { return [] }
            var g = [gid_t](repeating: 0, count: Int(n))
            return Array(g.prefix(Int(max(0, getgroups(n, &g)))))
        }
    }

    /// The caller's name for messages: `alice`, or the uid.
    public var name: String { Principal.user(uid).description }
}
