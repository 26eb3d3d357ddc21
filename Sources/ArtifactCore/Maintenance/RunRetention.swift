import Foundation
import Logging

/// `forget`: removes the runs of a project that a `KeepPolicy` does not keep (SPEC §6, like
/// `restic forget`), with their stage outputs; latest/ and history/ follow. The blobs only
/// they used become collectable and `gc` frees them after its grace period.
///
/// A run whose pipeline is still running is always kept (its stages would write outputs for
/// a run that is gone).
public struct RunRetention {
    /// What was decided for one run.
    public struct Decision: Codable, Sendable, Equatable {
        public var run: String
        /// Seconds since 1970.
        public var timestamp: Int64
        public var reasons: [String]
    }

    /// What one forget did (or with `dryRun`, would do).
    public struct Report: Codable, Sendable {
        public var project: String
        public var dryRun: Bool
        public var policy: String
        public var kept: [Decision] = []
        public var forgotten: [Decision] = []
        /// Bytes of the forgotten runs' files (their blobs may still be used by other runs).
        public var bytesReleased: Int64 = 0

        enum CodingKeys: String, CodingKey {
            case project, policy, kept, forgotten
            case dryRun = "dry_run", bytesReleased = "bytes_released"
        }
    }

    let store: ArtifactStore
    let logger = Logger(label: "artifactfs.forget")
    public init(store: ArtifactStore) { self.store = store }

    /// Applies `policy` to `project`'s runs. Returns the report and, unless `dryRun`, what the
    /// forgotten runs covered (for a mount to drop its cached entries). Throws
    /// `.invalidArgument` for an empty policy, catalog errors as they come (nothing changed).
    public func forget(project: ProjectRecord, policy: KeepPolicy, dryRun: Bool = false,
                       now: Date = Date()) throws -> (Report, ForgottenRuns?) {
        guard !policy.isEmpty else {
            throw ArtifactError(.invalidArgument, "no keep rule given (e.g. --keep-last 10); nothing was forgotten", path: project.name)
        }
        let runs = try store.catalog.runs(projectId: project.id!)
        var reasons = policy.reasons(for: runs, timestamp: \.timestamp)
        for (i, run) in runs.enumerated() where run.status == .inProgress { reasons[i].append("pipeline running") }
        var report = Report(project: project.name, dryRun: dryRun, policy: policy.description)
        var doomed: [RunID] = []
        for (run, why) in zip(runs, reasons).reversed() {
            let decision = Decision(run: run.name, timestamp: run.timestamp, reasons: why)
            if why.isEmpty {
                report.forgotten.append(decision)
                report.bytesReleased += run.bytes
                doomed.append(run.id!)
            } else {
                report.kept.append(decision)
            }
        }
        guard !dryRun, !doomed.isEmpty else { return (report, nil) }
        let forgotten = try store.catalog.forgetRuns(projectId: project.id!, doomed, now: now)
        logger.debug("forgot \(forgotten.runs.count) runs of project \(project.name) (\(policy.description))")
        return (report, forgotten)
    }
}
