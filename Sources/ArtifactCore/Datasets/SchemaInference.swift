import Foundation

/// The schema of one tabular file in a dataset version.
public struct FileSchema: Codable, Sendable, Equatable {
    /// One column as seen across every row, so a diff reports what the data is, not what a sample suggested.
    public struct Column: Codable, Sendable, Equatable {
        public var name: String
        /// "integer", "float", "boolean", "date", "datetime", "string"; JSONL also "object", "array", "mixed";
        /// Parquet also "decimal", "time", "binary", "object", "array";
        /// "null" when no row held a value (including a header-only file, where nullable stays false
        /// because no row had an empty value either).
        public var type: String
        public var nullable: Bool

        public init(name: String, type: String, nullable: Bool) {
            self.name = name
            self.type = type
            self.nullable = nullable
        }
    }

    public var format: String
    /// Header order. Duplicate and empty header names are kept as written: renaming them would make the
    /// schema disagree with what every other reader of the file sees.
    public var columns: [Column]
    /// CSV/TSV: data records, header excluded. JSONL: lines that parsed as objects. Parquet: the footer's row count.
    public var rows: Int64
    /// The first problem found; the rest of the file is still read so the counts stay useful.
    public var error: String?

    public init(format: String, columns: [Column], rows: Int64, error: String? = nil) {
        self.format = format
        self.columns = columns
        self.rows = rows
        self.error = error
    }
}

/// Column-level difference between two schemas of the same path.
public struct ColumnChange: Codable, Sendable, Equatable {
    /// Raw values are the wire spelling, so JSON output matches the CLI's vocabulary.
    public enum Kind: String, Codable, Sendable { case added, removed, typeChanged = "type_changed" }
    public var kind: Kind
    public var column: String
    /// Old type, for removed and type_changed.
    public var from: String?
    /// New type, for added and type_changed.
    public var to: String?

    public init(kind: Kind, column: String, from: String? = nil, to: String? = nil) {
        self.kind = kind
        self.column = column
        self.from = from
        self.to = to
    }
}

/// Streaming schema capture for CSV, TSV and JSON Lines, and Parquet from its footer; never
/// throws, so a bad file cannot fail a commit.
public enum SchemaInference {
    /// Big enough that syscalls are negligible, small enough that huge files never sit in memory.
    public static let defaultChunkSize = 1 << 20

