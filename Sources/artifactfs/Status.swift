import ArgumentParser
import ArtifactCore
import ArtifactPipeline
import Foundation

struct Status: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show projects, the runs of a project, or one run's metadata.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A project name.")
    var project: String?

    @Argument(help: "A run id of that project.")
    var runID: String?


    func run() throws {
        do {
            let store = try global.open()
            let catalog = store.catalog
            guard let projectName = project else {
                let rows = try catalog.projects().map { p -> [String: String] in
                    let runs = (try? catalog.runs(projectId: p.id!)) ?? []
                    return ["project": p.name, "runs": String(runs.count), "latest_run": runs.last?.name ?? "",
                            "interrupted": String(interruptedFiles(store, p.id!).count)]
                }
                if json { try printJSON(rows) } else {
                    if rows.isEmpty { print("no projects (mkdir MOUNT/projects/NAME to create one)") }
                    for r in rows {
                        let interrupted = r["interrupted"] == "0" ? "" : "\t\(r["interrupted"]!) interrupted in incoming/"
                        print("\(r["project"]!)\t\(r["runs"]!) runs\t\(r["latest_run"]!)\(interrupted)")
                    }
                }
                return
            }
            guard let p = try catalog.project(named: projectName) else {
                throw ArtifactError(.notFound, "no such project", path: projectName)
            }
            if let runName = runID {
                guard let r = try catalog.run(projectId: p.id!, name: runName) else {
                    throw ArtifactError(.notFound, "no such run in project \(projectName)", path: runName)
                }
                let report = try RunReport.load(catalog: catalog, pipeline: JobQueue(catalog: catalog), runId: r.id!)!
                if json { FileHandle.standardOutput.write(report.jsonData()) } else { printHuman(report) }
                return
            }
            let queue = JobQueue(catalog: catalog)
            let reports = try catalog.runs(projectId: p.id!).map { RunReport(run: $0, project: p, jobs: try queue.jobs(runId: $0.id!)) }
            if json { try printJSON(reports) } else {
                if reports.isEmpty { print("project \(projectName) has no runs yet") }
                for r in reports { printHuman(r) }
                let interrupted = interruptedFiles(store, p.id!)
                if !interrupted.isEmpty {
                    print("incoming/: \(interrupted.count) interrupted file\(interrupted.count == 1 ? "" : "s"), kept out of seals "
                          + "(open for writing when the daemon stopped; write again, or artifactfs seal the folder to keep as is):")
                    for f in interrupted { print("  \(f.relativePath.quoted)\t\(f.size) bytes") }
                }
            }
        } catch { throw fail(error) }
    }

    /// Files in a project's incoming/ that a crash cut short (`StagingMark.interrupted`).
    private func interruptedFiles(_ store: ArtifactStore, _ projectId: ProjectID) -> [StagedFile] {
        ((try? store.staging.scan(projectId: projectId).files) ?? []).filter(\.interrupted)
    }

    private func printHuman(_ r: RunReport) {
        print("\(r.id)  \(r.status)  files: \(r.files.new) new, \(r.files.superseded) superseded, \(r.files.duplicate) duplicate  \(r.bytes) bytes")
        guard runID != nil else { return }
        for (name, stage) in r.stages.sorted(by: { $0.key < $1.key }) {
            print("  stage \(name): \(stage.status)")
            for (input, i) in stage.inputs.sorted {
                let memo = i.memoized ? " (memoized)" : ""
                print("    \(input.quoted): \(i.status), \(i.attempts) attempt\(i.attempts == 1 ? "" : "s")\(memo)")
                if let e = i.error, i.status != "completed" {
                    for line in e.split(separator: "\n").suffix(5) { print("      \(line)") }
                }
            }
        }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    FileHandle.standardOutput.write(try NameKeyedJSON.encode(value))
}
