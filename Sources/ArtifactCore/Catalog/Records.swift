import GRDB

/// Columns are snake_case in SQL and camelCase in Swift.
protocol CatalogRecord: Codable, FetchableRecord, MutablePersistableRecord {}
extension CatalogRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

public struct ProjectRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "project"
    public var id: Int64?
    public var name: String
    public var ownerUid: Int64
    public var createdAt: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Lifecycle of a run (SPEC §2).
public enum RunStatus: String, Codable, Sendable {
    case inProgress = "in_progress", completed, completedWithErrors = "completed_with_errors", failed
}

/// One ingestion: everything that was in incoming/ when it sealed.
public struct RunRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "run"
    public var id: Int64?
    public var projectId: Int64
    /// The id users see, e.g. 20261121T143005Z-001; sorts chronologically.
    public var name: String
    public var timestamp: Int64
    public var seq: Int64
    public var action: String
    public var status: RunStatus
    public var uid: Int64
    public var createdAt: Double
    public var completedAt: Double?
    public var error: String?
    public var filesNew: Int64
    public var filesSuperseded: Int64
    public var filesDuplicate: Int64
    public var bytes: Int64

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What a registered file is, relative to the earlier versions of its path.
public enum FileStatus: String, Codable, Sendable {
    /// The current version, with content not seen at this path before.
    case new
    /// Same content as the version it replaced.
    case duplicate
    /// A later run registered this path again.
    case superseded
}

/// One version of one raw file: a path under raw_source/ in one run.
public struct FileRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "file"
    public var id: Int64?
    public var projectId: Int64
    public var runId: Int64
    public var path: String
    public var dir: String
    public var name: String
    public var blob: String
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    public var status: FileStatus
    public var supersededBy: Int64?
    public var createdAt: Double
    public var processedAt: Double?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public var hash: BlobHash { BlobHash(hex: blob)! }
}

public struct BlobRecord: CatalogRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "blob"
    public var hash: String
    public var size: Int64
    public var refcount: Int64
    public var createdAt: Double
}
