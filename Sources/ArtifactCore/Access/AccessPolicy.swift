import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Decides who may do what on a mount (SPEC §6, "Access"). On a mount only its own user can
/// reach (no `--allow-other`, the kernel refuses everyone else) every caller has every right,
/// as before grants existed. On a shared mount a caller's right on a project or dataset is the
/// highest of its user's grant and its groups' grants; root has none of its own unless the
/// mount says `--root-is-admin`. Grants are read from the catalog at every check, so a revoke
/// takes effect at the caller's next operation.
public final class AccessPolicy: Sendable {
    let catalog: Catalog
    /// Several users share the mount (`--allow-other`): grants apply.
    public let shared: Bool
    /// Root administers everything (`--root-is-admin`).
    public let rootIsAdmin: Bool

    public init(catalog: Catalog, shared: Bool, rootIsAdmin: Bool) {
        self.catalog = catalog; self.shared = shared; self.rootIsAdmin = rootIsAdmin
    }

    /// The caller's right on `resource`. Asks for the caller's groups only when a group grant
    /// could raise it.
    public func right(of caller: Caller, on resource: Resource) throws -> Right {
        guard shared else { return .admin }
        if rootIsAdmin && caller.uid == 0 { return .admin }
        let grants = try catalog.grants(on: resource)
        var best = Right.none
        for g in grants { if case .user(let u) = g.principal, u == caller.uid { best = max(best, g.right) } }
        let groupGrants = grants.filter { if case .group = $0.principal { return $0.right > best } else { return false } }
        if !groupGrants.isEmpty {
            let groups = Set(caller.groups)
            for g in groupGrants { if case .group(let gid) = g.principal, groups.contains(gid) { best = max(best, g.right) } }
        }
        return best
    }

    /// Throws `.permissionDenied` (EACCES through the mount) unless the caller has `needed` on
    /// `resource`, naming the resource (`projects/NAME`, `datasets/NAME`), the user, what
    /// they have and what is needed, and `action` ("seal", "grant") when given.
    public func require(_ needed: Right, of caller: Caller, on resource: Resource, to action: String? = nil) throws {
        let has = try right(of: caller, on: resource)
        guard has < needed else { return }
        let what = action.map { "\($0) needs \(needed)" } ?? "\(needed) access is needed"
        throw ArtifactError(.permissionDenied, "permission denied: \(caller.name) has \(has == .none ? "no access" : "\(has) access"); \(what)",
                            path: (try? name(of: resource)) ?? "\(resource)")
    }

    /// `projects/NAME` or `datasets/NAME`.
    public func name(of resource: Resource) throws -> String {
        switch resource {
        case .project(let p): return "projects/" + (try catalog.project(id: p)?.name ?? p.description)
        case .dataset(let d): return "datasets/" + (try catalog.dataset(id: d)?.name ?? d.description)
        }
    }
}
