import CSystemShims
import SystemPackage

/// getxattr/setxattr on a path, for the CLI's conversation with a mounted daemon
/// (`MountControl`). Throws `ArtifactError.system` with the errno as `underlying`.
public enum ExtendedAttributes {
    /// The value (at most 4,096 bytes) as text.
    public static func get(_ path: String, _ name: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = afs_getxattr(path, name, &buffer, buffer.count)
        if n < 0 { throw ArtifactError.system(Errno(rawValue: afs_errno()), "cannot read \(name)", path: path) }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// The value as bytes, up to the kernel's limit for one attribute (64 KiB), in one read
    /// (for values the daemon hands out once, such as a control request's result).
    public static func getLarge(_ path: String, _ name: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = afs_getxattr(path, name, &buffer, buffer.count)
        if n < 0 { throw ArtifactError.system(Errno(rawValue: afs_errno()), "cannot read \(name)", path: path) }
        return Array(buffer[0..<n])
    }

    public static func set(_ path: String, _ name: String, _ value: String) throws {
        let bytes = Array(value.utf8)
        if afs_setxattr(path, name, bytes, bytes.count) != 0 {
            throw ArtifactError.system(Errno(rawValue: afs_errno()), "cannot set \(name)", path: path)
        }
    }
}

/// The `user.*` extended attributes of one file as a run or a version keeps them (SPEC §1),
/// sorted by name. Names in the `user.artifactfs.` namespace are the daemon's own and never
/// part of a user's file.
///
/// Stored in the catalog as one BLOB: per attribute a 16-bit name length, the name, a 32-bit
/// value length and the value (little-endian). Hand-written: four fields need no library.
public struct UserXattrs: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var value: [UInt8]
        public init(name: String, value: [UInt8]) { self.name = name; self.value = value }
    }

    public var entries: [Entry]
    public init(_ entries: [Entry] = []) { self.entries = entries.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) } }
    public var isEmpty: Bool { entries.isEmpty }

    /// The daemon's namespace: shown on files, never stored as a user's attribute.
    public static let reservedPrefix = ControlAttribute.prefix

    public static func isUserAttribute(_ name: String) -> Bool { name.hasPrefix("user.") && !name.hasPrefix(reservedPrefix) }

    public func value(_ name: String) -> [UInt8]? { entries.first { $0.name == name }?.value }

    /// The encoded form; nil when there are none (the column stays NULL).
    public var encoded: [UInt8]? {
        guard !entries.isEmpty else { return nil }
        var out: [UInt8] = []
        for e in entries {
            let name = Array(e.name.utf8)
            out += [UInt8(name.count & 0xFF), UInt8(name.count >> 8)] + name
            let n = UInt32(e.value.count)
            out += [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)] + e.value
        }
        return out
    }

    /// Decodes `encoded`; a damaged value decodes to what precedes the damage.
    public init(encoded bytes: [UInt8]?) {
        var out: [Entry] = []
        if let bytes {
            var i = 0
            while i + 2 <= bytes.count {
                let nameLength = Int(bytes[i]) | Int(bytes[i + 1]) << 8
                i += 2
                guard i + nameLength + 4 <= bytes.count else { break }
                let name = String(decoding: bytes[i..<(i + nameLength)], as: UTF8.self)
                i += nameLength
                let valueLength = Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
                i += 4
                guard i + valueLength <= bytes.count else { break }
                out.append(Entry(name: name, value: Array(bytes[i..<(i + valueLength)])))
                i += valueLength
            }
        }
        entries = out
    }

    /// The user attributes of the file at `path`. Without `following`, a final symlink is not
    /// followed (Linux allows user attributes only on regular files and folders); with it, a
    /// `/proc/self/fd/N` path reaches the file its descriptor names.
    public static func read(_ path: PathBytes, following: Bool = false) -> UserXattrs {
        var reserved: [String] = []
        return read(path, following: following, reserved: &reserved)
    }

    /// As `read`, and also the daemon's own names the file carries (`StagingMark`s).
    public static func read(_ path: PathBytes, following: Bool, reserved: inout [String]) -> UserXattrs {
        path.withCString { p in
            let list = following ? afs_listxattr : afs_llistxattr
            let size = list(p, nil, 0)
            guard size > 0 else { return UserXattrs() }
            var names = [CChar](repeating: 0, count: size)
            let n = list(p, &names, size)
            guard n > 0 else { return UserXattrs() }
            var entries: [Entry] = []
            for raw in names[..<n].split(separator: 0) {
                let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if name.hasPrefix(reservedPrefix) { reserved.append(name) }
                guard isUserAttribute(name) else { continue }
                if let value = get(p, name, following: following) { entries.append(Entry(name: name, value: value)) }
            }
            return UserXattrs(entries)
        }
    }

    private static func get(_ p: UnsafePointer<CChar>, _ name: String, following: Bool) -> [UInt8]? {
        let get = following ? afs_getxattr : afs_lgetxattr
        let size = get(p, name, nil, 0)
        guard size >= 0 else { return nil }
        var value = [UInt8](repeating: 0, count: size)
        let n = get(p, name, &value, size)
        return n >= 0 ? Array(value[..<n]) : nil
    }
}
