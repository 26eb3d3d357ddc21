import Foundation

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
