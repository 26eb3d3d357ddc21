import Foundation

/// JSON Lines: JSONSerialization decides validity, and a small scanner over the same bytes recovers key order
/// (dictionaries lose it) and each value's literal kind, which avoids NSNumber's bool/number bridging on Linux.
struct JSONLinesScanner: SchemaScanner {
    private struct Pair {
        var key: Range<Int>
        var keyEscaped: Bool
        var kind: ValueKind?
    }

    private var line: [UInt8] = []
    private var lineNumber: Int64 = 0
    private var names: [String] = []
    private var index: [String: Int] = [:]
    private var stats: [ColumnStats] = []
    /// The row in which each column last had its key, to mark missing keys nullable without a per-row set.
    private var lastSeenRow: [Int64] = []
    private var rows: Int64 = 0
    private var error: String?
    private var pairs: [Pair] = []
    var bom = BOMFilter()

    mutating func finish() -> FileSchema {
        let held = bom.finish()
        if !held.isEmpty { held.withUnsafeBufferPointer { consume($0) } }
        if !line.isEmpty {
            lineNumber += 1
            processLine()
            line.removeAll(keepingCapacity: true)
        }
        let columns = zip(names, stats).map { FileSchema.Column(name: $0, type: $1.typeName, nullable: $1.nullable) }
        return FileSchema(format: "jsonl", columns: columns, rows: rows, error: error)
    }

    mutating func consume(_ buf: UnsafeBufferPointer<UInt8>) {
        let n = buf.count
        var i = 0
        while i < n {
            var j = i
            while j < n && buf[j] != lf { j += 1 }
            if j > i { line.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<j])) }
            i = j
            if j < n {
                i += 1
                lineNumber += 1
                processLine()
                line.removeAll(keepingCapacity: true)
            }
        }
    }

    private mutating func processLine() {
        var end = line.count
        if end > 0 && line[end - 1] == cr { end -= 1 }
        let blank = line[0..<end].allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == cr }
        if blank { return }
        let bytes = line[0..<end]
        let parsed = try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)
        pairs.removeAll(keepingCapacity: true)
        // Both must agree: JSONSerialization is the validator, the scanner also rejects the trailing
        // commas Linux's JSONSerialization tolerates, since other readers will not.
        guard parsed is [String: Any],
              bytes.withUnsafeBufferPointer({ JSONLinesScanner.scanObject($0, into: &pairs) })
        else {
            if error == nil { error = "line \(lineNumber): not a JSON object" }
            return
        }
        rows += 1
        var distinctSeen = 0
        for pair in pairs {
            let name = keyString(pair)
            let c: Int
            if let existing = index[name] {
                c = existing
            } else {
                c = names.count
                index[name] = c
                names.append(name)
                // Earlier rows lacked this key.
                stats.append(ColumnStats(kind: nil, nullable: rows > 1))
                lastSeenRow.append(0)
            }
            if lastSeenRow[c] != rows { distinctSeen += 1 }
            lastSeenRow[c] = rows
            if let kind = pair.kind {
                stats[c].kind = ValueKind.mergeJSON(stats[c].kind, kind)
            } else {
                stats[c].nullable = true
            }
        }
        if distinctSeen < stats.count {
            for c in stats.indices where lastSeenRow[c] != rows { stats[c].nullable = true }
        }
    }

    private func keyString(_ pair: Pair) -> String {
        let raw = line[pair.key]
        if !pair.keyEscaped { return String(decoding: raw, as: UTF8.self) }
        // Escapes are rare in keys; let the real parser decode them rather than duplicating its rules.
        let quoted = line[(pair.key.lowerBound - 1)..<(pair.key.upperBound + 1)]
        if let s = (try? JSONSerialization.jsonObject(with: Data(quoted), options: .fragmentsAllowed)) as? String {
            return s
        }
        return String(decoding: raw, as: UTF8.self)
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == lf || b == cr }

    /// Walks one top-level object, recording each key and its value's kind; false on anything unexpected.
    private static func scanObject(_ b: UnsafeBufferPointer<UInt8>, into pairs: inout [Pair]) -> Bool {
        let n = b.count
        var i = 0
        func skipSpace() { while i < n && isSpace(b[i]) { i += 1 } }
        skipSpace()
        guard i < n, b[i] == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace()
        if i < n && b[i] == UInt8(ascii: "}") {
            i += 1
            skipSpace()
            return i == n
        }
        while true {
            guard i < n, b[i] == quote, let key = scanString(b, from: i) else { return false }
            i = key.next
            skipSpace()
            guard i < n, b[i] == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace()
            guard i < n else { return false }
            let kind: ValueKind?
            switch b[i] {
            case quote:
                guard let s = scanString(b, from: i) else { return false }
                // An escaped string is never a date; only raw text needs classifying.
                kind = s.escaped ? .string : ValueKind.classifyText(UnsafeBufferPointer(rebasing: b[s.content]))
                i = s.next
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                kind = b[i] == UInt8(ascii: "{") ? .object : .array
                guard let next = skipNested(b, from: i) else { return false }
                i = next
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                kind = b[i] == UInt8(ascii: "n") ? nil : .boolean
                while i < n && b[i] >= UInt8(ascii: "a") && b[i] <= UInt8(ascii: "z") { i += 1 }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                while i < n {
                    let c = b[i]
                    let numeric = (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
                        || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                    if !numeric { break }
                    i += 1
                }
                // Integers that overflow Int64 are reported as float, as in CSV.
                kind = ValueKind.isInteger(UnsafeBufferPointer(rebasing: b[start..<i])) ? .integer : .float
            default:
                return false
            }
            pairs.append(Pair(key: key.content, keyEscaped: key.escaped, kind: kind))
            skipSpace()
            guard i < n else { return false }
            if b[i] == UInt8(ascii: ",") {
                i += 1
                skipSpace()
                continue
            }
            guard b[i] == UInt8(ascii: "}") else { return false }
            i += 1
            skipSpace()
            return i == n
        }
    }

    /// `from` is at the opening quote; `content` excludes the quotes.
    private static func scanString(_ b: UnsafeBufferPointer<UInt8>, from start: Int)
        -> (content: Range<Int>, escaped: Bool, next: Int)? {
        var j = start + 1
        var escaped = false
        while j < b.count {
            let c = b[j]
            if c == UInt8(ascii: "\\") {
                escaped = true
                j += 2
                continue
            }
            if c == quote { return ((start + 1)..<j, escaped, j + 1) }
            j += 1
        }
        return nil
    }

    private static func skipNested(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var depth = 0
        var j = start
        while j < b.count {
            let c = b[j]
            if c == quote {
                guard let s = scanString(b, from: j) else { return nil }
                j = s.next
                continue
            }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return j + 1 }
            }
            j += 1
        }
        return nil
    }
}