    /// "csv", "tsv" or "jsonl" by file extension (case-insensitive: .csv, .tsv, .tab, .jsonl, .ndjson), else nil.
    public static func format(forName name: String) -> String? {
        let lower = name.lowercased()
        if lower.hasSuffix(".csv") { return "csv" }
        if lower.hasSuffix(".tsv") || lower.hasSuffix(".tab") { return "tsv" }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return "jsonl" }
        if lower.hasSuffix(".parquet") { return "parquet" }
        return nil
    }

    /// Reads the file at `path` in fixed-size chunks (streaming, never the whole file in memory) and infers its schema; nil when `name` is not a tabular format. I/O errors become `error` text, never a throw.
    /// The chunk size is a parameter so tests can force every byte onto a chunk boundary.
    public static func infer(path: String, name: String, chunkSize: Int = defaultChunkSize) -> FileSchema? {
        guard let format = format(forName: name) else { return nil }
        if format == "parquet" { return ParquetFooter.schema(path: path) }
        guard var scanner = makeScanner(format: format) else { return nil }
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            return FileSchema(format: format, columns: [], rows: 0, error: "cannot open file: \(describe(error))")
        }
        defer { try? handle.close() }
        var readError: String?
        do {
            while let data = try handle.read(upToCount: max(1, chunkSize)), !data.isEmpty {
                data.withUnsafeBytes { scanner.feed($0.bindMemory(to: UInt8.self)) }
            }
        } catch {
            readError = "read failed: \(describe(error))"
        }
        var schema = scanner.finish()
        // A read failure wins over a parse error: it means every count in the schema is partial.
        if let readError { schema.error = readError }
        return schema
    }

    /// Same, from bytes in memory, fed in `chunkSize` pieces: the same chunk-boundary paths as a file read.
    public static func infer(bytes: [UInt8], format: String, chunkSize: Int = defaultChunkSize) -> FileSchema {
        if format == "parquet" { return ParquetFooter.schema(bytes: bytes) }
        guard var scanner = makeScanner(format: format) else {
            return FileSchema(format: format, columns: [], rows: 0, error: "unsupported format \"\(format)\"")
        }
        let step = max(1, chunkSize)
        bytes.withUnsafeBufferPointer { all in
            var start = 0
            while start < all.count {
                let end = min(all.count, start + step)
                scanner.feed(UnsafeBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
        return scanner.finish()
    }

    /// Columns added, removed or whose type changed, in column order (new schema's order, then removed ones).
    /// Nullability changes are not reported: one empty cell would otherwise flag a column on every commit.
    public static func columnChanges(from old: FileSchema?, to new: FileSchema?) -> [ColumnChange] {
        // Pair by (name, occurrence) so duplicate header names still line up one to one.
        struct Key: Hashable { var name: String; var occurrence: Int }
        func keyed(_ columns: [FileSchema.Column]) -> [(key: Key, column: FileSchema.Column)] {
            var seen: [String: Int] = [:]
            return columns.map { column in
                let n = seen[column.name, default: 0]
                seen[column.name] = n + 1
                return (Key(name: column.name, occurrence: n), column)
            }
        }
        let oldColumns = keyed(old?.columns ?? [])
        let newColumns = keyed(new?.columns ?? [])
        var oldByKey: [Key: FileSchema.Column] = [:]
        for entry in oldColumns { oldByKey[entry.key] = entry.column }
        var matched = Set<Key>()
        var changes: [ColumnChange] = []
        for (key, column) in newColumns {
            if let before = oldByKey[key] {
                matched.insert(key)
                if before.type != column.type {
                    changes.append(ColumnChange(kind: .typeChanged, column: column.name, from: before.type, to: column.type))
                }
            } else {
                changes.append(ColumnChange(kind: .added, column: column.name, to: column.type))
            }
        }
        for (key, column) in oldColumns where !matched.contains(key) {
            changes.append(ColumnChange(kind: .removed, column: column.name, from: column.type))
        }
        return changes
    }

    static func makeScanner(format: String) -> (any SchemaScanner)? {
        switch format {
        case "csv": return DelimitedScanner(format: "csv", delimiter: UInt8(ascii: ","))
        case "tsv": return DelimitedScanner(format: "tsv", delimiter: UInt8(ascii: "\t"))
        case "jsonl": return JSONLinesScanner()
        default: return nil
        }
    }

    /// Foundation's own text for a missing file is vague; the POSIX reason underneath says what happened.
    private static func describe(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError {
            return underlying.localizedDescription
        }
        return ns.localizedDescription
    }
}

// MARK: - Scanners

/// One streaming pass over a file. Scanners are structs held in a local: class properties would pay
/// a dynamic exclusivity check on every access, which profiled at over half the CSV time.
/// A streaming parser of one tabular format. Bytes reach `consume` with a leading UTF-8 BOM
/// removed, however the chunks split it.
protocol SchemaScanner {
    var bom: BOMFilter { get set }
    mutating func consume(_ bytes: UnsafeBufferPointer<UInt8>)
    mutating func finish() -> FileSchema
}

extension SchemaScanner {
    mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) {
        let (released, rest) = bom.take(bytes)
        if !released.isEmpty { released.withUnsafeBufferPointer { consume($0) } }
        consume(rest)
    }
}

private let lf = UInt8(ascii: "\n")
private let cr = UInt8(ascii: "\r")
private let quote = UInt8(ascii: "\"")

/// What one column has shown so far; `kind` nil means no value yet (the "null" type).
struct ColumnStats {
    var kind: ValueKind?
    var nullable = false

    var typeName: String { kind?.name ?? "null" }
}

/// Holds back the first bytes of a file until it is clear whether they are a UTF-8 BOM,
/// because with tiny chunks the BOM itself can straddle a boundary.
struct BOMFilter {
    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    private var pending: [UInt8] = []
    private var decided = false

    /// Returns held-back bytes that turned out not to be a BOM, then the rest of the chunk to parse.
    mutating func take(_ chunk: UnsafeBufferPointer<UInt8>) -> (released: [UInt8], rest: UnsafeBufferPointer<UInt8>) {
        if decided { return ([], chunk) }
        var i = 0
        while i < chunk.count && !decided {
            pending.append(chunk[i])
            i += 1
            if pending.last != BOMFilter.bom[pending.count - 1] || pending.count == 3 { decided = true }
        }
        let rest = UnsafeBufferPointer(rebasing: chunk[i...])
        guard decided else { return ([], rest) }
        let released = pending == BOMFilter.bom ? [] : pending
        pending = []
        return (released, rest)
    }

    /// A file shorter than a BOM: whatever was held back is ordinary data.
    mutating func finish() -> [UInt8] {
        if decided { return [] }
        decided = true
        defer { pending = [] }
        return pending
    }
}

/// RFC 4180 as a byte state machine, so quoted newlines and chunk boundaries need no lookahead or re-reading.
/// Leniencies (as most readers have): a quote inside an unquoted field, or text after a closing quote,
/// is kept literally; a lone CR ends a record like CRLF; blank lines before the header are skipped.
/// A blank line before more data is a record of one empty field; blank lines at the end are not rows.
struct DelimitedScanner: SchemaScanner {
    private enum State { case fieldStart, unquoted, quoted, afterQuote }

    private let format: String
    private let delimiter: UInt8
    private var state = State.fieldStart
    /// Reused for every field so the hot path allocates nothing per field.
    private var field: [UInt8] = []
    private var fieldIndex = 0
    private var inRecord = false
    private var skipLF = false
    private var headerDone = false
    private var names: [String] = []
    private var stats: [ColumnStats] = []
    private var rows: Int64 = 0
    /// Blank lines are only rows if something follows them; count them until we know.
    private var pendingBlankLines: Int64 = 0
    private var error: String?
    var bom = BOMFilter()

    init(format: String, delimiter: UInt8) {
        self.format = format
        self.delimiter = delimiter
        field.reserveCapacity(256)
    }

    mutating func finish() -> FileSchema {
        let held = bom.finish()
        if !held.isEmpty { held.withUnsafeBufferPointer { consume($0) } }
        switch state {
        case .quoted:
            if headerDone {
                flushBlankLines()
                note("row \(rows + 1): unterminated quoted field")
            } else {
                note("header: unterminated quoted field")
            }
            endField()
            endRecord()
        case .unquoted, .afterQuote:
            endField()
            endRecord()
        case .fieldStart:
            if fieldIndex > 0 || inRecord {
                endField()
                endRecord()
            }
        }
        state = .fieldStart
        let columns = zip(names, stats).map { FileSchema.Column(name: $0, type: $1.typeName, nullable: $1.nullable) }
        return FileSchema(format: format, columns: columns, rows: rows, error: error)
    }

    mutating func consume(_ buf: UnsafeBufferPointer<UInt8>) {
        let n = buf.count
        let delimiter = self.delimiter
        var i = 0
        while i < n {
            switch state {
            case .fieldStart:
                let b = buf[i]
                if skipLF {
                    skipLF = false
                    if b == lf { i += 1; continue }
                }
                if b == quote {
                    state = .quoted
                    inRecord = true
                    i += 1
                } else if b == delimiter {
                    inRecord = true
                    endField()
                    i += 1
                } else if b == lf || b == cr {
                    skipLF = b == cr
                    if fieldIndex == 0 && !inRecord {
                        blankLine()
                    } else {
                        endField()
                        endRecord()
                    }
                    i += 1
                } else {
                    state = .unquoted
                }
            case .unquoted:
                var j = i
                while j < n {
                    let b = buf[j]
                    if b == delimiter || b == lf || b == cr { break }
                    j += 1
                }
                if j > i { inRecord = true }
                if j < n && field.isEmpty {
                    // The whole field is inside this chunk: classify it in place, no copy.
                    endField(UnsafeBufferPointer(rebasing: buf[i..<j]))
                } else if j > i {
                    field.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<j]))
                }
                i = j
                if j < n {
                    let b = buf[j]
                    i += 1
                    state = .fieldStart
                    if !field.isEmpty { endField() }
                    if b != delimiter {
                        skipLF = b == cr
                        endRecord()
                    }
                }
            case .quoted:
                var j = i
                while j < n && buf[j] != quote { j += 1 }
                if j > i { field.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<j])) }
                i = j
                if j < n {
                    state = .afterQuote
                    i += 1
                }
            case .afterQuote:
                let b = buf[i]
                i += 1
                if b == quote {
                    field.append(quote)
                    state = .quoted
                } else if b == delimiter {
                    state = .fieldStart
                    endField()
                } else if b == lf || b == cr {
                    state = .fieldStart
                    skipLF = b == cr
                    endField()
                    endRecord()
                } else {
                    field.append(b)
                    state = .unquoted
                }
            }
        }
    }

    private mutating func note(_ message: String) {
        if error == nil { error = message }
    }

    private mutating func blankLine() {
        if headerDone { pendingBlankLines += 1 }
    }

    /// Blank lines followed by data are records holding one empty field.
    private mutating func flushBlankLines() {
        while pendingBlankLines > 0 {
            pendingBlankLines -= 1
            if stats.count != 1 { note("row \(rows + 1): expected \(stats.count) fields, found 1") }
            for c in stats.indices { stats[c].nullable = true }
            rows += 1
        }
    }

    private mutating func endField() {
        // Swapped out so reading it while `self` mutates needs no copy, and its capacity is kept.
        var value: [UInt8] = []
        swap(&value, &field)
        value.withUnsafeBufferPointer { endField($0) }
        value.removeAll(keepingCapacity: true)
        field = value
    }

    private mutating func endField(_ value: UnsafeBufferPointer<UInt8>) {
        if !headerDone {
            names.append(String(decoding: value, as: UTF8.self))
        } else {
            if fieldIndex == 0 { flushBlankLines() }
            if fieldIndex < stats.count { observe(value, column: fieldIndex) }
        }
        fieldIndex += 1
    }

    private mutating func endRecord() {
        if !headerDone {
            headerDone = true
            stats = Array(repeating: ColumnStats(), count: names.count)
        } else {
            if fieldIndex != stats.count {
                note("row \(rows + 1): expected \(stats.count) fields, found \(fieldIndex)")
                if fieldIndex < stats.count {
                    for c in fieldIndex..<stats.count { stats[c].nullable = true }
                }
            }
            rows += 1
        }
        fieldIndex = 0
        inRecord = false
    }

    private mutating func observe(_ value: UnsafeBufferPointer<UInt8>, column c: Int) {
        if value.isEmpty {
            stats[c].nullable = true
            return
        }
        let current = stats[c].kind
        // Nothing widens past string, so the classification can be skipped for the rest of the file.
        if current == .string { return }
        let kind = ValueKind.classifyDelimited(value)
        stats[c].kind = ValueKind.mergeDelimited(current, kind)
    }
}

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

