import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The schema of a Parquet file from its footer alone: the file ends with FileMetaData (Thrift
/// compact protocol), its 4-byte length and "PAR1", so two reads at the end give the columns and
/// the row count of a file of any size; column data is never read. Top-level columns are
/// reported (a struct is "object", a list "array"); nullable means the column is OPTIONAL.
/// Never throws: a damaged or foreign file gets a schema whose `error` says why.
enum ParquetFooter {
    /// A larger footer is refused rather than read into memory.
    static let maxFooterBytes = 64 << 20

    static func schema(path: String) -> FileSchema {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return failure("cannot open file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return failure("not a regular file") }
        let size = Int(st.st_size)
        guard size >= 12 else { return failure("not a Parquet file (too short)") }
        guard let tail = readExactly(fd, count: 8, at: size - 8) else { return failure("read failed") }
        if let problem = checkTail(tail, fileSize: size) { return failure(problem) }
        let length = footerLength(tail)
        guard let footer = readExactly(fd, count: length, at: size - 8 - length) else { return failure("read failed") }
        return parse(footer: footer)
    }

    static func schema(bytes: [UInt8]) -> FileSchema {
        guard bytes.count >= 12 else { return failure("not a Parquet file (too short)") }
        let tail = Array(bytes[(bytes.count - 8)...])
        if let problem = checkTail(tail, fileSize: bytes.count) { return failure(problem) }
        let length = footerLength(tail)
        return parse(footer: Array(bytes[(bytes.count - 8 - length)..<(bytes.count - 8)]))
    }

    private static func failure(_ message: String) -> FileSchema {
        FileSchema(format: "parquet", columns: [], rows: 0, error: message)
    }

    private static func footerLength(_ tail: [UInt8]) -> Int {
        Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
    }

    private static func checkTail(_ tail: [UInt8], fileSize: Int) -> String? {
        let magic = Array(tail[4..<8])
        if magic == Array("PARE".utf8) { return "encrypted Parquet footer (not read)" }
        guard magic == Array("PAR1".utf8) else { return "not a Parquet file (no PAR1 magic at the end)" }
        let length = footerLength(tail)
        guard length > 0, length <= fileSize - 12, length <= maxFooterBytes else {
            return "corrupt footer length \(length) in a file of \(fileSize) bytes"
        }
        return nil
    }

    private static func readExactly(_ fd: Int32, count: Int, at offset: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            done += n
        }
        return out
    }

    /// One SchemaElement, with the fields the schema needs.
    struct Element {
        var name = ""
        var physical: Int64?
        var repetition: Int64?
        var children: Int64 = 0
        var converted: Int64?
        /// The field id of the LogicalType union member that is set.
        var logical: Int16?
    }

    static func parse(footer: [UInt8]) -> FileSchema {
        var reader = CompactReader(bytes: footer)
        var elements: [Element] = []
        var rows: Int64 = 0
        do {
            try reader.readStruct { r, field, type in
                switch (field, type) {
                case (2, CompactReader.list):
                    let (count, elementType) = try r.listHeader()
                    guard elementType == CompactReader.structType else { throw CompactReader.Malformed("schema is not a list of structs") }
                    for _ in 0..<count { elements.append(try readElement(&r)) }
                    return true
                case (3, CompactReader.i64):
                    rows = try r.zigzag()
                    return true
                default:
                    return false
                }
            }
        } catch {
            return failure("corrupt footer: \(error)")
        }
        guard let root = elements.first else { return failure("corrupt footer: no schema") }
        var columns: [FileSchema.Column] = []
        var index = 1
        for _ in 0..<max(0, root.children) {
            guard index < elements.count else { return FileSchema(format: "parquet", columns: columns, rows: rows, error: "corrupt footer: schema ends early") }
            let e = elements[index]
            columns.append(FileSchema.Column(name: e.name, type: typeName(e), nullable: e.repetition == 1))
            index = subtreeEnd(elements, index)
        }
        return FileSchema(format: "parquet", columns: columns, rows: rows)
    }

    /// The index after element `i` and all its descendants (schemas are stored depth first).
    private static func subtreeEnd(_ elements: [Element], _ i: Int) -> Int {
        var next = i + 1
        var pending = Int(max(0, elements[i].children))
        // Iterative walk: a hostile footer cannot nest deeply enough to exhaust the stack.
        while pending > 0, next < elements.count {
            pending += Int(max(0, elements[next].children)) - 1
            next += 1
        }
        return next
    }

    private static func readElement(_ r: inout CompactReader) throws -> Element {
        var e = Element()
        try r.readStruct { r, field, type in
            switch (field, type) {
            case (1, CompactReader.i32): e.physical = try r.zigzag()
            case (3, CompactReader.i32): e.repetition = try r.zigzag()
            case (4, CompactReader.binary): e.name = String(decoding: try r.binaryBytes(), as: UTF8.self)
            case (5, CompactReader.i32): e.children = try r.zigzag()
            case (6, CompactReader.i32): e.converted = try r.zigzag()
            case (10, CompactReader.structType):
                try r.readStruct { r, member, memberType in
                    e.logical = member
                    try r.skip(memberType)
                    return true
                }
            default: return false
            }
            return true
        }
        return e
    }

    /// Our type vocabulary, from the logical type, else the legacy converted type, else the
    /// physical type.
    static func typeName(_ e: Element) -> String {
        if e.children > 0 {
            if e.logical == 3 || e.converted == 3 { return "array" }
            return "object"  // struct or map
        }
        if e.repetition == 2 { return "array" }  // a bare repeated leaf is a list
        switch e.logical {
        case 1, 4, 12, 14: return "string"       // STRING, ENUM, JSON, UUID
        case 5: return "decimal"
        case 6: return "date"
        case 7: return "time"
        case 8: return "datetime"                // TIMESTAMP
        case 10: return "integer"
        case 13: return "binary"                 // BSON
        case 15: return "float"                  // FLOAT16
        default: break
        }
        switch e.converted ?? -1 {
        case 0, 4, 19: return "string"           // UTF8, ENUM, JSON
        case 5: return "decimal"
        case 6: return "date"
        case 7, 8: return "time"
        case 9, 10: return "datetime"
        case 11...18: return "integer"           // UINT_8 ... INT_64
        case 20, 21: return "binary"             // BSON, INTERVAL
        default: break
        }
        switch e.physical {
        case 0: return "boolean"
        case 1, 2: return "integer"
        case 3: return "datetime"                // INT96, legacy timestamps
        case 4, 5: return "float"
        default: return "binary"                 // BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY
        }
    }
}

/// A reader of Thrift's compact protocol, bounds-checked: malformed input throws, never traps.
struct CompactReader {
    static let boolTrue: UInt8 = 1, boolFalse: UInt8 = 2, i8: UInt8 = 3, i16: UInt8 = 4, i32: UInt8 = 5, i64: UInt8 = 6
    static let double: UInt8 = 7, binary: UInt8 = 8, list: UInt8 = 9, set: UInt8 = 10, map: UInt8 = 11, structType: UInt8 = 12
    static let maxDepth = 64

    struct Malformed: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    let bytes: [UInt8]
    var position = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw Malformed("ends early at byte \(position)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            value |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
            guard shift < 64 else { throw Malformed("varint too long at byte \(position)") }
        }
    }

    mutating func zigzag() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    mutating func binaryBytes() throws -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.count - position) else { throw Malformed("string longer than the footer at byte \(position)") }
        defer { position += Int(length) }
        return bytes[position..<(position + Int(length))]
    }

    mutating func listHeader() throws -> (count: Int, elementType: UInt8) {
        let b = try byte()
        var count = UInt64(b >> 4)
        if count == 15 { count = try varint() }
        // Every element takes at least one byte: a larger count is a lie.
        guard count <= UInt64(bytes.count - position) else { throw Malformed("list of \(count) elements in a shorter footer") }
        return (Int(count), b & 0x0f)
    }

    /// Calls `field` for each field of a struct; a field it does not handle (returns false) is skipped.
    mutating func readStruct(_ field: (inout CompactReader, Int16, UInt8) throws -> Bool) throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw Malformed("nested deeper than \(Self.maxDepth)") }
        var last: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return }
            let type = header & 0x0f
            let delta = Int16(header >> 4)
            let id: Int16
            if delta != 0 {
                id = last &+ delta
            } else {
                let raw = try zigzag()
                guard let narrow = Int16(exactly: raw) else { throw Malformed("field id \(raw) out of range") }
                id = narrow
            }
            last = id
            if try !field(&self, id, type) { try skip(type) }
        }
    }

    /// Skips one value of `type` (a struct field's booleans carry no payload).
    mutating func skip(_ type: UInt8, inCollection: Bool = false) throws {
        switch type {
        case Self.boolTrue, Self.boolFalse: if inCollection { _ = try byte() }
        case Self.i8: _ = try byte()
        case Self.i16, Self.i32, Self.i64: _ = try varint()
        case Self.double:
            guard bytes.count - position >= 8 else { throw Malformed("ends early at byte \(position)") }
            position += 8
        case Self.binary: _ = try binaryBytes()
        case Self.list, Self.set:
            let (count, elementType) = try listHeader()
            try nested { r in for _ in 0..<count { try r.skip(elementType, inCollection: true) } }
        case Self.map:
            let count = try varint()
            guard count <= UInt64(bytes.count - position) else { throw Malformed("map of \(count) entries in a shorter footer") }
            if count > 0 {
                let kinds = try byte()
                try nested { r in
                    for _ in 0..<count {
                        try r.skip(kinds >> 4, inCollection: true)
                        try r.skip(kinds & 0x0f, inCollection: true)
                    }
                }
            }
        case Self.structType: try readStruct { _, _, _ in false }
        default: throw Malformed("unknown type \(type) at byte \(position)")
        }
    }

    private mutating func nested(_ body: (inout CompactReader) throws -> Void) throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw Malformed("nested deeper than \(Self.maxDepth)") }
        try body(&self)
    }
}
