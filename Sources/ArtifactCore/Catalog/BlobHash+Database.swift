import GRDB

/// A blob's name is stored as its 64 hex characters. A value that is not a SHA-256 does not
/// decode: reading its row throws, and the catalog reports that as `.corrupt`.
extension BlobHash: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { hex.databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> BlobHash? {
        String.fromDatabaseValue(dbValue).flatMap(BlobHash.init(hex:))
    }
}
