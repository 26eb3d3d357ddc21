import ArtifactCore
import Crypto
import Foundation
import TOMLKit

/// A pipeline definition that failed validation: the line it concerns and why.
public struct PipelineDefinitionError: Error, CustomStringConvertible, Equatable {
    public var line: Int?
    public var message: String
    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

/// One processing stage of a project's pipeline (SPEC §4).
public struct StageDefinition: Sendable, Equatable, Codable {
    public var name: String
    /// argv with placeholders: {input} {output_dir} {stem} {name} {run} {project}.
    public var command: [String]
    /// A glob over the run's tree: `raw_source/**/*.txt` or `<stage>/*.ext`.
    public var inputs: String
    public var dependsOn: [String]
    public var retries: Int
    public var timeoutSeconds: Double
    /// The command may use the network (`network = true`); by default its sandbox has none.
    public var network = false

    public static let placeholders: Set<String> = ["input", "output_dir", "stem", "name", "run", "project"]
    /// The longest `timeout` a stage may have: a week (seconds).
    public static let longestTimeout: Double = 7 * 86_400
    static let keys: Set<String> = ["name", "command", "inputs", "depends_on", "retries", "timeout", "network"]

    /// The memoization key's first half: what decides the output for a given input.
    public var definitionHash: String {
        let canonical = ([name, inputs] + command).joined(separator: "\u{0}")
        return BlobHash(digest: SHA256.hash(data: Array(canonical.utf8))).hex
    }

    /// The memoization key of one job: the definition and, when the command uses them, the
    /// input's name and the run and project, since those then shape the outputs too.
    /// The input's name goes in as its bytes: two names that differ only in bytes that are not
    /// UTF-8 give stage commands different `{name}`s, so they must not share results.
    public func memoKey(inputName: PathBytes, run: String, project: String) -> String {
        let used = Set(command.flatMap { PipelineDefinition.placeholderNames(in: $0) })
        var parts: [[UInt8]] = [Array(definitionHash.utf8)]
        if used.contains("stem") || used.contains("name") { parts.append(Array("name=".utf8) + inputName.bytes) }
        if used.contains("run") { parts.append(Array("run=\(run)".utf8)) }
        // A command with network can answer differently each time, and its results must not
        // reach another project that runs the same command on the same content.
        if used.contains("project") || network { parts.append(Array("project=\(project)".utf8)) }
        if network { parts.append(Array("network".utf8)) }
        if parts.count == 1 { return definitionHash }
        return BlobHash(digest: SHA256.hash(data: Array(parts.joined(separator: [0])))).hex
    }

    /// The folder the input glob reads from (`raw_source` or another stage).
    public var inputRoot: String { String(inputs.split(separator: "/", maxSplits: 1).first ?? "") }
}

/// A validated pipeline: stages in an order where every stage comes after what it depends on.
public struct PipelineDefinition: Sendable, Equatable {
    public var stages: [StageDefinition]
    public var source: String

    public var hash: String { BlobHash(digest: SHA256.hash(data: Array(source.utf8))).hex }

    public func stage(named name: String) -> StageDefinition? { stages.first { $0.name == name } }

