import Foundation
import GRDB

/// How long the versions of a deleted branch stay (SPEC §6): a deleted branch is kept as a
/// `deleted_ref` row, whose versions stay reachable, shown by `log` and usable by
/// `branch --from`, until `deletedBranches` seconds have passed (default 30 days, like git's
/// `gc.reflogExpireUnreachable`); then gc removes the versions no branch or tag reaches.
/// Stored per dataset (`Catalog.setRetention(.dataset, …)`).
public struct VersionRetention: Codable, Sendable, Equatable {
    /// Seconds.
    public var deletedBranches: Double
    public static let defaultPeriod: Double = 30 * 86_400

    public init(deletedBranches: Double = VersionRetention.defaultPeriod) { self.deletedBranches = deletedBranches }

    enum CodingKeys: String, CodingKey { case deletedBranches = "deleted_branches" }

    /// The policy stored for dataset `id`, else the default.
    public static func stored(for id: DatasetID, in catalog: Catalog) throws -> VersionRetention {
        try catalog.retentionPolicies(.dataset).first { $0.id == id.rawValue }
            .map { try JSONDecoder().decode(VersionRetention.self, from: $0.policy) } ?? VersionRetention()
    }

    /// Stores this policy for dataset `id`.
    public func store(for id: DatasetID, in catalog: Catalog) throws {
        try catalog.setRetention(.dataset, id: id.rawValue, policy: try JSONEncoder().encode(self))
    }
}

/// A branch deleted with `artifactfs branch --delete`, kept for its retention period.
public struct DeletedBranch: Codable, Sendable, Equatable {
    public var name: String
    /// The version it pointed at (nil: it had no commit).
    public var version: String?
    /// Seconds since 1970.
    public var deletedAt: Double

    /// The id the branch had (its working tree's folder of upper files is named by it).
    public var refId: RefID? = nil

    enum CodingKeys: String, CodingKey { case name, version, deletedAt = "deleted_at" }
}

