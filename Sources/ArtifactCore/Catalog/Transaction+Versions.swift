import GRDB

/// The rows behind committed trees (`version`, `entry`), as `VersionTrees` reads them. Entries
/// arrive one at a time through `each`, so a whole version's tree is never held as rows.
extension CatalogTransaction {
    func version(id: VersionID) throws -> VersionRecord? {
        try VersionRecord.fetchOne(db, key: id)
    }

    /// Every version of a dataset up to `maxDepth`: (id, parent id, depth), in any order.
    func versionLinks(datasetId: DatasetID, maxDepth: Int64, _ each: (_ id: VersionID, _ parent: VersionID?, _ depth: Int64) throws -> Void) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT id, parent_id, depth FROM version WHERE dataset_id = ? AND depth <= ?",
                                       arguments: [datasetId, maxDepth])
        while let row = try rows.next() { try each(row["id"], row["parent_id"], row["depth"]) }
    }

    /// The depth of a version (distance from its dataset's root version).
    func versionDepth(id: VersionID) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT depth FROM version WHERE id = ?", arguments: [id])
    }

    /// Every entry any version of the dataset wrote for `path`.
    func entries(datasetId: DatasetID, path: PathBytes, _ each: (EntryRecord) throws -> Void) throws {
        let statement = try db.cachedStatement(sql: "SELECT * FROM entry WHERE dataset_id = ? AND path = ?")
        let rows = try EntryRecord.fetchCursor(statement, arguments: [datasetId, path])
        while let e = try rows.next() { try each(e) }
    }

    /// Every entry any version of the dataset wrote directly in folder `dir`.
    func entries(datasetId: DatasetID, dir: PathBytes, _ each: (EntryRecord) throws -> Void) throws {
        let rows = try EntryRecord.fetchCursor(db, sql: "SELECT * FROM entry WHERE dataset_id = ? AND dir = ?", arguments: [datasetId, dir])
        while let e = try rows.next() { try each(e) }
    }

    /// Every entry written for a path that some version made a folder directly in `dir`:
    /// reads only those paths (partial index `entry_folders`), never the folder's files.
    func entriesOfFolders(datasetId: DatasetID, in dir: PathBytes, _ each: (EntryRecord) throws -> Void) throws {
        let statement = try db.cachedStatement(sql: """
            SELECT * FROM entry WHERE dataset_id = ? AND path IN
                (SELECT path FROM entry WHERE dataset_id = ? AND dir = ? AND kind = 'dir')
            """)
        let rows = try EntryRecord.fetchCursor(statement, arguments: [datasetId, datasetId, dir])
        while let e = try rows.next() { try each(e) }
    }

    /// Every entry of the dataset, of every version (by dataset, not by an IN list of
    /// ancestors: a long history would outgrow SQLite's statement length).
    func entries(datasetId: DatasetID, _ each: (EntryRecord) throws -> Void) throws {
        let rows = try EntryRecord.fetchCursor(db, sql: "SELECT * FROM entry WHERE dataset_id = ?", arguments: [datasetId])
        while let e = try rows.next() { try each(e) }
    }
}

/// The rows `log` reads: versions, refs and recorded schemas of one dataset.
extension CatalogTransaction {
    func versionsNewestFirst(datasetId: DatasetID) throws -> [VersionRecord] {
        try VersionRecord.filter(Column("dataset_id") == datasetId).order(Column("timestamp").desc, Column("seq").desc).fetchAll(db)
    }

    /// Branches and tags of a dataset, by kind then name.
    func refs(datasetId: DatasetID) throws -> [RefRecord] {
        try RefRecord.filter(Column("dataset_id") == datasetId).order(Column("kind"), Column("name")).fetchAll(db)
    }

    /// Every schema an entry of the dataset recorded, as JSON text, by version id then path.
    func forEachSchema(datasetId: DatasetID, _ each: (_ versionId: VersionID, _ path: PathBytes, _ schemaJSON: String) throws -> Void) throws {
        let rows = try Row.fetchCursor(db, sql: """
            SELECT version_id, path, schema FROM entry WHERE dataset_id = ? AND schema IS NOT NULL ORDER BY version_id, path
            """, arguments: [datasetId])
        while let row = try rows.next() { try each(row["version_id"], row["path"], row["schema"]) }
    }

    /// The versions that wrote `path` or anything under it (`log -- PATH`). A folder's
    /// descendants are the byte range after `path/` (BLOBs compare byte by byte; `0` follows `/`).
    func versionsTouching(datasetId: DatasetID, path: PathBytes) throws -> Set<VersionID> {
        let below = PathBytes(path.bytes + [UInt8(ascii: "/")]), beyond = PathBytes(path.bytes + [UInt8(ascii: "0")])
        return Set(try VersionID.fetchAll(db, sql: """
            SELECT DISTINCT version_id FROM entry WHERE dataset_id = ? AND (path = ? OR (path > ? AND path < ?))
            """, arguments: [datasetId, path, below, beyond]))
    }
}
