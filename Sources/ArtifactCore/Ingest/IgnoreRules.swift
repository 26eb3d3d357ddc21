/// The rules of one `.artifactfsignore` file: the paths under `incoming/` or a branch that are
/// never sealed or committed (SPEC: "gitignore syntax").
///
/// The syntax is gitignore's (https://git-scm.com/docs/gitignore) and the matching follows git's
/// own matcher, `wildmatch.c`: blank lines and `#` comments; `\` escapes any byte (so `\#`, `\!`,
/// `\*`, `\ `); trailing spaces are trimmed unless escaped; CRLF line ends and a leading UTF-8 BOM
/// are accepted; `!` negates, and the last rule that matches a path decides; a trailing `/` makes
/// a rule match folders only; a `/` at the start or in the middle anchors the rule to the top of
/// the tree, otherwise it matches a name at any depth; `*` (never across `/`), `?`, classes
/// `[a-z]`, `[!...]`/`[^...]`, `[]...]`, `[[:digit:]]` and the other POSIX class names (ASCII);
/// `**/x` (any depth, including none), `x/**` (everything inside x, not x itself), `a/**/b`
/// (zero or more folders between). Another `**` is a plain `*`, as in git.
///
/// Not supported: nested ignore files (one file per tree top), git's `core.ignorecase` (matching
/// is always case-sensitive) and its global/info exclude files. A malformed rule (an unclosed `[`,
/// a trailing lone `\`, an unknown `[:name:]`) matches nothing, as in git.
///
/// Names are bytes, not Swift `String`s (which would compare NFC and NFD spellings as equal, and
/// cannot hold names that are not UTF-8), so matching is byte-wise: `?` and a class match exactly
/// one byte, so `[é]` matches one of é's two UTF-8 bytes, never the whole character; write `é`
/// literally instead. Hand-written because our dependency set has no well-kept Swift gitignore
/// library, and none works on bytes.
public struct IgnoreRules: Sendable {
    /// The file that holds the rules, at the top of incoming/ or of a branch.
    public static let fileName: PathBytes = ".artifactfsignore"

    private let rules: [Rule]

    /// Parses the contents of a `.artifactfsignore` file. Malformed lines are skipped, never fatal.
    public init(file bytes: [UInt8]) {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        rules = body.split(separator: UInt8(ascii: "\n")).compactMap(Rule.init(line:))
    }

    /// True when the file has no rules (only blank lines, comments or malformed lines).
    public var isEmpty: Bool { rules.isEmpty }

    /// Whether `path` (relative, '/'-separated bytes, no leading slash) is ignored; `isDirectory`
    /// says whether it is a folder. A path inside an ignored folder is ignored (git semantics: a
    /// file cannot be re-included if a parent folder is excluded). Empty names, from `//` or a
    /// trailing `/`, are skipped; the empty path (the tree top) is never ignored.
    public func ignores(_ path: [UInt8], isDirectory: Bool) -> Bool {
        let names = path.split(separator: UInt8(ascii: "/"))
        guard !names.isEmpty, !rules.isEmpty else { return false }
        for depth in 1..<names.count where verdict(names[..<depth], isDirectory: true) == true {
            return true
        }
        return verdict(names[...], isDirectory: isDirectory) ?? false
    }

    /// The last rule that matches decides: true = ignored, false = re-included, nil = no rule matches.
    private func verdict(_ names: ArraySlice<ArraySlice<UInt8>>, isDirectory: Bool) -> Bool? {
        for rule in rules.reversed() where rule.matches(names, isDirectory: isDirectory) {
            return !rule.negated
        }
        return nil
    }
}

// MARK: - Parsing

/// One line of the file.
private struct Rule: Sendable {
    var negated = false
    var directoryOnly = false
    /// A `/` at the start or middle: match the whole path from the top, not just the last name.
    var anchored = false
    /// One per '/'-separated part; an unanchored rule has exactly one, matched against the last name.
    var segments: [Segment] = []

