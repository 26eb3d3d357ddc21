import Foundation
import Synchronization

/// A JSON object keyed by file names (a report's per-input status, a version's schemas by
/// path), whose names stay apart byte for byte.
///
/// Foundation's `JSONEncoder` keys every object it builds by Swift `String`, and `String`
/// equality is Unicode canonical equivalence: the NFC and NFD spellings of "café" are one
/// key, so two files' entries would become one. There is no option to change that, and the
/// well-kept alternatives we may use encode through the same type, so this is hand-written:
/// `encode(to:)` writes a placeholder key per name (numbered in byte order of the names, so
/// `.sortedKeys` keeps that order) and `NameKeyedJSON.encode` puts each name's own JSON
/// string in its place afterwards. Keys are `PathBytes.jsonKey`: the text when the name is
/// UTF-8, else its quoted form (C escapes, as git shows it). Different non-UTF-8 names get
/// different keys; a UTF-8 name spelled exactly like another's quoted form (quotes and
/// backslashes included) would share its key, and the entry's own `*_bytes` field tells them apart.
///
/// Encoded without `NameKeyedJSON` (a plain `JSONEncoder`), the keys are the names' text and
/// equivalent names merge, as before. Decoding reads the keys as text.
public struct NameKeyed<Value: Codable & Sendable>: Codable, Sendable {
    public var entries: [PathBytes: Value]

    public init(_ entries: [PathBytes: Value] = [:]) { self.entries = entries }

    public subscript(name: PathBytes) -> Value? {
        get { entries[name] }
        set { entries[name] = newValue }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// The names, in byte order.
    public var names: [PathBytes] { entries.keys.sorted() }

    /// The entries in byte order of their names.
    public var sorted: [(name: PathBytes, value: Value)] {
        entries.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: NameKeyedJSON.Key.self)
        let names = encoder.userInfo[NameKeyedJSON.namesKey] as? NameKeyedJSON.Names
        for (name, value) in sorted {
            try c.encode(value, forKey: NameKeyedJSON.Key(stringValue: names?.placeholder(for: name.jsonKey) ?? name.jsonKey))
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: NameKeyedJSON.Key.self)
        var entries: [PathBytes: Value] = [:]
        for key in c.allKeys { entries[PathBytes(key.stringValue)] = try c.decode(Value.self, forKey: key) }
        self.entries = entries
    }
}

/// Encodes values that hold `NameKeyed` objects; see there.
public enum NameKeyedJSON {
    struct Key: CodingKey {
        var stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    static let namesKey = CodingUserInfoKey(rawValue: "artifactfs.nameKeyedJSON")!

    /// The names one encoding has met, by placeholder number.
    final class Names: Sendable {
        private let _texts = Mutex<[String]>([])
        var texts: [String] { _texts.withLock { $0 } }
        /// U+0001 (which the encoder writes as `\u0001`) and a fixed-width number.
        func placeholder(for text: String) -> String {
            _texts.withLock { texts in
                texts.append(text)
                return "\u{1}" + String(format: "%08d", texts.count - 1)
            }
        }
    }

    /// Pretty-printed, sorted JSON with a final newline: the form of `.run.json` and of the
    /// CLI's `--json` output.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let names = Names()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.userInfo[namesKey] = names
        var data = try encoder.encode(value)
        if !names.texts.isEmpty { data = try substitute(data, names.texts) }
        data.append(0x0A)
        return data
    }

    /// Replaces each key `"\u0001NNNNNNNN" :` with the JSON string of name NNNNNNNN (only in
    /// key position, so a value can never be mistaken for one).
    private static func substitute(_ data: Data, _ texts: [String]) throws -> Data {
        let marker = Array("\"\\u0001".utf8)
        let bytes = [UInt8](data)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = 0
        let plain = JSONEncoder()
        plain.outputFormatting = [.withoutEscapingSlashes]
        while i < bytes.count {
            if bytes[i] == 0x22, i + marker.count + 11 <= bytes.count, Array(bytes[i..<(i + marker.count)]) == marker {
                let digits = bytes[(i + marker.count)..<(i + marker.count + 8)]
                let end = i + marker.count + 8
                if bytes[end] == 0x22, bytes[end + 1] == 0x20, bytes[end + 2] == 0x3A, let n = Int(String(decoding: digits, as: UTF8.self)), n < texts.count {
                    out += try plain.encode(texts[n])
                    i += marker.count + 9
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return Data(out)
    }
}

extension PathBytes {
    /// A name as a JSON object key: the text when it is UTF-8, else its quoted form (C escapes,
    /// as git shows names), which stays different for different non-UTF-8 bytes.
    public var jsonKey: String { validUTF8 ?? quoted }
}

extension NameKeyed: Equatable where Value: Equatable {}