    /// Parses and fully validates a pipeline.toml; the first problem found is thrown.
    public static func parse(_ text: String) throws -> PipelineDefinition {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw PipelineDefinitionError(line: e.source.begin.line, message: e.description)
        }
        let lines = text.components(separatedBy: "\n")
        /// The line where `key = ...` is written, searching from line `start` up to the next
        /// [[stage]] header (a stage's own section), or the whole file when `start` is 0.
        func lineOf(_ key: String, after start: Int = 0) -> Int? {
            let first = max(0, start - 1)
            for i in first..<lines.count {
                let line = lines[i].trimmingCharacters(in: .whitespaces)
                if key.hasPrefix("[") {
                    if line.hasPrefix(key) { return i + 1 }
                    continue
                }
                if start > 0, i > first, line.hasPrefix("[[stage]]") { return nil }
                if line.hasPrefix(key) && line.dropFirst(key.count).trimmingCharacters(in: .whitespaces).hasPrefix("=") {
                    return i + 1
                }
            }
            return nil
        }
        for key in table.keys where key != "stage" {
            throw PipelineDefinitionError(line: lineOf(key), message: "unknown key '\(key)' (a pipeline holds [[stage]] tables)")
        }
        guard let array = table["stage"]?.array else {
            if table["stage"] != nil { throw PipelineDefinitionError(line: lineOf("[stage]") ?? lineOf("stage"), message: "'stage' must be an array of tables: [[stage]]") }
            throw PipelineDefinitionError(line: nil, message: "no stages: add at least one [[stage]] table")
        }
        var stages: [StageDefinition] = []
        var stageLines: [Int] = []
        var searchFrom = 1
        for (index, element) in array.enumerated() {
            let header = lineOf("[[stage]]", after: searchFrom) ?? searchFrom
            searchFrom = header + 1
            stageLines.append(header)
            guard let t = element.table else {
                throw PipelineDefinitionError(line: header, message: "stage \(index + 1) is not a table")
            }
            func keyLine(_ key: String) -> Int { lineOf(key, after: header) ?? header }
            for key in t.keys where !StageDefinition.keys.contains(key) {
                throw PipelineDefinitionError(line: keyLine(key), message: "unknown key '\(key)' in stage \(index + 1) (allowed: \(StageDefinition.keys.sorted().joined(separator: ", ")))")
            }
            guard let name = t["name"]?.string, !name.isEmpty else {
                throw PipelineDefinitionError(line: keyLine("name"), message: "stage \(index + 1) needs a name (a string)")
            }
            do { try NameRules.validate(name, kind: "stage") } catch let e as ArtifactError {
                throw PipelineDefinitionError(line: keyLine("name"), message: e.message)
            }
            if name == "raw_source" {
                throw PipelineDefinitionError(line: keyLine("name"), message: "'raw_source' is reserved for the run's own files")
            }
            if stages.contains(where: { $0.name == name }) {
                throw PipelineDefinitionError(line: keyLine("name"), message: "stage '\(name)' is defined twice")
            }
            guard let cmdArray = t["command"]?.array, !cmdArray.isEmpty else {
                throw PipelineDefinitionError(line: keyLine("command"), message: "stage '\(name)' needs a command: a non-empty array of strings")
            }
            var command: [String] = []
            for v in cmdArray {
                guard let s = v.string else {
                    throw PipelineDefinitionError(line: keyLine("command"), message: "stage '\(name)': every command element must be a string")
                }
                for p in placeholderNames(in: s) where !StageDefinition.placeholders.contains(p) {
                    throw PipelineDefinitionError(line: keyLine("command"), message: "stage '\(name)': unknown placeholder {\(p)} (known: \(StageDefinition.placeholders.sorted().map { "{\($0)}" }.joined(separator: " ")))")
                }
                command.append(s)
            }
            guard let inputs = t["inputs"]?.string else {
                throw PipelineDefinitionError(line: keyLine("inputs"), message: "stage '\(name)' needs inputs: a glob such as \"raw_source/**/*.txt\"")
            }
            if let problem = Glob.problem(in: inputs) {
                throw PipelineDefinitionError(line: keyLine("inputs"), message: "stage '\(name)': bad glob \"\(inputs)\": \(problem)")
            }
            var dependsOn: [String] = []
            if let d = t["depends_on"] {
                guard let arr = d.array else {
                    throw PipelineDefinitionError(line: keyLine("depends_on"), message: "stage '\(name)': depends_on must be an array of stage names")
                }
                for v in arr {
                    guard let s = v.string else {
                        throw PipelineDefinitionError(line: keyLine("depends_on"), message: "stage '\(name)': depends_on must be an array of stage names")
                    }
                    dependsOn.append(s)
                }
            }
            var retries = 0
            if let r = t["retries"] {
                guard let n = r.int, n >= 0, n <= 100 else {
                    throw PipelineDefinitionError(line: keyLine("retries"), message: "stage '\(name)': retries must be a whole number from 0 to 100")
                }
                retries = n
            }
            var timeout = 3600.0
            if let tv = t["timeout"] {
                guard let s = tv.string, let seconds = parseDuration(s), seconds > 0, seconds.isFinite else {
                    throw PipelineDefinitionError(line: keyLine("timeout"), message: "stage '\(name)': timeout must be a duration such as \"30s\", \"5m\" or \"1h\"")
                }
                guard seconds <= StageDefinition.longestTimeout else {
                    throw PipelineDefinitionError(line: keyLine("timeout"), message: "stage '\(name)': timeout must be at most 7d")
                }
                timeout = seconds
            }
            var network = false
            if let n = t["network"] {
                guard let b = n.bool else {
                    throw PipelineDefinitionError(line: keyLine("network"), message: "stage '\(name)': network must be true or false")
                }
                network = b
            }
            stages.append(StageDefinition(name: name, command: command, inputs: inputs, dependsOn: dependsOn,
                                          retries: retries, timeoutSeconds: timeout, network: network))
        }
        // Dependencies must exist; a stage reading another's outputs must depend on it.
        for (i, stage) in stages.enumerated() {
            for dep in stage.dependsOn where !stages.contains(where: { $0.name == dep }) {
                throw PipelineDefinitionError(line: lineOf("depends_on", after: stageLines[i]), message: "stage '\(stage.name)' depends on unknown stage '\(dep)'")
            }
            let root = stage.inputRoot
            if root != "raw_source" {
                guard stages.contains(where: { $0.name == root }) else {
                    throw PipelineDefinitionError(line: lineOf("inputs", after: stageLines[i]), message: "stage '\(stage.name)' reads from '\(root)/', which is neither raw_source nor a stage")
                }
                if !stage.dependsOn.contains(root) {
                    throw PipelineDefinitionError(line: lineOf("inputs", after: stageLines[i]), message: "stage '\(stage.name)' reads outputs of '\(root)' and must list it in depends_on")
                }
            }
        }
        let ordered = try topologicalOrder(stages, lines: stageLines)
        return PipelineDefinition(stages: ordered, source: text)
    }

