import ArgumentParser
import ArtifactCore
import Foundation

struct GC: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete blobs no run, version or working tree needs any more, after a grace period. Safe while mounted.",
        discussion: """
            A blob becomes collectable when its last reference goes (forget, a deleted branch's \
            versions past their retention, a stage rerun). gc waits --grace after that before it \
            deletes it, and deletes at once blob files no row ever named (left by a killed process). \
            It never deletes a blob that a seal, commit, stage or import in flight holds.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Report what would be deleted; change nothing.")
    var dryRun = false

    @Option(help: "How long an unreferenced blob stays before it is deleted: e.g. 0, 30m, 1h, 7d (default 1h).")
    var grace: String = "1h"


    func validate() throws {
        if DurationText.seconds(grace) == nil { throw ValidationError("--grace: not a duration: \(grace) (e.g. 0, 30m, 1h, 7d)") }
    }

    func run() throws {
        let report: GarbageCollector.Report
        do {
            let store = try global.open()
            let bar = ProgressLine(label: dryRun ? "gc (dry run)" : "gc", enabled: !json && !quiet, bytesNote: dryRun ? " to free" : " freed")
            report = try GarbageCollector(store: store, grace: DurationText.seconds(grace)!).run(dryRun: dryRun) { bar.update($0, $1, bytes: $2) }
            bar.finish()
        } catch { throw fail(error) }
        if json { try printJSON(report); return }
        if report.runsForgotten > 0 {
            print("\(dryRun ? "would forget" : "forgot") \(plural(report.runsForgotten, "run")) by the projects' stored keep policies")
        }
        let verb = dryRun ? "would free" : "freed"
        print("\(verb) \(formatBytes(report.bytesFreed)): \(report.blobsRemoved) unreferenced blobs, \(report.orphansRemoved) never-registered blobs, \(report.tempFilesRemoved) temp files")
        if report.packsRemoved + report.packsRewritten > 0 {
            print("\(dryRun ? "would remove" : "removed") \(plural(report.packsRemoved, "pack file")), "
                  + "\(dryRun ? "would rewrite" : "rewrote") \(plural(report.packsRewritten, "pack file")) without their unreferenced blobs")
        }
        if report.blobsInGrace > 0 {
            print("kept \(report.blobsInGrace) unreferenced blobs (\(formatBytes(report.bytesInGrace))) until their grace period (\(grace)) passes")
        }
    }
}

/// Bytes as people read them: `512 B`, `3.4 MiB`.
func formatBytes(_ n: Int64) -> String {
    if n < 1024 { return "\(n) B" }
    var value = Double(n)
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        value /= 1024
        if value < 1024 || unit == "TiB" { return String(format: "%.1f %@", value, unit) }
    }
    return "\(n) B"
}

/// Progress of long work on stderr: a line redrawn in place on a terminal, and a plain line
/// every few seconds elsewhere (a log, a pipe), so that both show it is alive.
final class ProgressLine {
    let label: String
    let enabled: Bool
    private let tty = isTerminal
    private let start = Date()
    private lazy var lastPrinted = tty ? Date.distantPast : start

    /// Seconds between plain lines when stderr is not a terminal: 5, or
    /// `$ARTIFACTFS_PROGRESS_INTERVAL` (0: a line per step).
    static let plainInterval = ProcessInfo.processInfo.environment["ARTIFACTFS_PROGRESS_INTERVAL"].flatMap(Double.init) ?? 5

    /// Said after the byte count (" freed"); nothing when the bytes are the work itself.
    let bytesNote: String

    init(label: String, enabled: Bool = true, bytesNote: String = "") {
        self.label = label; self.enabled = enabled; self.bytesNote = bytesNote
    }

    /// `done` of `total` steps (nil while the total is not known yet: no ETA then), and, when
    /// given, bytes done of bytes total.
    func update(_ done: Int, _ total: Int?, bytes: Int64? = nil, totalBytes: Int64? = nil) {
        guard enabled else { return }
        let now = Date()
        let interval = tty ? 0.1 : Self.plainInterval
        guard now.timeIntervalSince(lastPrinted) >= interval || (done == total && tty) else { return }
        lastPrinted = now
        let elapsed = now.timeIntervalSince(start)
        var text = "\(label): \(done)" + (total.map { "/\($0)" } ?? "")
        if let bytes {
            text += ", \(formatBytes(bytes))" + (totalBytes.map { " of \(formatBytes($0))" } ?? "") + bytesNote
            if elapsed > 0 { text += ", \(formatBytes(Int64(Double(bytes) / elapsed)))/s" }
        }
        if let total, done > 0, done < total, elapsed > 1 {
            var fraction = Double(done) / Double(total)
            if let bytes, let totalBytes, totalBytes > 0 { fraction = Double(bytes) / Double(totalBytes) }
            if fraction > 0 { text += ", ETA \(DurationText.text(elapsed / fraction - elapsed))" }
        }
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    /// Clears the redrawn line on a terminal before another message is written on stderr (the
    /// next update draws it again).
    func interrupt() {
        if enabled && tty && lastPrinted != .distantPast { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Ends the redrawn line on a terminal.
    func finish() {
        if enabled && tty && lastPrinted != .distantPast && lastPrinted != start { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
