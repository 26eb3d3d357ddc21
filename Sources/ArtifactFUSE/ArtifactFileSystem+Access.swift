import ArtifactCore
import CFuse3
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Access on a shared mount (SPEC §6): each request is checked against the caller's right on
/// the project or dataset it touches (`AccessPolicy`, decided by the core). The mount runs
/// without `default_permissions`, so the kernel asks the daemon for every open, opendir and
/// change, and for `access(2)` (FUSE_ACCESS), and each of those is checked here with the
/// caller the kernel reports for that request. Attributes are never cached (each caller sees
/// its own mode bits), so every stat is asked too and checked; a name the kernel knows from
/// another user's lookup gives away only that it exists.
extension ArtifactFileSystem {
    /// The project or dataset `inode` belongs to (nil: the root, projects/, datasets/).
    func resource(of inode: Inode) throws -> Resource? {
        switch inode.kind {
        case .staged(let s): return .project(s.projectId)
        case .virtual(let node): return try namespace.resource(of: node)
        }
    }

    /// Throws `.permissionDenied` (EACCES) unless the caller of `req` has `right` on what
    /// `inode` belongs to. Free on a private mount.
    func require(_ right: Right, on inode: Inode, _ req: fuse_req_t?, to action: String? = nil) throws {
        guard access.shared, let req, let resource = try resource(of: inode) else { return }
        try access.require(right, of: caller(req), on: resource, to: action)
    }

    /// Whether `inode` is a project's or dataset's own folder (`projects/P`, `datasets/D`),
    /// which anyone may see listed, with its attributes.
    func isResourceFolder(_ inode: Inode) -> Bool {
        switch inode.kind {
        case .virtual(.project), .virtual(.dataset): return true
        default: return false
        }
    }

    /// The caller's right on what `inode` belongs to; `.admin` on a private mount and for the
    /// root, projects/ and datasets/ (which anyone may list, and make projects and datasets in).
    func right(on inode: Inode, _ req: fuse_req_t?) throws -> Right {
        guard access.shared, let req, let resource = try resource(of: inode) else { return .admin }
        return try access.right(of: caller(req), on: resource)
    }

    /// `st` as the caller sees it on a shared mount: without write bits when it may not write
    /// there (or the node is read-only anyway), without read and search bits when it may not
    /// read, so that tools that ask `access(2)` or look at `ls -l` first behave.
    func maskMode(_ st: inout stat, inode: Inode, writable: Bool, _ req: fuse_req_t?) {
        guard access.shared, let right = try? right(on: inode, req) else { return }
        Self.mask(&st, right: right, writable: writable)
    }

    static func mask(_ st: inout stat, right: Right, writable: Bool) {
        if right < .write || !writable { st.st_mode &= ~mode_t(0o222) }
        if right < .read { st.st_mode &= ~mode_t(0o555) }
    }

    /// FUSE_ACCESS: `access(2)` and `chdir` as the caller's right allows. F_OK: exists.
    /// R_OK needs read; W_OK needs write on a node that takes changes; X_OK needs read, and
    /// for a file an execute bit.
    func checkAccess(_ inode: Inode, mask: Int32, _ req: fuse_req_t?) throws {
        guard mask != F_OK else { return }
        if mask & R_OK != 0 || mask & X_OK != 0 { try require(.read, on: inode, req) }
        if mask & W_OK != 0 {
            guard writable(inode) != nil else { throw ArtifactError(.readOnly, "read-only") }
            try require(.write, on: inode, req)
        }
        if mask & X_OK != 0 {
            let (st, _) = try attributes(of: inode)
            if st.st_mode & S_IFMT != S_IFDIR, st.st_mode & 0o111 == 0 { throw ArtifactError(.permissionDenied, "not executable") }
        }
    }

    /// An entry as the caller of `req` sees it: on a shared mount its mode is masked for the
    /// caller (`maskMode`), and the kernel keeps its attributes for no time, since the next
    /// caller may see other bits.
    func forCaller(_ e: inout fuse_entry_param, _ req: fuse_req_t?) {
        guard access.shared, e.ino != 0, let inode = inodes.get(e.ino) else { return }
        e.attr_timeout = 0
        // A name inside a project or dataset is looked up again at every use, so that the
        // kernel never answers one user's path walk from another user's lookup.
        if !isResourceFolder(inode) { e.entry_timeout = 0 }
        maskMode(&e.attr, inode: inode, writable: writable(inode) != nil, req)
    }

    /// Attributes as the caller of `req` sees them (see `forCaller(_:_:)`).
    func forCaller(_ st: inout stat, _ timeout: inout Double, inode: Inode, _ req: fuse_req_t?) {
        guard access.shared else { return }
        timeout = 0
        maskMode(&st, inode: inode, writable: writable(inode) != nil, req)
    }

    /// A setattr on a shared mount: write on the resource, and a change of owner only as
    /// Linux allows one (chown(2)): a new uid only for root; a new group only for root or
    /// the file's owner, to a group it is in. The daemon makes the change with its own
    /// privileges, so this is where those rules hold.
    func requireChange(on inode: Inode, _ req: fuse_req_t?, owner attr: stat, toSet: Int32) throws {
        guard access.shared, let req else { return }
        try require(.write, on: inode, req)
        guard toSet & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0 else { return }
        let who = caller(req)
        if who.uid == 0 { return }
        let (st, _) = try attributes(of: inode)
        if toSet & FUSE_SET_ATTR_UID != 0, attr.st_uid != st.st_uid {
            throw ArtifactError(.notPermitted, "only root can give a file to another user")
        }
        if toSet & FUSE_SET_ATTR_GID != 0, attr.st_gid != st.st_gid {
            guard st.st_uid == who.uid, who.groups.contains(attr.st_gid) else {
                throw ArtifactError(.notPermitted, "only the file's owner can change its group, to a group they are in")
            }
        }
    }

