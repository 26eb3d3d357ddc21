import Foundation
import GRDB

extension Catalog {
    // MARK: datasets

    public func datasets() throws -> [DatasetRecord] {
        try read { try DatasetRecord.order(Column("name")).fetchAll($0) }
    }

    public func dataset(named name: String) throws -> DatasetRecord? {
        try read { try DatasetRecord.filter(Column("name") == name).fetchOne($0) }
    }

    public func dataset(id: DatasetID) throws -> DatasetRecord? {
        try read { try DatasetRecord.fetchOne($0, key: id) }
    }

    /// Creates a dataset with an empty branch `main`; user `uid` is its admin.
    public func createDataset(name: String, uid: Int64, gid: Int64) throws -> DatasetRecord {
        try NameRules.validate(name, kind: "dataset")
        return try write { db in
            if try DatasetRecord.filter(Column("name") == name).fetchOne(db) != nil {
                throw ArtifactError(.alreadyExists, "dataset already exists", path: name)
            }
            let now = Date().timeIntervalSince1970
            var d = DatasetRecord(id: nil, name: name, ownerUid: uid, ownerGid: gid, createdAt: now)
            try d.insert(db)
            try Self.setGrant(db, .admin, to: .user(uid_t(truncatingIfNeeded: uid)), on: .dataset(d.id!))
            var main = RefRecord(id: nil, datasetId: d.id!, kind: .branch, name: "main", versionId: nil, createdAt: now)
            try main.insert(db)
            return d
        }
    }

    // MARK: refs

    public func refs(datasetId: DatasetID, kind: RefRecord.Kind) throws -> [RefRecord] {
        try read { try RefRecord.filter(Column("dataset_id") == datasetId && Column("kind") == kind.rawValue).order(Column("name")).fetchAll($0) }
    }

    public func ref(datasetId: DatasetID, kind: RefRecord.Kind, name: String) throws -> RefRecord? {
        try read { try Self.ref($0, datasetId: datasetId, kind: kind, name: name) }
    }

    static func ref(_ db: Database, datasetId: DatasetID, kind: RefRecord.Kind, name: String) throws -> RefRecord? {
        try RefRecord.filter(Column("dataset_id") == datasetId && Column("kind") == kind.rawValue && Column("name") == name).fetchOne(db)
    }

    public func ref(id: RefID) throws -> RefRecord? {
        try read { try RefRecord.fetchOne($0, key: id) }
    }

    /// Creates branch `name` at `versionId` (nil: an empty branch).
    public func createBranch(datasetId: DatasetID, name: String, at versionId: VersionID?) throws -> RefRecord {
        try NameRules.validate(name, kind: "branch")
        // Its folder is `@NAME`, which must fit in a name of the filesystem.
        if name.utf8.count > NameRules.maxBytes - 1 {
            throw ArtifactError(.nameTooLong, "branch name is longer than \(NameRules.maxBytes - 1) bytes (its folder @NAME would not fit)", path: name)
        }
        try Self.refuseVersionLikeName(name, kind: "branch")
        return try write { db in
            if try Self.ref(db, datasetId: datasetId, kind: .branch, name: name) != nil {
                throw ArtifactError(.alreadyExists, "branch already exists", path: "@\(name)")
            }
            if try Self.ref(db, datasetId: datasetId, kind: .tag, name: name) != nil {
                throw ArtifactError(.alreadyExists, "a tag has that name, and a name must say which one it means; choose another", path: "@\(name)")
            }
            var r = RefRecord(id: nil, datasetId: datasetId, kind: .branch, name: name, versionId: versionId,
                              createdAt: Date().timeIntervalSince1970)
            try r.insert(db)
            return r
        }
    }

    /// A branch or tag named like a version id (`20261201T023715Z-001`) would hide or be hidden
    /// by that version wherever a reference is resolved: refused with `.invalidArgument`.
    static func refuseVersionLikeName(_ name: String, kind: String) throws {
        if name.range(of: #"^[0-9]{8}T[0-9]{6}Z-[0-9]+$"#, options: .regularExpression) != nil {
            throw ArtifactError(.invalidArgument, "a \(kind) name cannot look like a version id", path: name)
        }
    }

