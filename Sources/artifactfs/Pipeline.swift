import ArgumentParser
import ArtifactCore
import ArtifactPipeline
import Foundation

struct Pipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set, show or re-run a project's pipeline of processing stages.",
        subcommands: [Set.self, Show.self, Rerun.self])

    struct Set: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a pipeline.toml and make it the project's pipeline for runs sealed from now on. A bad file is rejected with its line and reason; the old pipeline stays.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project.") var project: String
        @Argument(help: "A pipeline.toml file.") var file: String

        func run() throws {
            do {
                let path = absolutePath(file)
                guard let source = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ArtifactError(.notFound, "cannot read the file", path: path)
                }
                let store = try global.open()
                guard let p = try store.catalog.project(named: project) else { throw ArtifactError(.notFound, "no such project", path: project) }
                let definition: PipelineDefinition
                do { definition = try JobQueue(catalog: store.catalog).setPipeline(projectId: p.id!, source: source) } catch let e as PipelineDefinitionError {
                    throw ArtifactError(.invalidArgument, "invalid pipeline: \(e.description)", path: path)
                }
                print("pipeline of \(project): \(definition.stages.map(\.name).joined(separator: " -> "))")
            } catch { throw fail(error) }
        }
    }

    struct Show: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(abstract: "Print the project's pipeline.toml.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project.") var project: String

        func run() throws {
            do {
                let store = try global.open()
                guard let p = try store.catalog.project(named: project) else { throw ArtifactError(.notFound, "no such project", path: project) }
                guard let source = try JobQueue(catalog: store.catalog).definitionSource(projectId: p.id!) else {
                    throw ArtifactError(.notFound, "the project has no pipeline", path: project)
                }
                print(source, terminator: source.hasSuffix("\n") ? "" : "\n")
            } catch { throw fail(error) }
        }
    }

    struct Rerun: ParsableCommand, GlobalCommand {
        static let configuration = CommandConfiguration(
            abstract: "Process an old run with the current pipeline (all stages, or one stage and what depends on it). The mounted daemon picks it up.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The project.") var project: String
        @Argument(help: "The run id.") var runID: String
        @Option(help: "Only this stage and the stages that depend on it.") var stage: String?

        func run() throws {
            do {
                let store = try global.open()
                guard let p = try store.catalog.project(named: project) else { throw ArtifactError(.notFound, "no such project", path: project) }
                guard let r = try store.catalog.run(projectId: p.id!, name: runID) else { throw ArtifactError(.notFound, "no such run", path: runID) }
                try JobQueue(catalog: store.catalog).rerun(runId: r.id!, stage: stage)
                print("queued \(runID) of \(project) for \(stage.map { "stage \($0) and its dependents" } ?? "every stage")")
            } catch { throw fail(error) }
        }
    }
}
