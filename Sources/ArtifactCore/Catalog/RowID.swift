import GRDB

/// The id of one row of one catalog table, typed by the table's record so that a run's id
/// cannot be passed where a version's is expected (`RunID`, `VersionID`, …). Stored as the
/// row's INTEGER primary key; the raw value is what `stat` and inode numbers derive from.
public struct RowID<Table>: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

public typealias ProjectID = RowID<ProjectRecord>
public typealias RunID = RowID<RunRecord>
/// A raw file's row: one path of one run.
public typealias FileID = RowID<FileRecord>
/// A stage output's row.
public typealias OutputID = RowID<OutputRecord>
public typealias DatasetID = RowID<DatasetRecord>
public typealias VersionID = RowID<VersionRecord>
/// A branch or a tag (git's refs: one table, told apart by `RefRecord.kind`).
public typealias RefID = RowID<RefRecord>
/// One entry a version wrote.
public typealias EntryID = RowID<EntryRecord>

extension RowID: Codable {
    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(Int64.self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

extension RowID: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { rawValue.databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> Self? { Int64.fromDatabaseValue(dbValue).map(Self.init) }
}

extension RowID: StatementColumnConvertible {
    public init?(sqliteStatement: SQLiteStatement, index: CInt) {
        self.init(Int64(sqliteStatement: sqliteStatement, index: index))
    }
}