// MARK: - Value classification

/// A column's inferred type; classified from bytes so a 50 MB file costs no String per cell.
enum ValueKind: UInt8 {
    case integer, float, boolean, date, datetime, string, object, array, mixed

    var name: String {
        switch self {
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .date: return "date"
        case .datetime: return "datetime"
        case .string: return "string"
        case .object: return "object"
        case .array: return "array"
        case .mixed: return "mixed"
        }
    }

    /// CSV/TSV: numbers and dates widen within their family; any other mix is just text.
    static func mergeDelimited(_ a: ValueKind?, _ b: ValueKind) -> ValueKind {
        guard let a else { return b }
        if a == b { return a }
        switch (a, b) {
        case (.integer, .float), (.float, .integer): return .float
        case (.date, .datetime), (.datetime, .date): return .datetime
        default: return .string
        }
    }

    /// JSONL: the JSON type is real information, so a key holding e.g. numbers and strings is "mixed",
    /// not silently "string"; within strings, date/datetime/string widen as in CSV.
    static func mergeJSON(_ a: ValueKind?, _ b: ValueKind) -> ValueKind {
        guard let a else { return b }
        if a == b { return a }
        if a == .mixed || b == .mixed { return .mixed }
        func isNumber(_ k: ValueKind) -> Bool { k == .integer || k == .float }
        func isText(_ k: ValueKind) -> Bool { k == .date || k == .datetime || k == .string }
        if isNumber(a) && isNumber(b) { return .float }
        if isText(a) && isText(b) { return mergeDelimited(a, b) }
        return .mixed
    }

