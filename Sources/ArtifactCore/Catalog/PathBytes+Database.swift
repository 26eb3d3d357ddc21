import Foundation
import GRDB

/// Names and paths are stored as BLOBs, which SQLite compares byte by byte, like the kernel
/// (SPEC §1). Rows written before names were bytes may still hold TEXT; both read back.
extension PathBytes: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { Data(bytes).databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> PathBytes? {
        switch dbValue.storage {
        case .blob(let data): return PathBytes(Array(data))
        case .string(let s): return PathBytes(s)
        default: return nil
        }
    }
}
