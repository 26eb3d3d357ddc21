import ArgumentParser
import ArtifactCore
import ArtifactFUSE
import Foundation
import SystemPackage

/// Asks the daemon behind a mounted `@branch` folder to commit it; prints the new version id
/// (`{"version": ID}` with `--json`; null when nothing changed).
func commitBranch(at path: String, message: String?, json: Bool, quiet: Bool) throws {
    let target = absolutePath(path)
    let version = try MountControl.commit(branch: target, message: message)
    if json { try printJSON(["version": version]); return }
    if let version { print(version) } else if !quiet { printError("nothing to commit in \(target)") }
}

struct Commit: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commit the working tree of a mounted @branch folder as one new version now.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A datasets/<dataset>/@<branch> folder inside a mount.")
    var path: String

    @Option(name: .shortAndLong, help: "The commit message.")
    var message: String

    func validate() throws {
        if message.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("the message (-m) must not be empty") }
    }

    func run() throws {
        do { try commitBranch(at: path, message: message, json: json, quiet: quiet) } catch { throw fail(error) }
    }
}

extension GlobalOptions {
    /// The store and dataset `argument` names: a dataset name, or a folder of a dataset inside a
    /// mount (`datasets/sales`, `.` in `@main`), whose mount then gives the store.
    func openDataset(_ argument: String) throws -> (ArtifactStore, DatasetRecord) {
        let (opened, name) = try openNamed(argument, by: ControlAttribute.dataset)
        guard let ds = try opened.catalog.dataset(named: name) else {
            throw ArtifactError(.notFound, "no such dataset (mkdir MOUNT/datasets/\(name) creates one)", path: name)
        }
        return (opened, ds)
    }
}

