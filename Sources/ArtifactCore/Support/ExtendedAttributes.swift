import CSystemShims
import SystemPackage

/// getxattr/setxattr on a path, for the CLI's conversation with a mounted daemon.
public enum ExtendedAttributes {
    public static func get(_ path: String, _ name: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = afs_getxattr(path, name, &buffer, buffer.count)
        if n < 0 { throw Errno(rawValue: afs_errno()) }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    public static func set(_ path: String, _ name: String, _ value: String) throws {
        let bytes = Array(value.utf8)
        if afs_setxattr(path, name, bytes, bytes.count) != 0 { throw Errno(rawValue: afs_errno()) }
    }
}
