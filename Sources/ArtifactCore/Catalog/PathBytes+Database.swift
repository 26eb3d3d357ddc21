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

extension PathBytes {
    /// `afs_dir(path)`: the folder of a path stored as bytes (`parent`), for statements that
    /// split an import journal's paths into a file row's `dir` and `name` (`insertRun`).
    static let sqlDir = DatabaseFunction("afs_dir", argumentCount: 1, pure: true) { values in
        PathBytes.fromDatabaseValue(values[0])?.parent
    }

    /// `afs_name(path)`: the last name of a path stored as bytes (`lastComponent`).
    static let sqlName = DatabaseFunction("afs_name", argumentCount: 1, pure: true) { values in
        PathBytes.fromDatabaseValue(values[0])?.lastComponent
    }
}
