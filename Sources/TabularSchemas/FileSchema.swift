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
