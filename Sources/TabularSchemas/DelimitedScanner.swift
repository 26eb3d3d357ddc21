import Foundation

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
