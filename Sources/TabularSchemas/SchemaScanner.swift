import Foundation

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

let lf = UInt8(ascii: "\n")
let cr = UInt8(ascii: "\r")
let quote = UInt8(ascii: "\"")

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