    /// Creates tag `name` at `versionId`. Tags never move: an existing name is an error.
    public func createTag(datasetId: DatasetID, name: String, at versionId: VersionID) throws -> RefRecord {
        try NameRules.validate(name, kind: "tag")
        try Self.refuseVersionLikeName(name, kind: "tag")
        return try write { db in
            if try Self.ref(db, datasetId: datasetId, kind: .branch, name: name) != nil {
                throw ArtifactError(.alreadyExists, "a branch has that name, and a name must say which one it means; choose another", path: name)
            }
            if let existing = try Self.ref(db, datasetId: datasetId, kind: .tag, name: name) {
                let at = try existing.versionId.flatMap { try VersionRecord.fetchOne(db, key: $0)?.name } ?? "?"
                throw ArtifactError(.alreadyExists, "tag already exists (at version \(at)); tags never move", path: name)
            }
            var r = RefRecord(id: nil, datasetId: datasetId, kind: .tag, name: name, versionId: versionId,
                              createdAt: Date().timeIntervalSince1970)
            try r.insert(db)
            return r
        }
    }

    // MARK: versions

    public func versions(datasetId: DatasetID) throws -> [VersionRecord] {
        try read { try VersionRecord.filter(Column("dataset_id") == datasetId).order(Column("timestamp"), Column("seq")).fetchAll($0) }
    }

    /// How many versions the dataset has (`status`), without reading them.
    public func versionCount(datasetId: DatasetID) throws -> Int {
        try read { try VersionRecord.filter(Column("dataset_id") == datasetId).fetchCount($0) }
    }

    public func version(id: VersionID) throws -> VersionRecord? {
        try read { try VersionRecord.fetchOne($0, key: id) }
    }

    public func version(datasetId: DatasetID, name: String) throws -> VersionRecord? {
        try read { try VersionRecord.filter(Column("dataset_id") == datasetId && Column("name") == name).fetchOne($0) }
    }

    /// A version by id, tag or branch name (in that order; `@NAME` is always the branch);
    /// `.notFound` with the name otherwise.
    public func resolve(datasetId: DatasetID, reference: String) throws -> VersionRecord {
        try read { db in
            let branchOnly = reference.hasPrefix("@")
            if !branchOnly, let v = try VersionRecord.filter(Column("dataset_id") == datasetId && Column("name") == reference).fetchOne(db) { return v }
            for kind in branchOnly ? [RefRecord.Kind.branch] : [.tag, .branch] {
                if let r = try Self.ref(db, datasetId: datasetId, kind: kind, name: branchOnly ? String(reference.dropFirst()) : reference) {
                    guard let vid = r.versionId, let v = try VersionRecord.fetchOne(db, key: vid) else {
                        throw ArtifactError(.notFound, "branch has no commits yet", path: reference)
                    }
                    return v
                }
            }
            throw ArtifactError(.notFound, "no such version, tag or branch", path: reference)
        }
    }

}

extension Catalog {
    /// One entry of a version, by id.
    public func entry(id: EntryID) throws -> EntryRecord? {
        try read { try EntryRecord.fetchOne($0, key: id) }
    }

    /// A value that changes whenever a dataset gains a version or a ref moves: the key under
    /// which its drawn history may be reused.
    func historyStamp(datasetId: DatasetID) throws -> String {
        try read { db in
            let newest = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM version WHERE dataset_id = ?", arguments: [datasetId]) ?? 0
            let refs = try String.fetchOne(db, sql: """
                SELECT group_concat(r, ',') FROM (SELECT id || ':' || COALESCE(version_id, '') AS r FROM ref WHERE dataset_id = ? ORDER BY id)
                """, arguments: [datasetId]) ?? ""
            return "\(newest)|\(refs)"
        }
    }

    /// When the dataset's newest version was made (seconds since 1970), nil when it has none:
    /// `.log`'s mtime.
    func newestVersionTime(datasetId: DatasetID) throws -> Double? {
        try read { try Double.fetchOne($0, sql: "SELECT MAX(created_at) FROM version WHERE dataset_id = ?", arguments: [datasetId]) }
    }
}
