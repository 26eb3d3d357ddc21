import ArgumentParser
import ArtifactCore
import Foundation

struct Forget: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove the runs of a project that a keep policy does not keep (like restic forget); latest/ and history/ follow.",
        discussion: """
            The rules add up: a run any rule keeps stays. A run whose pipeline is still running always \
            stays. Forgotten runs' blobs are freed by `artifactfs gc` once no other run, version or \
            output uses them. With --save the policy is stored for the project and every `gc` applies it.
            Durations: 30m, 12h, 7d, 4w, 1y (m is minutes).
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The project: its name, or its folder in a mount.") var project: String
    @Option(help: "Keep the newest N runs.") var keepLast: Int?
    @Option(help: "Keep every run within DURATION of the newest run.") var keepWithin: String?
    @Option(help: "Keep the newest run of each of the last N hours that have one.") var keepHourly: Int?
    @Option(help: "Keep the newest run of each of the last N days that have one.") var keepDaily: Int?
    @Option(help: "Keep the newest run of each of the last N weeks that have one.") var keepWeekly: Int?
    @Option(help: "Keep the newest run of each of the last N months that have one.") var keepMonthly: Int?
    @Option(help: "Keep the newest run of each of the last N years that have one.") var keepYearly: Int?
    @Flag(help: "Show what would be forgotten; change nothing.") var dryRun = false
    @Flag(help: "Also store this policy for the project, for gc to apply every time.") var save = false
    @Flag(help: "Remove the project's stored policy (nothing is forgotten).") var clearPolicy = false

    var policy: KeepPolicy {
        KeepPolicy(last: keepLast, within: keepWithin.flatMap(DurationText.seconds), hourly: keepHourly, daily: keepDaily,
                   weekly: keepWeekly, monthly: keepMonthly, yearly: keepYearly)
    }

    func validate() throws {
        if let keepWithin, DurationText.seconds(keepWithin) == nil {
            throw ValidationError("--keep-within: not a duration: \(keepWithin) (e.g. 12h, 7d, 4w)")
        }
        for (name, n) in [("last", keepLast), ("hourly", keepHourly), ("daily", keepDaily), ("weekly", keepWeekly),
                          ("monthly", keepMonthly), ("yearly", keepYearly)] {
            if let n, n < 1 { throw ValidationError("--keep-\(name) must be at least 1") }
        }
        if clearPolicy { if !policy.isEmpty || save { throw ValidationError("--clear-policy takes no keep rule") } ; return }
        if policy.isEmpty { throw ValidationError("give at least one keep rule, e.g. --keep-last 10 or --keep-daily 7") }
    }

    func run() throws {
        do {
            if clearPolicy {
                let (name, _) = try global.perform(project, by: ControlAttribute.project, { .clearKeepPolicy(project: $0) }, as: NoResult.self)
                if json { try printJSON(["project": name, "policy": nil as String?]); return }
                if !quiet { print("removed the stored keep policy of \(name)") }
                return
            }
            let (name, report) = try global.perform(project, by: ControlAttribute.project,
                                                    { .forget(project: $0, policy: policy, dryRun: dryRun, save: save) }, as: RunRetention.Report.self)
            if json { try printJSON(report); return }
            print("keep \(plural(report.kept.count, "run")):")
            for d in report.kept { print("  \(d.run)  \(d.reasons.joined(separator: ", "))") }
            print("\(dryRun ? "would forget" : "forgot") \(plural(report.forgotten.count, "run")):")
            for d in report.forgotten { print("  \(d.run)") }
            if !report.forgotten.isEmpty, !dryRun {
                print("\(formatBytes(report.bytesReleased)) of files released; `artifactfs gc` frees the blobs no other run uses")
            }
            if save && !dryRun { print("stored the policy for \(name): \(policy.description)") }
        } catch { throw fail(error) }
    }
}

extension GlobalOptions {
    /// The store, and the name `argument` gives: a name as it is, or a folder inside a mount
    /// whose `attribute` (`user.artifactfs.project`, `.dataset`) names it, whose mount then
    /// gives the store unless `--store` does.
    func openNamed(_ argument: String, by attribute: String) throws -> (ArtifactStore, String) {
        var name = argument
        var root = self.root
        if isPathArgument(argument) {
            guard let located = try MountedPath.locate(argument) else {
                throw ArtifactError(.notMounted, "not in an artifactfs mount (give the name, with --store)", path: absolutePath(argument))
            }
            guard let fromPath = located.attribute(attribute) else {
                let noun = attribute.split(separator: ".").last.map(String.init) ?? "artifactfs"
                throw ArtifactError(.notFound, "not in a \(noun)'s folder of the mount", path: located.absolute)
            }
            name = fromPath
            if store == nil, let mounted = try? ExtendedAttributes.get(located.mountpoint, ControlAttribute.store) { root = mounted }
        }
        return (try ArtifactStore(root: root, create: false), name)
    }

    /// The store and project `argument` names: a project name, or its folder inside a mount.
    func openProject(_ argument: String) throws -> (ArtifactStore, ProjectRecord) {
        let (opened, name) = try openNamed(argument, by: ControlAttribute.project)
        guard let p = try opened.catalog.project(named: name) else {
            throw ArtifactError(.notFound, "no such project (mkdir MOUNT/projects/\(name) creates one)", path: name)
        }
        return (opened, p)
    }
}
