import ArgumentParser
import ArtifactCore
import Foundation

struct Verify: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store: every referenced blob is there (and with --read-data hashes to its name), reference counts match, no row points at nothing. Exits 3 on any problem.",
        discussion: """
            --fix backs the catalog up (catalog.sqlite.bak-TIME), then repairs what can be repaired, \
            never deleting referenced data: recounts references, moves damaged blobs to quarantine/, \
            puts a missing blob back from a good copy it finds, closes runs left in progress, removes \
            staged leftovers. It prints what it changed. Safe while mounted.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Read every referenced blob and check that it hashes to its name.")
    var readData = false

    @Option(help: "Read this share of the referenced blobs, chosen at random, e.g. 10%.")
    var readDataSubset: String?

    @Flag(help: "Repair what can be repaired (after a backup of the catalog).")
    var fix = false


    var share: Double {
        if readData { return 1 }
        guard let readDataSubset, let n = Double(readDataSubset.hasSuffix("%") ? String(readDataSubset.dropLast()) : readDataSubset) else { return 0 }
        return n / 100
    }

    func validate() throws {
        if readData && readDataSubset != nil { throw ValidationError("give --read-data or --read-data-subset, not both") }
        if let readDataSubset {
            let text = readDataSubset.hasSuffix("%") ? String(readDataSubset.dropLast()) : readDataSubset
            guard let n = Double(text), n > 0, n <= 100 else { throw ValidationError("--read-data-subset: a share above 0% and at most 100%, e.g. 10%") }
        }
    }

    func run() throws {
        let report: Verifier.Report
        do {
            let store = try global.open()
            let bar = ProgressLine(label: "verifying blobs", enabled: !json && !quiet)
            report = try Verifier(store: store).run(Verifier.Options(readData: share, fix: fix)) {
                bar.update($0.blobs, $0.totalBlobs, bytes: $0.bytes, totalBytes: $0.totalBytes)
            }
            bar.finish()
        } catch { throw fail(error) }
        if json {
            try printJSON(report)
        } else {
            if let backup = report.backup { print("backed up the catalog to \(backup)") }
            for p in report.problems {
                print("problem: \(p.kind) \(p.blob ?? "-"): \(p.detail)")
                for use in p.uses ?? [] { print("  used by \(use)") }
                if let fixed = p.fixed { print("  fixed: \(fixed)") }
            }
            if !report.orphans.isEmpty { print("note: \(report.orphans.count) unreferenced blobs; `artifactfs gc` removes them") }
            let read = report.blobsRead > 0 ? ", \(report.blobsRead) read (\(formatBytes(report.bytesRead)))" : ""
            print(report.ok ? "ok: \(report.blobsChecked) blobs\(read), \(report.filesChecked) file references"
                            : "\(report.problems.filter { $0.fixed == nil || $0.kind == "corrupt_blob" }.count) problems in \(report.blobsChecked) blobs\(read)")
        }
        if !report.ok { throw ExitCode(ExitCodes.problemsFound) }
    }
}
