import ArgumentParser
import ArtifactCore
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that every referenced blob exists and hashes to its name and that reference counts match. Exits 3 on any problem.")

    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let report: Verifier.Report
        do {
            let store = try storeOptions.open()
            let tty = isTerminal && !json
            report = try Verifier(store: store).run { done, total in
                if tty {
                    FileHandle.standardError.write(Data("\rverifying blobs \(done)/\(total)".utf8))
                    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
                }
            }
        } catch { throw fail(error) }
        if json {
            try printJSON(report)
        } else {
            for p in report.problems { print("problem: \(p.kind) \(p.blob ?? "-"): \(p.detail)") }
            if !report.orphans.isEmpty { print("note: \(report.orphans.count) unreferenced blobs (gc removes them)") }
            print(report.ok ? "ok: \(report.blobsChecked) blobs, \(report.filesChecked) file references"
                            : "\(report.problems.count) problems in \(report.blobsChecked) blobs")
        }
        if !report.ok { throw ExitCode(ExitCodes.problemsFound) }
    }
}
