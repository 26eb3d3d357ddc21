import Foundation

/// A file name, or a relative path of names joined by `/`, as the bytes the kernel gave.
///
/// Linux names are byte strings: two names are the same file only when their bytes are equal
/// (SPEC §1). Swift's `String` compares canonically equivalent text as equal (NFC `é` equals
/// NFD `e` + U+0301) and `String(cString:)` replaces invalid UTF-8 with U+FFFD, so neither may
/// hold a name: every table keyed by a name is keyed by this type, which compares, hashes and
/// sorts byte by byte (the order of `ls` in the C locale and of SQLite's BLOB comparison).
///
/// Stored in the catalog as a BLOB (rows written before names were bytes hold TEXT; both
/// decode to the same bytes). `description` renders a name for humans (lossy, U+FFFD for
/// invalid bytes); `jsonFields` is the documented reversible form for JSON output.
public struct PathBytes: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// The UTF-8 bytes of `string` (for names we make ourselves: "raw_source", "@main", tests).
    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { bytes = Array(value.utf8) }
    /// The bytes up to the NUL, unchanged (what `String(cString:)` would have repaired).
    public init(cString: UnsafePointer<CChar>) {
        let n = strlen(cString)
        bytes = cString.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
    }

    public static let empty = PathBytes([])
    static let slash: UInt8 = 0x2F

    public static func < (a: PathBytes, b: PathBytes) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public var isEmpty: Bool { bytes.isEmpty }
    public var count: Int { bytes.count }

    /// For humans only: invalid UTF-8 shows as U+FFFD. Never compare or store this.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// The text when the bytes are valid UTF-8, else nil.
    public var validUTF8: String? { String(validating: bytes, as: UTF8.self) }

    /// Runs `body` with a NUL-terminated copy of the bytes, for system calls.
    public func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try (bytes + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    // MARK: paths

    /// The folder part ("" for a bare name).
    public var parent: PathBytes {
        guard let slash = bytes.lastIndex(of: Self.slash) else { return .empty }
        return PathBytes(Array(bytes[..<slash]))
    }

    /// This folder and every folder above it, nearest first, without the top (""):
    /// "a/b" gives ["a/b", "a"]. The one walk up a path: a run's folder rows and a stage's
    /// output folders are both inserted along it.
    public var folderAndAncestors: [PathBytes] {
        var out: [PathBytes] = []
        var d = self
        while !d.isEmpty { out.append(d); d = d.parent }
        return out
    }

    /// The last component (the whole value for a bare name).
    public var lastComponent: PathBytes {
        guard let slash = bytes.lastIndex(of: Self.slash) else { return self }
        return PathBytes(Array(bytes[(slash + 1)...]))
    }

    /// `self/name`, or `name` when `self` is empty.
    public func appending(_ name: PathBytes) -> PathBytes {
        if isEmpty { return name }
        if name.isEmpty { return self }
        return PathBytes(bytes + [Self.slash] + name.bytes)
    }

    /// `self/name` for a name we spell ourselves.
    public func appending(_ name: String) -> PathBytes { appending(PathBytes(name)) }

    /// Whether `self` is `dir` or lies below it.
    public func isWithin(_ dir: PathBytes) -> Bool {
        if dir.isEmpty { return true }
        guard bytes.count >= dir.bytes.count, bytes.starts(with: dir.bytes) else { return false }
        return bytes.count == dir.bytes.count || bytes[dir.bytes.count] == Self.slash
    }

    /// Whether `self` lies strictly below `dir`.
    public func isBelow(_ dir: PathBytes) -> Bool { self != dir && isWithin(dir) }

    /// `self` with its leading `from` replaced by `to` (call only when `isWithin(from)`).
    public func replacingPrefix(_ from: PathBytes, with to: PathBytes) -> PathBytes {
        let rest = Array(bytes.dropFirst(from.bytes.count))
        if to.isEmpty { return PathBytes(rest.first == Self.slash ? Array(rest.dropFirst()) : rest) }
        return PathBytes(to.bytes + rest)
    }

    /// The components between slashes.
    public var components: [PathBytes] {
        bytes.split(separator: Self.slash, omittingEmptySubsequences: true).map { PathBytes(Array($0)) }
    }

    public func contains(byte: UInt8) -> Bool { bytes.contains(byte) }
    public func hasPrefix(_ s: String) -> Bool { bytes.starts(with: s.utf8) }
    public func hasSuffix(_ s: String) -> Bool { bytes.count >= s.utf8.count && bytes.suffix(s.utf8.count).elementsEqual(s.utf8) }

    /// For one line of human text: the name as is when it is printable UTF-8 without `"` or
    /// `\\`; otherwise in double quotes with C escapes (`\\n`, `\\t`, `\\"`, `\\\\`, and `\\ooo`
    /// octal for control characters and bytes that are not UTF-8), as git quotes paths.
    public var quoted: String {
        if let text = validUTF8, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x22 || $0 == 0x5C }) { return text }
        var out = "\""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case 0x0A: out += "\\n"; i += 1; continue
            case 0x09: out += "\\t"; i += 1; continue
            case 0x22: out += "\\\""; i += 1; continue
            case 0x5C: out += "\\\\"; i += 1; continue
            default: break
            }
            if b < 0x20 || b == 0x7F { out += octal(b); i += 1; continue }
            if b < 0x80 { out.unicodeScalars.append(Unicode.Scalar(b)); i += 1; continue }
            // One whole UTF-8 sequence if it is valid, else one escaped byte.
            let length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if length > 1, i + length <= bytes.count, let s = String(validating: bytes[i..<(i + length)], as: UTF8.self) {
                out += s; i += length
            } else {
                out += octal(b); i += 1
            }
        }
        return out + "\""
    }

    private func octal(_ b: UInt8) -> String {
        "\\" + String(b >> 6) + String((b >> 3) & 7) + String(b & 7)
    }

    // MARK: JSON

    /// The documented, reversible JSON form of a name under `key`: `{key: text}` when the
    /// bytes are valid UTF-8 (JSON keeps NFC and NFD apart); otherwise
    /// `{key: text with U+FFFD, key_bytes: base64 of the exact bytes}`, as restic's
    /// `linktarget_raw` does for link targets.
    public func jsonFields(_ key: String) -> [String: String] {
        if let text = validUTF8 { return [key: text] }
        return [key: description, key + "_bytes": Data(bytes).base64EncodedString()]
    }
}

extension PathBytes: Codable {
    /// Catalog records go through `DatabaseValueConvertible` (GRDB prefers it). Other encoders
    /// get a string when the bytes are UTF-8 and the array of byte values otherwise: lossless,
    /// and rows written when paths were strings still decode.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { bytes = Array(s.utf8) } else { bytes = try c.decode([UInt8].self) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let text = validUTF8 { try c.encode(text) } else { try c.encode(bytes) }
    }
}