    /// nil for blank lines, comments and malformed rules. The steps and their order are git's
    /// (`add_patterns_from_buffer`, `trim_trailing_spaces`, `parse_path_pattern`).
    init?(line raw: ArraySlice<UInt8>) {
        guard raw.first != UInt8(ascii: "#") else { return nil }
        var line = raw
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        line = Self.trimmingTrailingSpaces(line)
        if line.first == UInt8(ascii: "!") { negated = true; line.removeFirst() }
        if line.last == UInt8(ascii: "/") { directoryOnly = true; line.removeLast() }
        guard !line.isEmpty else { return nil }
        anchored = line.contains(UInt8(ascii: "/"))
        if line.first == UInt8(ascii: "/") { line.removeFirst() }

        // Split at '/', escaped or not ("\/" matches a separator in git too).
        var parts: [[UInt8]] = [[]]
        var i = line.startIndex
        while i < line.endIndex {
            let b = line[i]
            if b == UInt8(ascii: "\\"), i + 1 < line.endIndex {
                if line[i + 1] == UInt8(ascii: "/") { parts.append([]) } else { parts[parts.count - 1] += [b, line[i + 1]] }
                i += 2
            } else {
                if b == UInt8(ascii: "/") { parts.append([]) } else { parts[parts.count - 1].append(b) }
                i += 1
            }
        }
        for part in parts {
            if anchored && part == [UInt8(ascii: "*"), UInt8(ascii: "*")] {
                segments.append(.anyDepth)
            } else {
                guard let glob = Glob(part) else { return nil }
                segments.append(.name(glob))
            }
        }
        // A trailing "/**" matches everything inside, not the folder itself: one or more names.
        if segments.count > 1, case .anyDepth = segments.last {
            segments.insert(.name(Glob([UInt8(ascii: "*")])!), at: segments.count - 1)
        }
    }

    /// Drops trailing spaces that are not escaped with a backslash (git's `trim_trailing_spaces`).
    static func trimmingTrailingSpaces(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var firstTrailingSpace: Int?
        var i = line.startIndex
        while i < line.endIndex {
            switch line[i] {
            case UInt8(ascii: " "):
                if firstTrailingSpace == nil { firstTrailingSpace = i }
            case UInt8(ascii: "\\"):
                i += 1
                if i == line.endIndex { return line }
                firstTrailingSpace = nil
            default:
                firstTrailingSpace = nil
            }
            i += 1
        }
        return firstTrailingSpace.map { line[..<$0] } ?? line
    }

    func matches(_ names: ArraySlice<ArraySlice<UInt8>>, isDirectory: Bool) -> Bool {
        if directoryOnly && !isDirectory { return false }
        if !anchored, case .name(let glob) = segments[0] { return glob.matches(names.last!) }
        return wildcardMatch(segments, names, isStar: { if case .anyDepth = $0 { true } else { false } },
                             matchesOne: { if case .name(let glob) = $0 { glob.matches($1) } else { false } })
    }
}

private enum Segment: Sendable {
    /// A whole-segment `**`: zero or more names.
    case anyDepth
    /// Exactly one name.
    case name(Glob)
}

/// A pattern for one name: literal bytes, `?`, `*` and classes.
private struct Glob: Sendable {
    enum Token: Sendable {
        case byte(UInt8), anyByte, star, set(ByteSet)
    }
    let tokens: [Token]

    /// nil when malformed: a trailing lone backslash, an unclosed class or an unknown class name.
    init?(_ s: [UInt8]) {
        var tokens: [Token] = []
        var i = 0
        while i < s.count {
            switch s[i] {
            case UInt8(ascii: "*"):
                if case .star? = tokens.last {} else { tokens.append(.star) }  // "**" inside a name is "*"
                i += 1
            case UInt8(ascii: "?"):
                tokens.append(.anyByte); i += 1
            case UInt8(ascii: "\\"):
                guard i + 1 < s.count else { return nil }
                tokens.append(.byte(s[i + 1])); i += 2
            case UInt8(ascii: "["):
                guard let (set, next) = ByteSet.parse(s, from: i + 1) else { return nil }
                tokens.append(.set(set)); i = next
            default:
                tokens.append(.byte(s[i])); i += 1
            }
        }
        self.tokens = tokens
    }

    func matches(_ name: ArraySlice<UInt8>) -> Bool {
        wildcardMatch(tokens, name, isStar: { if case .star = $0 { true } else { false } }) { token, byte in
            switch token {
            case .byte(let b): b == byte
            case .anyByte: true
            case .star: false
            case .set(let set): set.contains(byte)
            }
        }
    }
}

/// A set of bytes, for `[...]`.
private struct ByteSet: Sendable {
    var words = SIMD4<UInt64>()

    mutating func insert(_ b: UInt8) { words[Int(b >> 6)] |= 1 << UInt64(b & 63) }
    mutating func insert(where test: (UInt8) -> Bool) { for b in UInt8.min...UInt8.max where test(b) { insert(b) } }
    func contains(_ b: UInt8) -> Bool { words[Int(b >> 6)] & (1 << UInt64(b & 63)) != 0 }