struct Branch: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create (like mkdir datasets/<dataset>/@NAME) or delete the branches of a dataset.",
        discussion: """
            Deleting a branch keeps its versions for the dataset's retention period (default 30d; \
            set it with --retention): `log` shows them and `branch NAME --from VERSION` brings the branch \
            back. After that, `artifactfs gc` removes the versions no branch or tag reaches. \
            `rm -rf` in the mount never deletes a branch.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dataset: its name, or its folder in a mount.") var dataset: String
    @Argument(help: "The new branch's name (none: list the branches).") var name: String?
    @Option(help: "A version id, tag or branch to start from (default: the head of main).") var from: String?
    @Option(name: .customLong("delete"), help: "Delete this branch.") var deleting: String?
    @Option(help: "How long a deleted branch's versions stay, stored for the dataset: e.g. 7d, 30d, 1y.") var retention: String?

    func validate() throws {
        if deleting != nil && (name != nil || from != nil) { throw ValidationError("--delete takes no new branch name or --from") }
        if let retention, DurationText.seconds(retention) == nil { throw ValidationError("--retention: not a duration: \(retention) (e.g. 7d)") }
        if from != nil && name == nil { throw ValidationError("--from needs the new branch's name") }
    }

    func run() throws {
        do {
            if let retention {
                let (name, _) = try global.perform(dataset, by: ControlAttribute.dataset,
                                                   { .setRetention(dataset: $0, seconds: DurationText.seconds(retention)!) }, as: NoResult.self)
                if !json { print("versions of deleted branches of \(name) stay \(retention)") }
            }
            if let deleting {
                let (name, line) = try global.perform(dataset, by: ControlAttribute.dataset, { .deleteBranch(dataset: $0, branch: deleting) },
                                                      as: DeletedBranchLine.self)
                let deleted = line.deleted
                if json { try printJSON(deleted); return }
                print("deleted branch \(deleting) of \(name) (was at \(deleted.version ?? "(empty)")); its versions stay \(DurationText.text(line.keptSeconds)), "
                      + "`artifactfs branch \(name) \(deleting) --from \(deleted.version ?? "VERSION")` brings it back")
                return
            }
            guard let name else {
                if retention != nil && !json { return }
                let (store, ds) = try global.openDataset(dataset)
                try listBranches(store, ds)
                return
            }
            let (ds, made) = try global.perform(dataset, by: ControlAttribute.dataset, { .createBranch(dataset: $0, branch: name, from: from) }, as: RefLine.self)
            if json { try printJSON(BranchLine(name: name, version: made.version)); return }
            print("branch \(name) of \(ds) at \(made.version ?? "(empty)")")
        } catch { throw fail(error) }
    }

    /// One line per branch (`NAME VERSION`), then the deleted ones still kept.
    private func listBranches(_ store: ArtifactStore, _ ds: DatasetRecord) throws {
        let branches = try store.catalog.refs(datasetId: ds.id!, kind: .branch).map { r in
            BranchLine(name: r.name, version: try r.versionId.flatMap { try store.catalog.version(id: $0)?.name })
        }
        let deleted = try store.catalog.deletedBranches(datasetId: ds.id!)
        if json { try printJSON(BranchListing(branches: branches, deleted: deleted)); return }
        for b in branches { print("\(b.name)\t\(b.version ?? "(empty)")") }
        for d in deleted { print("\(d.name)\t\(d.version ?? "(empty)")\tdeleted \(DatasetHistory.iso8601(d.deletedAt))") }
    }

    private struct BranchLine: Codable { var name: String; var version: String? }
    private struct BranchListing: Codable { var branches: [BranchLine]; var deleted: [DeletedBranch] }
}

struct Tag: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a dataset's tags, give a version an immutable name, or delete a tag.",
        discussion: """
            An existing tag is never moved. Deleting a tag (as git tag -d) keeps the version it \
            named for the dataset's retention period, like a deleted branch's.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dataset: its name, or its folder in a mount.") var dataset: String
    @Argument(help: "The new tag's name (none: list the tags).") var tag: String?
    @Option(help: "The version id, tag or branch to tag (default: the head of main).") var version: String?
    @Option(name: .customLong("delete"), help: "Delete this tag.") var deleting: String?

    func validate() throws {
        if deleting != nil && (tag != nil || version != nil) { throw ValidationError("--delete takes no new tag name or --version") }
        if version != nil && tag == nil { throw ValidationError("--version needs the new tag's name") }
    }

    func run() throws {
        do {
            if let deleting {
                let (name, deleted) = try global.perform(dataset, by: ControlAttribute.dataset, { .deleteTag(dataset: $0, tag: deleting) }, as: DeletedBranch.self)
                if json { try printJSON(deleted); return }
                print("deleted tag \(deleting) of \(name) (was at \(deleted.version ?? "?"))")
                return
            }
            guard let tag else {
                let (store, ds) = try global.openDataset(dataset)
                let tags = try store.catalog.refs(datasetId: ds.id!, kind: .tag).map { r in
                    TagLine(name: r.name, version: try r.versionId.flatMap { try store.catalog.version(id: $0)?.name } ?? "")
                }.sorted { $0.name < $1.name }
                if json { try printJSON(tags); return }
                for t in tags { print("\(t.name)\t\(t.version)") }
                return
            }
            let (name, made) = try global.perform(dataset, by: ControlAttribute.dataset, { .createTag(dataset: $0, tag: tag, version: version) }, as: RefLine.self)
            if json { try printJSON(TagLine(name: tag, version: made.version ?? "")); return }
            print("tag \(tag) of \(name) at \(made.version ?? "?")")
        } catch { throw fail(error) }
    }

    private struct TagLine: Codable { var name: String; var version: String }
}

