import Foundation

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