    /// Kahn's algorithm, stable in file order; a cycle is named in the error.
    static func topologicalOrder(_ stages: [StageDefinition], lines: [Int]) throws -> [StageDefinition] {
        var remaining = stages
        var done = Set<String>()
        var out: [StageDefinition] = []
        while !remaining.isEmpty {
            guard let i = remaining.firstIndex(where: { $0.dependsOn.allSatisfy(done.contains) }) else {
                let names = remaining.map(\.name)
                let line = stages.firstIndex { $0.name == names[0] }.map { lines[$0] }
                throw PipelineDefinitionError(line: line, message: "dependency cycle among stages: \(names.joined(separator: ", "))")
            }
            let s = remaining.remove(at: i)
            done.insert(s.name)
            out.append(s)
        }
        return out
    }

    /// Names written as `{identifier}`. Other braces (`{n:03d}`, `\\d{4}`, dict literals in an
    /// inline script) are left alone, so scripts keep working.
    public static func placeholderNames(in s: String) -> [String] {
        var out: [String] = []
        var current: String?
        for ch in s {
            if ch == "{" {
                current = ""
            } else if ch == "}" {
                if let c = current, let first = c.first, first == "_" || first.isLetter,
                   c.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) {
                    out.append(c)
                }
                current = nil
            } else if current != nil {
                current!.append(ch)
            }
        }
        return out
    }

    /// "30s", "5m", "1h", "1.5h", or a bare number of seconds.
    public static func parseDuration(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count)) { return v * factor }
        }
        return Double(t)
    }

    /// Replaces the placeholders (`{input}`, `{name}`, …) of one argv element with their
    /// values, byte for byte: an input's name reaches the command exactly as it was written,
    /// UTF-8 or not. An unknown placeholder stays as it is.
    public static func substitute(_ arg: String, values: [String: PathBytes]) -> PathBytes {
        let template = Array(arg.utf8)
        var out: [UInt8] = []
        var i = 0
        scan: while i < template.count {
            if template[i] == UInt8(ascii: "{"), let close = template[i...].firstIndex(of: UInt8(ascii: "}")) {
                let key = String(decoding: template[(i + 1)..<close], as: UTF8.self)
                if let value = values[key] {
                    out += value.bytes
                    i = close + 1
                    continue scan
                }
            }
            out.append(template[i])
            i += 1
        }
        return PathBytes(out)
    }
}

/// Globs over slash-separated paths: `*` and `?` within one component, `**` across any number.
public enum Glob {
    public static func problem(in pattern: String) -> String? {
        if pattern.isEmpty { return "it is empty" }
        if pattern.hasPrefix("/") { return "it must be relative to the run (start with raw_source/ or a stage name)" }
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count < 2 { return "it must name a folder and a pattern, e.g. raw_source/*.txt" }
        if parts.contains(where: { $0.isEmpty }) { return "it has an empty path component" }
        if parts.contains("..") || parts.contains(".") { return "'.' and '..' are not allowed" }
        let first = parts[0]
        if first.contains("*") || first.contains("?") || first.contains("[") { return "the first component must be raw_source or a stage name" }
        for p in parts where p.contains("**") && p != "**" { return "'**' must be a whole path component" }
        if pattern.contains("[") || pattern.contains("]") { return "character classes [...] are not supported" }
        return nil
    }

    public static func matches(_ pattern: String, _ path: String) -> Bool {
        match(pattern.split(separator: "/").map(String.init)[...], path.split(separator: "/").map(String.init)[...])
    }

    private static func match(_ p: ArraySlice<String>, _ s: ArraySlice<String>) -> Bool {
        guard let head = p.first else { return s.isEmpty }
        if head == "**" {
            var rest = s
            while true {
                if match(p.dropFirst(), rest) { return true }
                if rest.isEmpty { return false }
                rest = rest.dropFirst()
            }
        }
        guard let first = s.first, component(Array(head.utf8)[...], Array(first.utf8)[...]) else { return false }
        return match(p.dropFirst(), s.dropFirst())
    }

    private static func component(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        guard let c = p.first else { return s.isEmpty }
        switch c {
        case UInt8(ascii: "*"):
            var rest = s
            while true {
                if component(p.dropFirst(), rest) { return true }
                if rest.isEmpty { return false }
                rest = rest.dropFirst()
            }
        case UInt8(ascii: "?"):
            return !s.isEmpty && component(p.dropFirst(), s.dropFirst())
        default:
            return s.first == c && component(p.dropFirst(), s.dropFirst())
        }
    }
}
