import ArgumentParser
import ArtifactCore
import ArtifactPipeline
import Foundation
import SystemPackage

struct Pipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set, show or re-run a project's pipeline of processing stages.",
        subcommands: [Set.self, Show.self, Rerun.self])

    struct Set: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a pipeline.toml and make it the project's pipeline for runs sealed from now on. A bad file is rejected with its line and reason; the old pipeline stays.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project: its name, or its folder in a mount.") var project: String
        @Argument(help: "A pipeline.toml file.") var file: String

        func run() throws {
            do {
                let path = absolutePath(file)
                let source = try readTextFile(path)
                let (name, _) = try global.perform(project, by: ControlAttribute.project,
                                                   { .setPipeline(project: $0, source: source, file: path) }, as: NoResult.self)
                // The daemon (or the catalog) took it, so it parses.
                let definition = try PipelineDefinition.parse(source)
                if json { try printJSON(PipelineLine(project: name, stages: definition.stages)); return }
                if !quiet { print("pipeline of \(name): \(definition.stages.map(\.name).joined(separator: " -> "))") }
            } catch { throw fail(error) }
        }
    }

    struct Show: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(abstract: "Print the project's pipeline.toml.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project: its name, or its folder in a mount.") var project: String

        func run() throws {
            do {
                let (store, p) = try global.openProject(project)
                guard let source = try JobQueue(catalog: store.catalog).definitionSource(projectId: p.id!) else {
                    throw ArtifactError(.notFound, "the project has no pipeline (artifactfs pipeline set PROJECT FILE sets one)", path: p.name)
                }
                if json {
                    let stages = (try? PipelineDefinition.parse(source))?.stages ?? []
                    try printJSON(PipelineLine(project: p.name, stages: stages, source: source))
                    return
                }
                print(source, terminator: source.hasSuffix("\n") ? "" : "\n")
            } catch { throw fail(error) }
        }
    }

    struct Rerun: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(
            abstract: "Process an old run with the current pipeline (all stages, or one stage and what depends on it). The mounted daemon picks it up.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project: its name, or its folder in a mount.") var project: String
        @Argument(help: "The run id.") var runID: String
        @Option(help: "Only this stage and the stages that depend on it.") var stage: String?

        func run() throws {
            do {
                let (name, _) = try global.perform(project, by: ControlAttribute.project, { .rerun(project: $0, run: runID, stage: stage) }, as: NoResult.self)
                if json { try printJSON(RerunLine(project: name, run: runID, stage: stage)); return }
                if !quiet { print("queued \(runID) of \(name) for \(stage.map { "stage \($0) and its dependents" } ?? "every stage")") }
            } catch { throw fail(error) }
        }
    }
}

/// `pipeline set --json` and `pipeline show --json`: the project, its stages in run order (each
/// stage's definition as pipeline.toml gives it) and, for `show`, the TOML text.
private struct PipelineLine: Encodable {
    var project: String
    var stages: [StageDefinition]
    var source: String?

    enum CodingKeys: String, CodingKey { case project, stages, source }
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(project, forKey: .project)
        try c.encode(stages.map(StageLine.init), forKey: .stages)
        try c.encodeIfPresent(source, forKey: .source)
    }

    /// One stage with pipeline.toml's keys (`depends_on`), the timeout in seconds.
    struct StageLine: Encodable {
        let stage: StageDefinition
        init(_ stage: StageDefinition) { self.stage = stage }
        enum CodingKeys: String, CodingKey { case name, command, inputs, dependsOn = "depends_on", retries, timeoutSeconds = "timeout_seconds" }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stage.name, forKey: .name); try c.encode(stage.command, forKey: .command)
            try c.encode(stage.inputs, forKey: .inputs); try c.encode(stage.dependsOn, forKey: .dependsOn)
            try c.encode(stage.retries, forKey: .retries); try c.encode(stage.timeoutSeconds, forKey: .timeoutSeconds)
        }
    }
}

/// `pipeline rerun --json`: `{"project", "run", "stage"}` (stage null: every stage).
private struct RerunLine: Encodable {
    var project: String
    var run: String
    var stage: String?
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(project, forKey: .project)
        try c.encode(run, forKey: .run)
        try c.encode(stage, forKey: .stage)
    }
    enum CodingKeys: String, CodingKey { case project, run, stage }
}

/// A UTF-8 text file the user named, or an error naming it and why it cannot be read.
func readTextFile(_ path: String) throws -> String {
    let fd: Int32
    do { fd = try Syscalls.open(path, flags: O_RDONLY | O_CLOEXEC) } catch let e as Errno {
        throw ArtifactError.system(e, "cannot read the file", path: path)
    }
    defer { close(fd) }
    let st = try Syscalls.fstat(fd)
    guard st.st_mode & S_IFMT == S_IFREG else { throw ArtifactError(.invalidArgument, "not a file", path: path) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = try chunk.withUnsafeMutableBytes { buf -> Int in
            do { return try Syscalls.pread(fd, into: buf, offset: Int64(bytes.count)) } catch let e as Errno {
                throw ArtifactError.system(e, "cannot read the file", path: path)
            }
        }
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    guard let text = String(validating: bytes, as: UTF8.self) else { throw ArtifactError(.invalidArgument, "not UTF-8 text", path: path) }
    return text
}