extension Catalog {
    /// Deletes branch `name` of dataset `datasetId` (only the CLI does this; `rm` in the mount
    /// never does): its ref goes, and its head is remembered as a deleted branch so that its
    /// versions stay for the dataset's `VersionRetention`. Throws `.notFound` for no such
    /// branch and `.busy` while its working tree has uncommitted changes. The caller removes
    /// the branch's folder of upper files (`Worktrees.upperDirectory`, empty then).
    public func deleteBranch(datasetId: DatasetID, name: String, now: Date = Date()) throws -> DeletedBranch {
        try write("the branch was not deleted") { db in
            guard let ref = try Self.ref(db, datasetId: datasetId, kind: .branch, name: name) else {
                throw ArtifactError(.notFound, "no such branch", path: "@\(name)")
            }
            // The branch folder's own times (the row of path "") are no change to keep.
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM worktree_change WHERE branch_id = ? AND length(path) > 0",
                                           arguments: [ref.id!]) ?? 0
            guard pending == 0 else {
                throw ArtifactError(.busy, "the branch has \(pending) uncommitted changes; commit or remove them first, nothing was deleted",
                                    path: "@\(name)")
            }
            try db.execute(sql: "DELETE FROM worktree_change WHERE branch_id = ?", arguments: [ref.id!])
            try db.execute(sql: "INSERT INTO deleted_ref (dataset_id, name, version_id, deleted_at) VALUES (?, ?, ?, ?)",
                           arguments: [datasetId, name, ref.versionId, now.timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM ref WHERE id = ?", arguments: [ref.id!])
            let version = try ref.versionId.flatMap { try String.fetchOne(db, sql: "SELECT name FROM version WHERE id = ?", arguments: [$0]) }
            return DeletedBranch(name: name, version: version, deletedAt: now.timeIntervalSince1970, refId: ref.id)
        }
    }

    /// The deleted branches of a dataset still inside their retention, newest first.
    public func deletedBranches(datasetId: DatasetID) throws -> [DeletedBranch] {
        try reading { try $0.deletedBranches(datasetId: datasetId) }
    }

    /// Deletes tag `name` (as `git tag -d`). The version it named is kept like a deleted
    /// branch's head, for the dataset's retention period, so nothing becomes collectable at
    /// once. Throws `.notFound` for no such tag.
    public func deleteTag(datasetId: DatasetID, name: String, now: Date = Date()) throws -> DeletedBranch {
        try write("the tag was not deleted") { db in
            guard let ref = try Self.ref(db, datasetId: datasetId, kind: .tag, name: name) else {
                throw ArtifactError(.notFound, "no such tag", path: name)
            }
            try db.execute(sql: "INSERT INTO deleted_ref (dataset_id, name, version_id, deleted_at, kind) VALUES (?, ?, ?, ?, 'tag')",
                           arguments: [datasetId, name, ref.versionId, now.timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM ref WHERE id = ?", arguments: [ref.id!])
            let version = try ref.versionId.flatMap { try String.fetchOne(db, sql: "SELECT name FROM version WHERE id = ?", arguments: [$0]) }
            return DeletedBranch(name: name, version: version, deletedAt: now.timeIntervalSince1970, refId: ref.id)
        }
    }

    /// Removes the versions of dataset `datasetId` that no branch, tag or deleted branch
    /// younger than `retention.deletedBranches` reaches (with their entries, whose blob
    /// references go), and the deleted branches past it; returns how many versions went.
    /// Descendants of a removed version are removed with it, so no kept version loses a parent.
    public func expireVersions(datasetId: DatasetID, retention: VersionRetention, now: Date = Date()) throws -> Int {
        try writing("no version was removed") { tx in
            try tx.expireVersions(datasetId: datasetId, before: now.timeIntervalSince1970 - retention.deletedBranches,
                                  now: now.timeIntervalSince1970)
        }
    }
}

extension CatalogTransaction {
    func deletedBranches(datasetId: DatasetID) throws -> [DeletedBranch] {
        try Row.fetchAll(db, sql: """
            SELECT d.name, v.name AS version, d.deleted_at FROM deleted_ref d LEFT JOIN version v ON v.id = d.version_id
            WHERE d.dataset_id = ? AND d.kind = 'branch' ORDER BY d.deleted_at DESC, d.id DESC
            """, arguments: [datasetId]).map { DeletedBranch(name: $0["name"], version: $0["version"], deletedAt: $0["deleted_at"]) }
    }

    func expireVersions(datasetId: DatasetID, before cutoff: Double, now: Double) throws -> Int {
        try db.execute(sql: "DELETE FROM deleted_ref WHERE dataset_id = ? AND deleted_at <= ?", arguments: [datasetId, cutoff])
        // Reachable: every ancestor of a head a branch, tag or kept deleted branch names.
        let doomed = try VersionID.fetchAll(db, sql: """
            WITH RECURSIVE reachable(id) AS (
                SELECT version_id FROM ref WHERE dataset_id = ?1 AND version_id IS NOT NULL
                UNION SELECT version_id FROM deleted_ref WHERE dataset_id = ?1 AND version_id IS NOT NULL
                UNION SELECT v.parent_id FROM version v JOIN reachable r ON v.id = r.id WHERE v.parent_id IS NOT NULL
            )
            SELECT id FROM version WHERE dataset_id = ?1 AND id NOT IN (SELECT id FROM reachable) ORDER BY depth DESC
            """, arguments: [datasetId])
        for id in doomed {
            let blobs = try DatabaseValue.fetchAll(db, sql: """
                SELECT blob FROM entry WHERE version_id = ? AND kind IN ('file', 'symlink') AND blob IS NOT NULL
                """, arguments: [id])
            // A malformed name counts no reference (verify reports it): skip, never abort.
            try BlobReferences.remove(db, blobs.compactMap(BlobHash.fromDatabaseValue), now: now)
            try db.execute(sql: "DELETE FROM entry WHERE version_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM version WHERE id = ?", arguments: [id])
        }
        return doomed.count
    }
}