    /// Control requests only the store's own user makes (`import` and `forget` announce what
    /// they wrote to the catalog directly): the daemon's user, or root.
    func requireStoreUser(_ req: fuse_req_t?) throws {
        guard access.shared, let req else { return }
        let uid = caller(req).uid
        guard uid == 0 || uid == geteuid() else {
            throw ArtifactError(.permissionDenied, "only the store's user can announce changes to the catalog")
        }
    }

}

/// A control request's outcome until the user who asked reads it (`ControlOutcome`).
struct PendingOutcome: Sendable {
    var uid: uid_t
    var bytes: [UInt8]
    var createdAt: UInt64
}

extension ArtifactFileSystem {
    /// Control outcomes one user may leave unread.
    static let outcomesPerUser = 16

    /// `user.artifactfs.request` on the root: runs the request for the caller of `req`
    /// (`ControlRequestHandler`) and keeps its outcome, success or error, under its id.
    /// Throws only for a request that cannot be read (EINVAL) or when none are taken.
    func controlRequest(_ bytes: [UInt8], _ req: fuse_req_t?) throws {
        guard let handler = controlHandler, let req else { throw ArtifactError(.unsupported, "this mount takes no control requests") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let id = object["id"] as? String, id.count == 32, id.allSatisfy(\.isHexDigit) else {
            throw ArtifactError(.invalidArgument, "not a control request")
        }
        let who = caller(req)
        let outcome: ControlOutcome
        do {
            outcome = ControlOutcome(result: try handler.handle(bytes, caller: who, access: access, store: store) { [self] in dropForgotten($0) })
        } catch {
            outcome = ControlOutcome(error: error)
        }
        let encoded = Array((try? JSONEncoder().encode(outcome)) ?? Data())
        let now = monotonicNanoseconds()
        outcomes.withLock { pending in
            // What no one came for within ten minutes is dropped, and a user has at most
            // `outcomesPerUser` waiting (the oldest go first): no one fills the daemon's memory.
            pending = pending.filter { now - $0.value.createdAt < 600_000_000_000 }
            let mine = pending.filter { $0.value.uid == who.uid }.sorted { $0.value.createdAt < $1.value.createdAt }
            for (old, _) in mine.prefix(max(0, mine.count - Self.outcomesPerUser + 1)) { pending[old] = nil }
            pending["\(who.uid):\(id)"] = PendingOutcome(uid: who.uid, bytes: encoded, createdAt: now)
        }
    }

    /// `user.artifactfs.result.ID` on the root: the next chunk of request ID's outcome, for the
    /// user who asked (`size` 0: only its length). ENODATA for anyone else or an unknown id.
    func controlResult(_ name: String, size: Int, _ req: fuse_req_t?) throws -> [UInt8] {
        let id = String(name.dropFirst(ControlAttribute.result.count + 1))
        guard let req else { throw ArtifactError(.noAttribute, "no such result") }
        let uid = caller(req).uid
        // Keyed by the asker and the id: one user cannot take or replace another's outcome.
        let key = "\(uid):\(id)"
        return try outcomes.withLock { pending in
            guard let entry = pending[key], entry.uid == uid else { throw ArtifactError(.noAttribute, "no such result") }
            let part = Array(entry.bytes.prefix(ControlOutcome.chunk))
            if size < part.count { return part }  // a length query (0), or ERANGE: nothing is taken
            if part.count < ControlOutcome.chunk { pending[key] = nil } else { pending[key]?.bytes.removeFirst(part.count) }
            return part
        }
    }
}

/// Which users hold which inodes open, on a shared mount: what a getattr needs to tell an
/// fstat of a file opened before a revoke (allowed, as POSIX keeps open descriptors) from a
/// stat by name (a read like any other). Keyed by the open's handle, since a release does not
/// come with the opener's uid. Does nothing on a private mount.
final class OpenerTable: Sendable {
    private struct State {
        var byHandle: [UInt64: (ino: UInt64, uid: uid_t)] = [:]
        var counts: [UInt64: [uid_t: Int]] = [:]
    }
    private let state = Mutex(State())
    let enabled: Bool

    init(enabled: Bool) { self.enabled = enabled }

    func opened(_ fh: UInt64, ino: UInt64, _ req: fuse_req_t?) {
        guard enabled, fh != 0, let req, let ctx = fuse_req_ctx(req) else { return }
        let uid = ctx.pointee.uid
        state.withLock { s in
            s.byHandle[fh] = (ino, uid)
            s.counts[ino, default: [:]][uid, default: 0] += 1
        }
    }

    func released(_ fh: UInt64) {
        guard enabled else { return }
        state.withLock { s in
            guard let (ino, uid) = s.byHandle.removeValue(forKey: fh) else { return }
            let left = (s.counts[ino]?[uid] ?? 1) - 1
            if left > 0 { s.counts[ino]?[uid] = left } else { s.counts[ino]?[uid] = nil }
            if s.counts[ino]?.isEmpty == true { s.counts[ino] = nil }
        }
    }

    /// Whether the caller of `req` holds `ino` open.
    func holds(ino: UInt64, _ req: fuse_req_t?) -> Bool {
        guard enabled, let req, let ctx = fuse_req_ctx(req) else { return false }
        let uid = ctx.pointee.uid
        return state.withLock { $0.counts[ino]?[uid] != nil }
    }
}
