import Foundation
import GRDB

/// The `access_grant` table (migration v11): one row per (resource, principal) with its right.
/// `AccessPolicy` decides with it; only these functions read or write it.
extension Catalog {
    /// The grants on `resource`, users first, then groups, each by number.
    public func grants(on resource: Resource) throws -> [Grant] {
        try read { db in try Self.grants(db, on: resource) }
    }

    static func grants(_ db: Database, on resource: Resource) throws -> [Grant] {
        let (kind, id) = resource.key
        return try Row.fetchAll(db, sql: """
            SELECT principal_kind, principal_id, right FROM access_grant WHERE resource_kind = ? AND resource_id = ?
            ORDER BY principal_kind DESC, principal_id
            """, arguments: [kind, id]).compactMap { row in
            let n = UInt32(truncatingIfNeeded: row["principal_id"] as Int64)
            let principal: Principal = (row["principal_kind"] as String) == "user" ? .user(n) : .group(n)
            return Right(rawValue: row["right"]).map { Grant(principal: principal, right: $0) }
        }
    }

    /// Gives `principal` `right` on `resource`, replacing what it had; `.none` removes its grant.
    /// Refuses (`.invalidArgument`) to remove the last admin user of a resource, which nobody
    /// could then administer. Throws `.notFound` for a resource that does not exist.
    public func setGrant(_ right: Right, to principal: Principal, on resource: Resource) throws {
        try write("the grant was not changed") { db in
            guard try Self.exists(db, resource) else { throw ArtifactError(.notFound, "no such project or dataset", path: "\(resource)") }
            try Self.setGrant(db, right, to: principal, on: resource)
            let admins = try Self.grants(db, on: resource).filter { $0.right == .admin }
            if admins.isEmpty {
                throw ArtifactError(.invalidArgument, "the last admin cannot be removed; grant admin to someone else first", path: principal.description)
            }
        }
    }

    static func setGrant(_ db: Database, _ right: Right, to principal: Principal, on resource: Resource) throws {
        let (kind, id) = resource.key
        let (pkind, pid): (String, Int64) = {
            switch principal {
            case .user(let u): return ("user", Int64(u))
            case .group(let g): return ("group", Int64(g))
            }
        }()
        if right == .none {
            try db.execute(sql: "DELETE FROM access_grant WHERE resource_kind = ? AND resource_id = ? AND principal_kind = ? AND principal_id = ?",
                           arguments: [kind, id, pkind, pid])
        } else {
            try db.execute(sql: """
                INSERT INTO access_grant (resource_kind, resource_id, principal_kind, principal_id, right, granted_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET right = excluded.right, granted_at = excluded.granted_at
                """, arguments: [kind, id, pkind, pid, right.rawValue, Date().timeIntervalSince1970])
        }
    }

    private static func exists(_ db: Database, _ resource: Resource) throws -> Bool {
        switch resource {
        case .project(let p): return try ProjectRecord.exists(db, key: p)
        case .dataset(let d): return try DatasetRecord.exists(db, key: d)
        }
    }
}

extension Resource {
    /// The `access_grant` columns that name it.
    var key: (String, Int64) {
        switch self {
        case .project(let p): return ("project", p.rawValue)
        case .dataset(let d): return ("dataset", d.rawValue)
        }
    }
}