    /// A non-empty CSV/TSV cell.
    static func classifyDelimited(_ b: UnsafeBufferPointer<UInt8>) -> ValueKind {
        let n = b.count
        let c0 = b[0]
        if isDigit(c0) || c0 == UInt8(ascii: "+") || c0 == UInt8(ascii: "-") || c0 == UInt8(ascii: ".") {
            if isDigit(c0) && n >= 10, let kind = dateKind(b) { return kind }
            if isInteger(b) { return .integer }
            if isFloat(b) { return .float }
            return .string
        }
        if n == 4 && matchesLower(b, "true") || n == 5 && matchesLower(b, "false") { return .boolean }
        return .string
    }

    /// A JSON string's raw content: dates and datetimes are recognised, but "42" stays a string.
    static func classifyText(_ b: UnsafeBufferPointer<UInt8>) -> ValueKind {
        if b.count >= 10 && isDigit(b[0]), let kind = dateKind(b) { return kind }
        return .string
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    private static func matchesLower(_ b: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        let w = word.utf8Start
        for i in 0..<b.count where b[i] | 0x20 != w[i] { return false }
        return true
    }

    /// Optional sign and digits that fit Int64.
    static func isInteger(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = b.count
        var i = 0
        var negative = false
        if n > 0 && (b[0] == UInt8(ascii: "+") || b[0] == UInt8(ascii: "-")) {
            negative = b[0] == UInt8(ascii: "-")
            i = 1
        }
        guard i < n else { return false }
        var value: Int64 = 0
        while i < n {
            let d = b[i] &- UInt8(ascii: "0")
            guard d < 10 else { return false }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            // Accumulating negatively lets Int64.min through.
            let (v, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            if o1 || o2 { return false }
            value = v
            i += 1
        }
        return true
    }

    /// Decimal float syntax that Double accepts: [+-](digits[.digits*] | .digits)[(e|E)[+-]digits].
    /// Written out rather than calling Double(_:) so "nan", "inf" and hex floats are not numbers.
    static func isFloat(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = b.count
        var i = 0
        if i < n && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
        var mantissaDigits = 0
        while i < n && isDigit(b[i]) { i += 1; mantissaDigits += 1 }
        if i < n && b[i] == UInt8(ascii: ".") {
            i += 1
            while i < n && isDigit(b[i]) { i += 1; mantissaDigits += 1 }
        }
        guard mantissaDigits > 0 else { return false }
        if i < n && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
            i += 1
            if i < n && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
            var exponentDigits = 0
            while i < n && isDigit(b[i]) { i += 1; exponentDigits += 1 }
            guard exponentDigits > 0 else { return false }
        }
        return i == n
    }

    /// YYYY-MM-DD → date; that plus T/t/space, HH:MM:SS, optional fraction and Z or ±HH[:]MM → datetime.
    static func dateKind(_ b: UnsafeBufferPointer<UInt8>) -> ValueKind? {
        let n = b.count
        guard n == 10 || n >= 19 else { return nil }
        func number(_ at: Int, _ count: Int) -> Int? {
            var v = 0
            for k in at..<(at + count) {
                guard k < n, isDigit(b[k]) else { return nil }
                v = v * 10 + Int(b[k] - UInt8(ascii: "0"))
            }
            return v
        }
        guard number(0, 4) != nil, b[4] == UInt8(ascii: "-"), let month = number(5, 2), b[7] == UInt8(ascii: "-"),
              let day = number(8, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        if n == 10 { return .date }
        let separator = b[10]
        guard separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " "),
              let hour = number(11, 2), b[13] == UInt8(ascii: ":"), let minute = number(14, 2),
              b[16] == UInt8(ascii: ":"), let second = number(17, 2),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var i = 19
        if i < n && (b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",")) {
            i += 1
            let start = i
            while i < n && isDigit(b[i]) { i += 1 }
            guard i > start else { return nil }
        }
        if i == n { return .datetime }
        if (b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z")) && i + 1 == n { return .datetime }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let offsetHour = number(i + 1, 2), offsetHour <= 23
        else { return nil }
        i += 3
        if i < n && b[i] == UInt8(ascii: ":") { i += 1 }
        guard let offsetMinute = number(i, 2), offsetMinute <= 59, i + 2 == n else { return nil }
        return .datetime
    }
}
