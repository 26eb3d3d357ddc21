import Foundation
import GRDB

/// Keep policies stored per project (and, for unreachable versions, per dataset), which `gc`
/// applies: the `retention` table, one JSON policy per owner.
extension Catalog {
    /// What a stored policy belongs to.
    public enum RetentionOwner: String, Sendable { case project, dataset }

    /// Stores `policy` (JSON) for `kind` `id`, replacing any earlier one; nil removes it.
    public func setRetention(_ kind: RetentionOwner, id: Int64, policy: Data?) throws {
        try write("the retention policy was not stored") { db in
            if let policy {
                try db.execute(sql: """
                    INSERT INTO retention (kind, owner_id, policy, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(kind, owner_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at
                    """, arguments: [kind.rawValue, id, String(decoding: policy, as: UTF8.self), Date().timeIntervalSince1970])
            } else {
                try db.execute(sql: "DELETE FROM retention WHERE kind = ? AND owner_id = ?", arguments: [kind.rawValue, id])
            }
        }
    }

    /// Every stored policy of `kind`: (owner id, JSON).
    public func retentionPolicies(_ kind: RetentionOwner) throws -> [(id: Int64, policy: Data)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT owner_id, policy FROM retention WHERE kind = ? ORDER BY owner_id", arguments: [kind.rawValue])
                .map { ($0["owner_id"], Data(($0["policy"] as String).utf8)) }
        }
    }
}

extension KeepPolicy {
    /// The policy stored for project `id`, if any.
    public static func stored(for id: ProjectID, in catalog: Catalog) throws -> KeepPolicy? {
        try catalog.retentionPolicies(.project).first { $0.id == id.rawValue }.map { try JSONDecoder().decode(KeepPolicy.self, from: $0.policy) }
    }

    /// Stores this policy for project `id` (gc applies it); an empty policy removes it.
    public func store(for id: ProjectID, in catalog: Catalog) throws {
        try catalog.setRetention(.project, id: id.rawValue, policy: isEmpty ? nil : try JSONEncoder().encode(self))
    }
}