    /// Parses a class whose `[` is just before `start`; returns the set and the index after its `]`.
    /// The rules are wildmatch's: `!` or `^` first negates; a `]` first is a member; `-` between
    /// two members is a range (by byte value), elsewhere a member; `\` escapes.
    static func parse(_ s: [UInt8], from start: Int) -> (ByteSet, Int)? {
        var set = ByteSet()
        var i = start
        let negated = i < s.count && (s[i] == UInt8(ascii: "!") || s[i] == UInt8(ascii: "^"))
        if negated { i += 1 }
        var previous: UInt8?   // the last single member: where a range would start
        var first = true
        while true {
            guard i < s.count else { return nil }
            let c = s[i]
            if c == UInt8(ascii: "]") && !first { break }
            first = false
            if c == UInt8(ascii: "\\") {
                guard i + 1 < s.count else { return nil }
                set.insert(s[i + 1]); previous = s[i + 1]; i += 2
            } else if c == UInt8(ascii: "-"), let low = previous, i + 1 < s.count, s[i + 1] != UInt8(ascii: "]") {
                var high = s[i + 1]
                i += 2
                if high == UInt8(ascii: "\\") {
                    guard i < s.count else { return nil }
                    high = s[i]; i += 1
                }
                if low <= high { set.insert { low...high ~= $0 } }
                previous = nil
            } else if c == UInt8(ascii: "["), i + 1 < s.count, s[i + 1] == UInt8(ascii: ":") {
                guard let close = s[(i + 2)...].firstIndex(of: UInt8(ascii: "]")) else { return nil }
                if close > i + 2, s[close - 1] == UInt8(ascii: ":") {
                    guard let test = posixClass(s[(i + 2)..<(close - 1)]) else { return nil }
                    set.insert(where: test); previous = nil; i = close + 1
                } else {  // not "[:name:]": a literal '['
                    set.insert(c); previous = c; i += 1
                }
            } else {
                set.insert(c); previous = c; i += 1
            }
        }
        if negated { set.words = ~set.words }
        return (set, i + 1)
    }

    /// The POSIX class names wildmatch knows, over ASCII.
    static func posixClass(_ name: ArraySlice<UInt8>) -> ((UInt8) -> Bool)? {
        let alpha: (UInt8) -> Bool = { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
        let digit: (UInt8) -> Bool = { (0x30...0x39).contains($0) }
        switch String(decoding: name, as: UTF8.self) {
        case "alnum": return { alpha($0) || digit($0) }
        case "alpha": return alpha
        case "blank": return { $0 == 0x20 || $0 == 0x09 }
        case "cntrl": return { $0 < 0x20 || $0 == 0x7F }
        case "digit": return digit
        case "graph": return { (0x21...0x7E).contains($0) }
        case "lower": return { (0x61...0x7A).contains($0) }
        case "print": return { (0x20...0x7E).contains($0) }
        case "punct": return { (0x21...0x7E).contains($0) && !alpha($0) && !digit($0) }
        case "space": return { $0 == 0x20 || (0x09...0x0D).contains($0) }
        case "upper": return { (0x41...0x5A).contains($0) }
        case "xdigit": return { digit($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
        default: return nil
        }
    }
}

/// The classic wildcard match with one backtrack point, used for bytes within a name (`*`) and
/// for names within a path (`**`). On a mismatch it retries from just after the last star, which
/// takes one more element; earlier stars never need revisiting, since the last star can absorb
/// whatever they would have. So the cost is O(pattern × text), never exponential, for patterns
/// like `a*a*a*a*b` (git's wildmatch bounds the same case with its ABORT_ALL return).
private func wildcardMatch<P, E>(_ pattern: [P], _ text: ArraySlice<E>, isStar: (P) -> Bool,
                                 matchesOne: (P, E) -> Bool) -> Bool {
    var p = 0
    var t = text.startIndex
    var star: (p: Int, t: Int)?
    while t < text.endIndex {
        if p < pattern.count, isStar(pattern[p]) {
            star = (p, t); p += 1
        } else if p < pattern.count, matchesOne(pattern[p], text[t]) {
            p += 1; t += 1
        } else if let s = star {
            star = (s.p, s.t + 1); p = s.p + 1; t = s.t + 1
        } else {
            return false
        }
    }
    while p < pattern.count, isStar(pattern[p]) { p += 1 }
    return p == pattern.count
}
