import Foundation
import GRDB

/// A blob's name is stored as the digest's 32 bytes (a BLOB), not its 64 hex characters:
/// half the bytes in every row and index that names a blob (SPEC §8, catalog size). A value
/// that is not 32 bytes does not decode: reading its row throws, and the catalog reports that
/// as `.corrupt`.
extension BlobHash: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { Data(bytes).databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> BlobHash? {
        guard case .blob(let data) = dbValue.storage else { return nil }
        return BlobHash(bytes: data)
    }

    /// A blob name read back from the catalog: the one place a row's blob column is parsed.
    /// Throws `.corrupt` naming `path` (the row's file) when it is not a SHA-256.
    static func parse(_ value: DatabaseValue, of path: PathBytes) throws -> BlobHash {
        guard let hash = BlobHash.fromDatabaseValue(value) else {
            throw ArtifactError(.corrupt, "the catalog names a blob that is not a SHA-256: \(catalogName(value))", path: path)
        }
        return hash
    }

    /// `parse`, for a column where NULL means "no blob".
    static func parseOptional(_ value: DatabaseValue, of path: PathBytes) throws -> BlobHash? {
        value.isNull ? nil : try parse(value, of: path)
    }

    /// How `verify` names a stored blob column value: the hex of a well-formed name, and the
    /// value itself (text, or the hex of bytes that are not 32 long) for anything else.
    static func catalogName(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .blob(let data):
            if let hash = BlobHash(bytes: data) { return hash.hex }
            return "x'" + data.map { String(format: "%02x", $0) }.joined() + "'"
        case .string(let text): return text
        case .int64(let n): return String(n)
        case .double(let d): return String(d)
        case .null: return "NULL"
        }
    }

    /// SQL that holds for a well-formed stored name in column `column`.
    static func wellFormed(_ column: String) -> String { "(typeof(\(column)) = 'blob' AND length(\(column)) = 32)" }
}