struct Log: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a dataset's versions, newest first, with author, time, message and schemas.",
        discussion: """
            Like git log: -n N shows the newest N, --branch B only what B's head descends from, \
            and a path after -- only the versions that wrote that path or something under it. \
            --json gives each version's parents (the graph's edges); --graph is for text.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dataset: its name, or its folder in a mount.") var dataset: String
    @Flag(help: "Draw the version DAG, like git log --graph.") var graph = false
    @Flag(help: "One line per version: id, branches and tags, the message's first line.") var oneline = false
    @Option(name: .customShort("n", allowingJoined: true), help: "Show at most this many versions.") var maxCount: Int?
    @Option(help: "Only the versions this branch's head descends from.") var branch: String?
    @Argument(parsing: .postTerminator, help: "After --: a path in the dataset (only versions that wrote it or under it).")
    var paths: [String] = []

    func validate() throws {
        if let maxCount, maxCount < 0 { throw ValidationError("-n must be 0 or more") }
        if graph && json { throw ValidationError("--graph draws text; --json gives each version's parents instead") }
        if oneline && json { throw ValidationError("--oneline is text; --json gives every field") }
        if paths.count > 1 { throw ValidationError("give one path after --") }
    }

    func run() throws {
        do {
            let (store, ds) = try global.openDataset(dataset)
            let path = try paths.first.map(treePath)
            // In a @branch folder, `log .` is that branch's history, as git log is the checked-out branch's.
            let here = isPathArgument(dataset) ? try MountedPath.locate(dataset)?.attribute(ControlAttribute.branch) : nil
            let filter = DatasetHistory.LogFilter(branch: (branch ?? here).map { $0.hasPrefix("@") ? String($0.dropFirst()) : $0 },
                                                  path: path?.isEmpty == true ? nil : path, limit: maxCount)
            let entries = try DatasetHistory.log(catalog: store.catalog, datasetId: ds.id!, filter: filter,
                                                 schemaLimit: json ? nil : DatasetHistory.schemasShownPerVersion)
            if json { try printJSON(entries) } else if oneline {
                print(graph ? DatasetHistory.graph(entries, oneline: true) : DatasetHistory.oneline(entries), terminator: "")
            } else {
                print(DatasetHistory.graph(entries, graph: graph), terminator: "")
            }
        } catch { throw fail(error) }
    }
}

/// The dataset path a `-- PATH` argument names: in a mount (absolute, or relative to the
/// current folder there) the path of that name in its `@branch/` or version tree, like git's
/// pathspecs; elsewhere the path as given, relative to the dataset's root (`./` and a
/// trailing `/` ignored).
func treePath(_ argument: String) throws -> PathBytes {
    if argument.hasPrefix("/") || MountControl.mountpoint(containing: absolutePath(".")) != nil,
       let located = try MountedPath.locate(argument), let path = located.treePath {
        return path
    }
    return PathBytes(argument.split(separator: "/").filter { $0 != "." }.joined(separator: "/"))
}

struct Diff: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "List files added (A), removed (D) and changed (M) from A to B, with column changes.",
        discussion: """
            A and B are version ids, tags or branch heads. B given as @BRANCH, or left out, is that \
            branch's working tree as mounted, uncommitted changes included (left out: the branch \
            the DATASET folder is in, else @main), like git diff A.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dataset: its name, or its folder in a mount.") var dataset: String
    @Argument(help: "A version id, tag or branch.") var a: String
    @Argument(help: "A version id, tag or branch head, or @BRANCH for its working tree (default: the working tree).") var b: String?

    func run() throws {
        do {
            let (store, ds) = try global.openDataset(dataset)
            let from = try store.catalog.resolve(datasetId: ds.id!, reference: a)
            let d: DatasetDiff
            if let b, !b.hasPrefix("@") {
                let to = try store.catalog.resolve(datasetId: ds.id!, reference: b)
                d = try DatasetHistory.diff(catalog: store.catalog, trees: VersionTrees(catalog: store.catalog), from: from, to: to)
            } else {
                // No B: the branch the DATASET folder is in, else the one the current folder is
                // in (if of this dataset), else main.
                let here = try MountedPath.locate(isPathArgument(dataset) ? dataset : ".")
                let hereBranch = here?.attribute(ControlAttribute.dataset) == ds.name ? here?.attribute(ControlAttribute.branch) : nil
                let name = b.map { String($0.dropFirst()) } ?? hereBranch ?? "main"
                guard let ref = try store.catalog.ref(datasetId: ds.id!, kind: .branch, name: name) else {
                    throw ArtifactError(.notFound, "no such branch of \(ds.name)", path: "@\(name)")
                }
                let committer = DatasetCommitter(worktrees: Worktrees(store: store, trees: VersionTrees(catalog: store.catalog)))
                d = try DatasetHistory.diff(catalog: store.catalog, committer: committer, from: from, workingTree: ref.id!)
            }
            if json { try printJSON(d) } else { print(DatasetHistory.diffText(d), terminator: "") }
        } catch { throw fail(error) }
    }
}
