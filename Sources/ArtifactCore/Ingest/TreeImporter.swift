import Foundation
import Crypto
import CSystemShims
import SystemPackage
import Synchronization
import TabularSchemas
#if canImport(Glibc)
import Glibc
#endif

/// Registers a folder tree outside the store as one new run of a project, or as one new
/// version of a dataset's branch whose tree equals the folder (SPEC §6, `artifactfs import`).
///
/// Each file is read once: a small one (up to `inMemorySize`) into memory, read ahead on every
/// core, a larger one hashed while it is copied into a temp file under `tmp/import/`; then
/// `BlobStore.adopt` stores them (the small ones packed, see `PackFile`; the source stays the
/// user's, writable, never linked). Every `batchSize` files the batch's blobs are adopted and
/// its rows written to the catalog's import journal in one transaction, then released: from
/// then on the journal names those blobs (gc keeps them). Where a batch packed its small blobs
/// goes into its journal rows, not the blob rows: the journal is written in path order, the blob
/// table is keyed by hash, and writing it per batch dirtied pages all over it (random writes:
/// the walk of a 100,000-file import took 5.4 s with them, 3.1 s without, BENCHMARKS.md). A rerun after a kill finds the
/// journal and skips files whose (size, mtime, ctime, inode, device) match a row whose blob is
/// stored. The run or version is registered from the journal (a run by SQLite's own copy of it,
/// `RunFiles.importJournal`; a version streamed row by row), making the blob rows with their
/// locations, in one transaction that also deletes the journal: it is never seen half
/// registered. While a batch is written (`WriteBehind`) the next
/// is read and hashed. Memory is bounded by two batches (at most `batchContentBytes` of file
/// content each), one folder's names, the tree's folders and hard-linked files, not by the
/// number of files.
///
/// A file that cannot be read, or that changes while it is read, is reported (`Failure`) and
/// left out; the rest is registered, and a run then carries an error and ends
/// `completed_with_errors`.
public final class TreeImporter {
    /// Where the tree goes.
    public enum Target: Sendable, Equatable {
        /// A new run of this project (created if missing).
        case project(String)
        /// A new version on `branch` of this dataset (dataset created if missing, branch forked
        /// from main if missing); `message` nil: a generated one.
        case dataset(String, branch: String, message: String?)

        var journalName: String {
            switch self {
            case .project(let p): return "project:\(p)"
            case .dataset(let d, let b, _): return "dataset:\(d)@\(b)"
            }
        }
    }

    /// A file left out, with why.
    public struct Failure: Codable, Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    /// What an import did, or with `dryRun` would do. Files are the tree's non-folder entries.
    public struct Summary: Codable, Sendable {
        public var dryRun = false
        /// Paths the project or branch did not have.
        public var filesNew = 0
        /// Paths whose current file has the same content (a run's `duplicate`; a version
        /// leaves them as they are).
        public var filesDuplicate = 0
        /// Paths whose current file is replaced by different content or metadata.
        public var filesSuperseded = 0
        /// Paths of the branch the folder lacks, deleted by the version (datasets only).
        public var filesDeleted = 0
        public var filesFailed = 0
        /// Files a killed earlier attempt had stored, taken from the journal without reading.
        public var filesReused = 0
        /// Bytes of content the store did not hold before.
        public var bytesStored: Int64 = 0
        public var run: String?
        public var version: String?
        public var failures: [Failure] = []

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", filesNew = "files_new", filesDuplicate = "files_duplicate"
            case filesSuperseded = "files_superseded", filesDeleted = "files_deleted", filesFailed = "files_failed"
            case filesReused = "files_reused", bytesStored = "bytes_stored", run, version, failures
        }
        public init() {}
    }

    /// Files and bytes done of the tree's totals (counted by a first walk).
    /// Files and bytes done; the totals are nil until the walk that counts them, which runs
    /// beside the import on another thread, has finished.
    public struct Progress: Sendable {
        public var files = 0, totalFiles: Int?
        public var bytes: Int64 = 0, totalBytes: Int64?
    }

    public let store: ArtifactStore
    /// The absolute source folder.
    public let source: PathBytes
    public let target: Target
    /// Files (and symlinks, special files) adopted and journaled per transaction.
    public var batchSize = 1_000
    /// Owner of a created project or dataset, and the run's or version's uid.
    public var uid = Int64(getuid()), gid = Int64(getgid())
    /// Told about the new run once it is registered (queues its pipeline), as for a seal.
    public weak var sink: RunSealedSink?
    /// Called after each batch is journaled, with the number of batches so far (tests kill
    /// the process here).
    public var afterBatch: (Int) throws -> Void = { _ in }
    /// Called once the run or version is registered, before it is handed over: `afterRegistering`
    /// (tests kill here), then `announce` (the CLI tells a mount), both again on a rerun if a
    /// kill came between.
    public var afterRegistering: () -> Void = {}
    public var announce: (Summary) -> Void = { _ in }
    /// Whether `Progress` gets the tree's totals, counted by a second walk of the tree beside
    /// the import (a thread of its own). Off when nothing shows them (`--json`, `--quiet`): on
    /// two cores that walk took CPU time from the import's own.
    public var countsTotals = true
    /// Relative paths whose open is refused with EACCES, as if unreadable (tests running as
    /// root, where a mode cannot refuse).
    public var refusedPaths: Set<PathBytes> = []

    private var key: ImportKey { ImportKey(target: target.journalName, source: source) }
    private let trees: VersionTrees
    private var tempDir: String { store.blobs.tmpDir + "/import" }

    /// `source`: the folder to import (made absolute). Throws `.notFound` when it is not a folder.
    public init(store: ArtifactStore, source: String, target: Target) throws {
        self.store = store
        let absolute = source.hasPrefix("/") ? source : FileManager.default.currentDirectoryPath + "/" + source
        var trimmed = absolute
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.source = PathBytes(trimmed)
        self.target = target
        self.trees = VersionTrees(catalog: store.catalog)
        guard let st = try? Syscalls.lstat(self.source), st.st_mode & S_IFMT == S_IFDIR else {
            throw ArtifactError(.notFound, "no such folder", path: trimmed)
        }
    }

    // MARK: the import

    /// Imports the tree (see the type). `failed` hears of each file left out as it happens.
    /// Throws `.invalidArgument` for a bad name, `.notFound` for a missing branch's dataset,
    /// `.busy` when the branch has uncommitted changes, `.io`/`.noSpace` when the store cannot
    /// take a batch (what was journaled stays for a rerun).
    public func run(progress progressHandler: (Progress) -> Void = { _ in }, failed: (Failure) -> Void = { _ in }) throws -> Summary {
        if let done = try store.catalog.importDone(key) {
            // Registered before a kill: only the hand-over is left.
            let summary = try JSONDecoder().decode(Summary.self, from: Data(done.utf8))
            try handOver(summary)
            return summary
        }
        let resolved = try resolveTarget(creating: true)!
        removeLeftoverTempFiles()
        try Syscalls.mkdirs(tempDir)
        let pass = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var summary = Summary()
        var state = Progress()
        let totals = countsTotals ? countInBackground() : TreeTotals()
        defer { totals.cancel() }
        func progress(_ state: Progress) {
            var state = state
            (state.totalFiles, state.totalBytes) = totals.value.map { ($0.files, $0.bytes) } ?? (nil, nil)
            progressHandler(state)
        }

        func report(_ failure: Failure) { summary.failures.append(failure); failed(failure) }
        var batch = Batch()
        var batches = 0
        // A full batch is written (blobs, one syncfs, its journal rows) on another thread while
        // this one reads and hashes the next: one batch in flight, in order.
        let behind = WriteBehind()
        defer { try? behind.finish() }
        let (blobs, catalog, key, afterBatch) = (store.blobs, store.catalog, key, afterBatch)
        let recent = RecentlyPacked()
        func flush() throws {
            guard !batch.rows.isEmpty || !batch.seen.isEmpty else { return }
            let full = batch
            batch = Batch()
            batches += 1
            let number = batches
            try behind.submit {
                var full = full
                // Packs are indexed by the journal rows (one transaction with them, in path
                // order), not by blob rows; content an earlier batch packed is not packed again.
                let adoptions = full.adoptions.filter { $0.content == nil || recent.places[$0.hash] == nil }
                let adopted = try blobs.adopt(adoptions, indexingPacks: false, referenced: catalog.referencedBlobs)
                var fresh = Set(adopted.stored)
                var places: [BlobHash: (name: String, offset: Int64)] = [:]
                for pack in adopted.unindexedPacks { for e in pack.entries { places[e.hash] = (pack.name, e.offset) } }
                for i in full.rows.indices {
                    guard let hash = full.rows[i].blob else { continue }
                    if fresh.remove(hash) != nil { full.rows[i].stored = true }
                    if let place = places[hash] ?? recent.places[hash] { (full.rows[i].packName, full.rows[i].packOffset) = place }
                }
                do {
                    try catalog.recordImportBatch(key, rows: full.rows, seen: full.seen, pass: pass,
                                                  packs: adopted.unindexedPacks.map { ($0.name, $0.size) })
                } catch {
                    blobs.discard(adopted, referenced: catalog.referencedBlobs)
                    full.removeTempFiles()
                    throw error
                }
                recent.add(places)
                blobs.release(adopted)
                full.removeTempFiles()
                try afterBatch(number)
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var tempCounter = 0
        let pid = getpid()
        let inferSchemas = if case .dataset = target { true } else { false }

        // Read before the first batch is journaled: this attempt's own rows are never looked up.
        let resuming = try store.catalog.hasImportJournal(key)
        try walk { chunk in
            let journal = resuming ? try store.catalog.importJournal(key, paths: chunk.filter { $0.st.st_mode & S_IFMT == S_IFREG }.map(\.path)) : [:]
            for group in Self.readAheadGroups(chunk) {
                // The group's small files, read and hashed on every core before this thread batches them.
                let ahead = readAhead(chunk[group], journal: journal)
                for (index, (path, st)) in zip(group, chunk[group]) {
                    let full = source.appending(path)
                    let type = st.st_mode & S_IFMT
                    if type == S_IFDIR {
                        batch.rows.append(ImportJournalRow(path: path, kind: .dir, blob: nil, size: 0, st: st, xattrs: UserXattrs.read(full)))
                        continue
                    }
                    guard let kind = FileKind(mode: UInt32(st.st_mode)) else { continue }
                    defer {
                        state.files += 1
                        if kind == .regular { state.bytes += Int64(st.st_size) }
                        progress(state)
                    }
                    let read = ahead[index]
                    let xattrs = read?.xattrs ?? UserXattrs.read(full)
                    switch kind {
                    case .regular:
                        if let j = journal[path], Self.unchanged(j, st), stillStored(j) {
                            batch.seen.append(path)
                            summary.filesReused += 1
                            continue
                        }
                        if Int64(st.st_size) <= Self.inMemorySize {
                            let small: SmallFile
                            do {
                                small = try read?.file.get() ?? readSmall(path, listed: st)
                            } catch {
                                report(Failure(path: full.description, reason: Self.reason(error)))
                                continue
                            }
                            let adoption = small.adoption
                            var row = ImportJournalRow(path: path, kind: .file, blob: adoption.hash, size: adoption.size, st: small.st, xattrs: xattrs)
                            row.blocks = small.blocks
                            if inferSchemas, let format = SchemaInference.format(forName: path.lastComponent.description) {
                                let schema = SchemaInference.infer(bytes: adoption.content!, format: format)
                                row.schema = String(decoding: try JSONEncoder().encode(schema), as: UTF8.self)
                            }
                            batch.rows.append(row)
                            batch.adoptions.append(adoption)
                            batch.contentBytes += adoption.size
                            if batch.adoptions.count >= batchSize || batch.contentBytes >= Self.batchContentBytes { try flush() }
                            continue
                        }
                        tempCounter += 1
                        let temp = "\(tempDir)/\(pid)-\(tempCounter)"
                        let copied: (hash: BlobHash, st: stat, blocks: BlockSums)
                        do {
                            copied = try copyHashing(path, listed: st, to: temp, buffer: buffer)
                        } catch let e as ArtifactError where e.code == .noSpace {
                            throw e  // the store's disk, not this file: stop (what is journaled stays)
                        } catch {
                            report(Failure(path: full.description, reason: Self.reason(error)))
                            continue
                        }
                        var row = ImportJournalRow(path: path, kind: .file, blob: copied.hash, size: Int64(copied.st.st_size), st: copied.st, xattrs: xattrs)
                        row.blocks = copied.blocks
                        if inferSchemas, let schema = SchemaInference.infer(path: temp, name: path.lastComponent.description) {
                            row.schema = String(decoding: try JSONEncoder().encode(schema), as: UTF8.self)
                        }
                        batch.rows.append(row)
                        batch.temps.append(temp)
                        batch.adoptions.append(BlobStore.Adoption(path: PathBytes(temp), hash: copied.hash, size: row.size))
                    case .symlink:
                        guard let target = try? Syscalls.readlink(full) else {
                            report(Failure(path: full.description, reason: "cannot read the symlink"))
                            continue
                        }
                        let adoption = BlobStore.Adoption(content: target.bytes)
                        batch.rows.append(ImportJournalRow(path: path, kind: .symlink, blob: adoption.hash, size: Int64(target.count), st: st, xattrs: xattrs))
                        batch.adoptions.append(adoption)
                    default:
                        // FIFOs, sockets, device nodes: metadata, and the empty blob as the seal keeps them.
                        let adoption = BlobStore.Adoption(content: [])
                        let entryKind = EntryKind(rawValue: kind.rawValue) ?? .fifo
                        batch.rows.append(ImportJournalRow(path: path, kind: entryKind, blob: adoption.hash, size: 0, st: st, xattrs: xattrs))
                        batch.adoptions.append(adoption)
                    }
                    if batch.adoptions.count >= batchSize { try flush() }
                }
            }
            if batch.rows.count + batch.seen.count >= batchSize * 4 { try flush() }
        }
        try flush()
        try behind.finish()
        summary.filesFailed = summary.failures.count

        switch resolved {
        case .project(let projectId):
            try registerRun(projectId: projectId, pass: pass, summary: &summary)
        case .branch(let branchId):
            try registerVersion(branchId: branchId, pass: pass, summary: &summary)
        }
        afterRegistering()
        try handOver(summary)
        return summary
    }

    /// Whether the blob an earlier attempt's journal row names is still in the store: in the
    /// pack the row says, or wherever the store holds it.
    private func stillStored(_ row: ImportJournalRow) -> Bool {
        guard let hash = row.blob else { return false }
        if let pack = row.packName { return Syscalls.exists(store.blobs.packPath(pack)) }
        return store.blobs.contains(hash)
    }

    /// Tells the pipeline and the mount, then forgets the import.
    private func handOver(_ summary: Summary) throws {
        if case .project(let name) = target, let runName = summary.run, let project = try store.catalog.project(named: name),
           let run = try store.catalog.run(projectId: project.id!, name: runName) {
            sink?.runSealed(run)
        }
        announce(summary)
        try store.catalog.forgetImportDone(key)
    }

    private func registerRun(projectId: ProjectID, pass: Int64, summary: inout Summary) throws {
        let failures = summary.failures
        let error = failures.isEmpty ? nil
            : "import: \(failures.count) file(s) could not be read: " + failures.prefix(10).map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
        var result = summary
        _ = try RunRegistrar(catalog: store.catalog).register(
            projectId: projectId,
            files: .importJournal(key, pass: pass),
            directories: { tx in try tx.importedFolders(key, pass: pass).map(\.stagedDirectory) },
            uid: uid, action: "import", completed: sink == nil, error: error,
            alsoInTransaction: { tx, run in
                result.run = run.name
                result.filesNew = Int(run.filesNew); result.filesDuplicate = Int(run.filesDuplicate)
                result.filesSuperseded = Int(run.filesSuperseded)
                result.bytesStored = try tx.importStoredBytes(key, pass: pass)
                try tx.closeImport(key, summary: String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
            })
        summary = result
    }

    /// One version whose tree is the folder: an entry for each path that is new or differs from
    /// the head, and a deletion for each path of the head the folder lacks (as `git add -A`
    /// and a commit, or `rsync --delete`, would leave it).
    private func registerVersion(branchId: RefID, pass: Int64, summary: inout Summary) throws {
        var result = summary
        let now = Date()
        try store.catalog.writing("the version was not committed") { tx in
            guard let (ref, dataset) = try tx.branch(id: branchId) else { throw ArtifactError(.notFound, "no such branch") }
            if try tx.hasUncommittedChanges(branch: branchId) {
                throw ArtifactError(.busy, "the branch has uncommitted changes in its working tree; commit them first", path: "@\(ref.name)")
            }
            let head = ref.versionId
            let message: String
            if case .dataset(_, _, let m?) = target { message = m } else { message = "import \(source.description)" }
            let version = try tx.insertVersion(datasetId: dataset.id!, parent: head, branch: ref.name, uid: uid, message: message,
                                               changes: 0, now: now)
            let versionId = version.id!
            let linkCounts = try tx.importLinkCounts(key, pass: pass)
            var leaders: [UInt64: EntryID] = [:]
            var changes: Int64 = 0

            func write(_ e: inout EntryRecord, blocks: BlockSums? = nil, packed: PackPlace? = nil) throws {
                if e.kind.hasBytes, let hash = e.blob {
                    try tx.addReference(hash, size: e.size, now: now.timeIntervalSince1970, blocks: blocks, packed: packed)
                }
                try tx.insertEntry(&e)
                changes += 1
            }
            func consider(_ row: ImportJournalRow) throws {
                let current = try trees.item(tx, version: head, path: row.path)
                let linkKey = row.linkKey
                let links = linkKey.flatMap { linkCounts[$0] } ?? 1
                var e = row.entry(datasetId: dataset.id!, versionId: versionId)
                let isFile = row.kind != .dir
                if let current, links == 1, Self.same(current, e) {
                    if isFile { result.filesDuplicate += 1 }
                    return
                }
                if isFile { if current == nil { result.filesNew += 1 } else { result.filesSuperseded += 1 } }
                if current?.kind == .file, current?.blob == e.blob { e.schema = current?.schema }
                if links > 1, let linkKey {
                    e.nlink = links
                    e.linkGroup = leaders[linkKey]
                }
                try write(&e, blocks: row.blocks, packed: row.packed)
                if links > 1, let linkKey, leaders[linkKey] == nil {
                    leaders[linkKey] = e.id!
                    try tx.leadLinkGroup(entryId: e.id!)
                }
            }
            for folder in try tx.importedFolders(key, pass: pass) { try consider(folder) }
            try tx.forEachImportedFile(key, pass: pass) { try consider($0) }
            // Content the head names already (a duplicate writes no entry) but whose blob row
            // lost its location (quarantined): this import's copy heals it.
            try tx.locateImportedPacks(key, pass: pass)

            // Paths of the head the folder lacks (or holds as another kind) go, folder by folder.
            func sweep(_ dir: PathBytes, all: Bool) throws {
                for (_, item) in try trees.children(tx, version: head, dir: dir) {
                    let row = all ? nil : try tx.importedRow(key, path: item.path, pass: pass)
                    if row == nil {
                        var e = EntryRecord(id: nil, datasetId: dataset.id!, versionId: versionId, path: item.path, dir: item.path.parent,
                                            name: item.path.lastComponent, kind: .deleted, blob: nil, size: 0, mode: 0,
                                            mtimeNs: now.nanosecondsSince1970, uid: uid, gid: gid, schema: nil)
                        try write(&e)
                        if !item.isDirectory { result.filesDeleted += 1 }
                    }
                    if item.isDirectory { try sweep(item.path, all: row?.kind != .dir) }
                }
            }
            try sweep(.empty, all: false)

            result.bytesStored = try tx.importStoredBytes(key, pass: pass)
            if changes == 0 {
                try tx.deleteEmptyVersion(versionId)
            } else {
                try tx.setVersionChanges(versionId, changes)
                try tx.moveBranch(branchId, to: versionId)
                result.version = version.name
            }
            try tx.closeImport(key, summary: String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        }
        summary = result
    }

    /// What a version records besides the path: kind, bytes, mode, owner, user attributes,
    /// device number, and a folder's mtime (as a commit compares).
    static func same(_ item: TreeItem, _ e: EntryRecord) -> Bool {
        item.kind == e.kind && item.blob == e.blob && item.mode == e.mode && item.uid == e.uid && item.gid == e.gid
            && UserXattrs(encoded: item.xattrs) == UserXattrs(encoded: e.xattrs.map { Array($0) }) && item.rdev == e.rdev
            && (item.kind != .dir || item.mtimeNs == e.mtimeNs)
    }

    // MARK: dry run

    /// What `run` would do, changing nothing: the store is only read (open it read-only), every
    /// regular file is hashed (read once), nothing is copied or journaled, no project,
    /// dataset or branch is created.
    public func dryRun(progress: (Progress) -> Void = { _ in }, failed: (Failure) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        summary.dryRun = true
        let resolved = try resolveTarget(creating: false)
        var head: VersionID?
        if case .branch(let b)? = resolved { head = try store.catalog.ref(id: b)?.versionId }
        var state = Progress()
        (state.totalFiles, state.totalBytes) = try countTree()
        var counted = Set<BlobHash>()
        func report(_ failure: Failure) { summary.failures.append(failure); failed(failure) }
        try walk { chunk in
            for (path, st) in chunk {
                guard let kind = FileKind(mode: UInt32(st.st_mode)) else { continue }
                let full = source.appending(path)
                defer { state.files += 1; if kind == .regular { state.bytes += Int64(st.st_size) }; progress(state) }
                let hash: BlobHash
                switch kind {
                case .regular:
                    do {
                        let fd = try open(path)
                        defer { close(fd) }
                        hash = try BlobStore.digest(fd: fd, path: full.description).hash
                    } catch {
                        report(Failure(path: full.description, reason: Self.reason(error)))
                        continue
                    }
                    if !store.blobs.contains(hash), counted.insert(hash).inserted { summary.bytesStored += Int64(st.st_size) }
                case .symlink:
                    hash = BlobStore.Adoption(content: (try? Syscalls.readlink(full))?.bytes ?? []).hash
                default:
                    hash = ImportJournalRow.emptyContent
                }
                switch resolved {
                case .project(let p)?:
                    if let current = try store.catalog.latestFile(projectId: p, dir: path.parent, name: path.lastComponent) {
                        if current.blob == hash && current.kind == kind { summary.filesDuplicate += 1 } else { summary.filesSuperseded += 1 }
                    } else {
                        summary.filesNew += 1
                    }
                case .branch?:
                    let row = ImportJournalRow(path: path, kind: EntryKind(rawValue: kind.rawValue) ?? .file, blob: hash,
                                               size: kind == .symlink ? 0 : Int64(st.st_size), st: st, xattrs: UserXattrs.read(full))
                    if let current = try trees.item(version: head, path: path) {
                        if Self.same(current, row.entry(datasetId: DatasetID(0), versionId: VersionID(0))) {
                            summary.filesDuplicate += 1
                        } else {
                            summary.filesSuperseded += 1
                        }
                    } else {
                        summary.filesNew += 1
                    }
                case nil:
                    summary.filesNew += 1
                }
            }
        }
        if let head {
            func sweep(_ dir: PathBytes) throws {
                for (_, item) in try trees.children(version: head, dir: dir) {
                    let st = try? Syscalls.lstat(source.appending(item.path))
                    let isDir = st.map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
                    if item.isDirectory { try sweep(item.path) } else if st == nil || isDir { summary.filesDeleted += 1 }
                }
            }
            try sweep(.empty)
        }
        summary.filesFailed = summary.failures.count
        return summary
    }

    // MARK: the tree

    /// The project or branch the import goes to; with `creating`, made if missing (as `mkdir`
    /// in the mount would), else nil when missing.
    private enum Resolved { case project(ProjectID), branch(RefID) }

    private func resolveTarget(creating: Bool) throws -> Resolved? {
        let catalog = store.catalog
        switch target {
        case .project(let name):
            if let p = try catalog.project(named: name) { return .project(p.id!) }
            guard creating else { try NameRules.validate(name, kind: "project"); return nil }
            return .project(try store.createProject(name: name, uid: uid, gid: gid).id!)
        case .dataset(let name, let branch, _):
            var dataset = try catalog.dataset(named: name)
            if dataset == nil {
                guard creating else { try NameRules.validate(name, kind: "dataset"); return nil }
                dataset = try catalog.createDataset(name: name, uid: uid, gid: gid)
            }
            let d = dataset!.id!
            if let ref = try catalog.ref(datasetId: d, kind: .branch, name: branch) { return .branch(ref.id!) }
            guard creating else { try NameRules.validate(branch, kind: "branch"); return nil }
            let main = try catalog.ref(datasetId: d, kind: .branch, name: "main")
            return .branch(try catalog.createBranch(datasetId: d, name: branch, at: main?.versionId).id!)
        }
    }

    /// Entries below the source folder, depth first, a folder's names (sorted) at most 1,000 at
    /// a time with their lstat: `visit` sees a folder before what it holds. Paths a top-level
    /// `.artifactfsignore` names are left out (for a project, the file itself too, as a seal
    /// leaves it in incoming/). Throws `.io` when a folder cannot be listed.
    private func walk(_ visit: ([(path: PathBytes, st: stat)]) throws -> Void) throws {
        let ignore = IgnoreRules(file: (try? readSmallFile(source.appending(IgnoreRules.fileName))) ?? [])
        var isProject = false
        if case .project = target { isProject = true }
        var pending: [PathBytes] = [.empty]
        while let dir = pending.popLast() {
            let full = dir.isEmpty ? source : source.appending(dir)
            let names: [PathBytes]
            do { names = try Syscalls.listDirectory(full).map(\.name).sorted() } catch let e as Errno {
                throw ArtifactError.system(e, "cannot list the folder", path: full.description)
            }
            var chunk: [(path: PathBytes, st: stat)] = []
            var subfolders: [PathBytes] = []
            for name in names {
                let path = dir.appending(name)
                guard let st = try? Syscalls.lstat(source.appending(path)) else { continue }  // gone since the listing
                let isDir = st.st_mode & S_IFMT == S_IFDIR
                if ignore.ignores(path.bytes, isDirectory: isDir) || (isProject && path == IgnoreRules.fileName) { continue }
                chunk.append((path, st))
                if isDir { subfolders.append(path) }
                if chunk.count == 1_000 { try visit(chunk); chunk.removeAll(keepingCapacity: true) }
            }
            if !chunk.isEmpty { try visit(chunk) }
            pending.append(contentsOf: subfolders.reversed())
        }
    }

    /// Totals of the tree for progress, counted by a second walk on another thread, as
    /// restic's archiver runs its scanner beside the backup: the count's lstat of every entry
    /// then costs the import no time (it was 1 of 12 system calls per small file).
    final class TreeTotals: @unchecked Sendable {
        private let state = Mutex<(files: Int, bytes: Int64)?>(nil)
        private let cancelled = Atomic<Bool>(false)
        /// The totals, nil until counted (or when the count failed or was cancelled).
        var value: (files: Int, bytes: Int64)? { state.withLock { $0 } }
        var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
        func cancel() { cancelled.store(true, ordering: .relaxed) }
        func set(_ totals: (Int, Int64)) { state.withLock { $0 = totals } }
    }

    private func countInBackground() -> TreeTotals {
        let totals = TreeTotals()
        struct Importer: @unchecked Sendable { let importer: TreeImporter }
        let box = Importer(importer: self)
        Thread {
            if let counted = try? box.importer.countTree(until: totals) { totals.set(counted) }
        }.start()
        return totals
    }

    /// Files (non-folder entries) and bytes of regular files in the tree, for progress; stops
    /// (throwing `CancellationError`) once `totals` is cancelled.
    private func countTree(until totals: TreeTotals? = nil) throws -> (Int, Int64) {
        var files = 0, bytes: Int64 = 0
        try walk { chunk in
            if totals?.isCancelled == true { throw CancellationError() }
            for (_, st) in chunk where st.st_mode & S_IFMT != S_IFDIR {
                files += 1
                if st.st_mode & S_IFMT == S_IFREG { bytes += Int64(st.st_size) }
            }
        }
        return (files, bytes)
    }

    private func readSmallFile(_ path: PathBytes) throws -> [UInt8] {
        let fd = try Syscalls.open(path, flags: O_RDONLY | O_NOFOLLOW)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        return bytes
    }

    /// The reason part of an error about one file (its path is reported beside it).
    private static func reason(_ error: Error) -> String {
        (error as? ArtifactError)?.message ?? "\(error)"
    }

    /// Opens a regular file of the tree for reading, never following a symlink.
    private func open(_ path: PathBytes) throws -> Int32 {
        if refusedPaths.contains(path) { throw ArtifactError.system(.permissionDenied, "cannot open", path: source.appending(path).description) }
        do { return try Syscalls.open(source.appending(path), flags: O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot open", path: source.appending(path).description)
        }
    }

    /// Reads the file at `path` once: hashes it while copying it into the new file `temp`.
    /// Returns its hash and its attributes; throws (removing `temp`) when it cannot be read, is
    /// no longer the file that was listed (`listed`), or changes while it is read.
    private func copyHashing(_ path: PathBytes, listed: stat, to temp: String, buffer: UnsafeMutableRawBufferPointer) throws -> (hash: BlobHash, st: stat, blocks: BlockSums) {
        let fd = try open(path)
        defer { close(fd) }
        let before = try Syscalls.fstat(fd)
        guard before.st_mode & S_IFMT == S_IFREG, before.st_ino == listed.st_ino else {
            throw ArtifactError(.io, "it was replaced while the import ran")
        }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        let big = Int64(before.st_size) >= Self.pipelinedSize
        let out: Int32
        do {
            out = try Self.createTemp(temp, direct: big)
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot create a temp file in the store", path: temp)
        }
        var hasher = SHA256()
        var summer = BlockSummer()
        var total: Int64 = 0
        do {
            defer { close(out) }
            if big {
                let (hash, blocks, copied) = try hashThenWriteBehind(fd, out: out, temp: temp, path: path)
                let after = try Syscalls.fstat(fd)
                guard copied == Int64(after.st_size), after.st_size == before.st_size,
                      after.st_mtim.nanoseconds == before.st_mtim.nanoseconds else {
                    throw ArtifactError(.io, "it changed while it was read (size or mtime moved)")
                }
                return (hash, before, blocks)
            }
            while true {
                let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArtifactError.system(Errno(rawValue: errno), "cannot read", path: source.appending(path).description)
                }
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                hasher.update(bufferPointer: chunk)
                summer.update(chunk)
                var done = 0
                while done < n {
                    let w = Glibc.write(out, chunk.baseAddress! + done, n - done)
                    if w < 0 {
                        if errno == EINTR { continue }
                        let code: ArtifactError.Code = errno == ENOSPC ? .noSpace : .io
                        throw ArtifactError(code, "cannot write a temp file in the store: \(Errno(rawValue: errno))", path: temp)
                    }
                    done += w
                }
                total += Int64(n)
            }
            let after = try Syscalls.fstat(fd)
            guard total == Int64(after.st_size), after.st_size == before.st_size,
                  after.st_mtim.nanoseconds == before.st_mtim.nanoseconds else {
                throw ArtifactError(.io, "it changed while it was read (size or mtime moved)")
            }
        } catch {
            try? Syscalls.unlink(temp)
            throw error
        }
        return (BlobHash(digest: hasher.finalize()), before, summer.finalize())
    }

    /// Files up to this size (one checksum block, 1 MiB) are read whole into memory, hashed
    /// there, and written to the store only when it lacks their content: no temp file per
    /// file, and a duplicate costs no write at all.
    public static let inMemorySize = Int64(BlockSums.blockSize)

    /// Bytes of small files one batch holds in memory before it is flushed (32 MiB).
    static let batchContentBytes: Int64 = 32 << 20

    /// Whether an earlier attempt's journal row `j` is of the file listed as `st`, unchanged
    /// since: (size, mtime, ctime, inode, device), as restic's file change detection.
    static func unchanged(_ j: ImportJournalRow, _ st: stat) -> Bool {
        j.kind == .file && j.size == Int64(st.st_size) && j.mtimeNs == st.st_mtim.nanoseconds
            && j.ctimeNs == st.st_ctim.nanoseconds && j.ino == UInt64(st.st_ino) && j.dev == UInt64(st.st_dev)
    }

    /// A small regular file read whole, hashed and its block checksums taken.
    struct SmallFile {
        var adoption: BlobStore.Adoption
        var st: stat
        var blocks: BlockSums
    }

    /// A chunk's entries in groups of at most 256, with at most `readAheadBytes` of small
    /// files' content each (so that read-ahead adds at most that to memory).
    static func readAheadGroups(_ chunk: [(path: PathBytes, st: stat)]) -> [Range<Int>] {
        var groups: [Range<Int>] = []
        var start = 0, bytes: Int64 = 0
        for (i, item) in chunk.enumerated() {
            let size = item.st.st_mode & S_IFMT == S_IFREG && Int64(item.st.st_size) <= inMemorySize ? Int64(item.st.st_size) : 0
            if i > start && (i - start == 256 || bytes + size > readAheadBytes) {
                groups.append(start..<i)
                start = i; bytes = 0
            }
            bytes += size
        }
        if start < chunk.count { groups.append(start..<chunk.count) }
        return groups
    }

    /// Bytes of small files read ahead at a time.
    static let readAheadBytes: Int64 = 8 << 20

    /// The small regular files of `items` (but those a journal row of an earlier attempt
    /// matches), each read whole and hashed, with its user attributes, on every core
    /// (`BlobStore.concurrentMap`): by index in `items`' base.
    private func readAhead(_ items: ArraySlice<(path: PathBytes, st: stat)>, journal: [PathBytes: ImportJournalRow])
        -> [Int: (xattrs: UserXattrs, file: Result<SmallFile, Error>)] {
        let wanted = items.indices.filter { i in
            let st = items[i].st
            guard st.st_mode & S_IFMT == S_IFREG, Int64(st.st_size) <= Self.inMemorySize else { return false }
            return journal[items[i].path].map { !Self.unchanged($0, st) } ?? true
        }
        let done = BlobStore.concurrentMap(wanted, partition: { $0 }) { i in
            (xattrs: UserXattrs.read(source.appending(items[i].path)), file: Result { try readSmall(items[i].path, listed: items[i].st) })
        }
        return Dictionary(uniqueKeysWithValues: zip(wanted, done))
    }

    /// `readWhole`, hashed (SHA-256 and block checksums).
    private func readSmall(_ path: PathBytes, listed: stat) throws -> SmallFile {
        let read = try readWhole(path, listed: listed)
        return SmallFile(adoption: BlobStore.Adoption(content: read.bytes), st: read.st, blocks: BlockSums.of(read.bytes))
    }

    /// Reads the file at `path` whole (at most `inMemorySize` bytes) and returns its bytes and
    /// attributes; throws when it cannot be read, is no longer the file that was listed
    /// (`listed`), or changes while it is read.
    private func readWhole(_ path: PathBytes, listed: stat) throws -> (bytes: [UInt8], st: stat) {
        let fd = try open(path)
        defer { close(fd) }
        // The listing's lstat stands for the stat before the read, and one fstat after it
        // shows a file that was replaced, grew, shrank or was written meanwhile.
        let size = Int(listed.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var count = 0
        try bytes.withUnsafeMutableBytes { raw in
            while count < size {
                let n = Glibc.read(fd, raw.baseAddress! + count, size - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArtifactError.system(Errno(rawValue: errno), "cannot read", path: source.appending(path).description)
                }
                if n == 0 { break }
                count += n
            }
        }
        let after = try Syscalls.fstat(fd)
        guard after.st_mode & S_IFMT == S_IFREG, after.st_ino == listed.st_ino, after.st_dev == listed.st_dev else {
            throw ArtifactError(.io, "it was replaced while the import ran")
        }
        guard count == size, after.st_size == listed.st_size, after.st_mtim.nanoseconds == listed.st_mtim.nanoseconds else {
            throw ArtifactError(.io, "it changed while the import ran (size or mtime moved)")
        }
        return (bytes, after)
    }

    /// Files from this size on are written with O_DIRECT behind the hash on a second thread
    /// (`hashThenWriteBehind`); smaller ones in one buffered read-hash-write loop.
    public static let pipelinedSize: Int64 = 16 << 20

    /// Creates the temp file a copy goes to, with O_DIRECT when `direct` and the filesystem
    /// takes it (else without). Throws the open's errno.
    private static func createTemp(_ temp: String, direct: Bool) throws -> Int32 {
        if direct {
            do { return try Syscalls.open(temp, flags: O_WRONLY | O_CREAT | O_EXCL | afs_o_direct(), mode: 0o444) } catch Errno.invalidArgument {
                try? Syscalls.unlink(temp)  // the kernel creates the file before it refuses O_DIRECT
            }
        }
        return try Syscalls.open(temp, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o444)
    }

    /// Bytes per buffer, and buffers in the ring, of `hashThenWriteBehind` (16 MiB in all).
    private static let writeBehindChunk = 4 << 20, writeBehindBuffers = 4

    /// Reads `input` into a ring of 4 MiB buffers and hashes each on this thread, while a
    /// second thread writes the hashed buffers to `out` (opened with O_DIRECT where the
    /// filesystem allows it, so the copy neither fills the page cache nor needs writing back
    /// at the fsync). The blob holds exactly the bytes that were hashed, and on two cores a
    /// big file imports in about the time of hashing it (SPEC §8: ≥ 0.8× of single-core
    /// SHA-256 speed). Buffered writes cost this machine 2.5 s of kernel time per GiB, against
    /// 0.1 s direct (BENCHMARKS.md, issue 12). The last, partial block is written after
    /// clearing O_DIRECT (which needs offsets and lengths in whole blocks), as is everything
    /// when the filesystem refuses a direct write (EINVAL). Returns the hash, the block sums and
    /// the bytes written; throws the read's or the write's error.
    private func hashThenWriteBehind(_ input: Int32, out: Int32, temp: String, path: PathBytes) throws -> (BlobHash, BlockSums, Int64) {
        typealias Job = (buffer: UnsafeMutableRawBufferPointer, count: Int, offset: Int64)
        final class Ring: @unchecked Sendable {
            let condition = NSCondition()
            var free: [UnsafeMutableRawBufferPointer] = []
            var full: [Job] = []
            var finished = false, writerDone = false
            var writeError: Error?
        }
        let ring = Ring()
        let buffers = (0..<Self.writeBehindBuffers).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: Self.writeBehindChunk, alignment: 4096)
        }
        defer { for b in buffers { b.deallocate() } }
        ring.free = buffers
        let writer = Thread {
            var direct = fcntl(out, F_GETFL) & afs_o_direct() != 0
            func write(_ job: Job) throws {
                var done = 0
                while done < job.count {
                    // O_DIRECT takes whole 4 KiB blocks only: the tail goes through the page cache.
                    var want = job.count - done
                    if direct && want % 4096 != 0 {
                        if want >= 4096 { want -= want % 4096 } else { direct = false; _ = fcntl(out, F_SETFL, fcntl(out, F_GETFL) & ~afs_o_direct()) }
                    }
                    let w = pwrite(out, job.buffer.baseAddress! + done, want, off_t(job.offset) + off_t(done))
                    if w < 0 {
                        if errno == EINTR { continue }
                        if errno == EINVAL && direct { direct = false; _ = fcntl(out, F_SETFL, fcntl(out, F_GETFL) & ~afs_o_direct()); continue }
                        let code: ArtifactError.Code = errno == ENOSPC ? .noSpace : .io
                        throw ArtifactError(code, "cannot write a temp file in the store: \(Errno(rawValue: errno))", path: temp)
                    }
                    done += w
                }
            }
            while true {
                ring.condition.lock()
                while ring.full.isEmpty && !ring.finished { ring.condition.wait() }
                guard !ring.full.isEmpty else {
                    ring.writerDone = true
                    ring.condition.broadcast()
                    ring.condition.unlock()
                    return
                }
                let job = ring.full.removeFirst()
                let failed = ring.writeError != nil
                ring.condition.unlock()
                var error: Error?
                if !failed { do { try write(job) } catch let e { error = e } }
                ring.condition.lock()
                if let error { ring.writeError = error }
                ring.free.append(job.buffer)
                ring.condition.broadcast()
                ring.condition.unlock()
            }
        }
        writer.start()
        var hasher = SHA256()
        var summer = BlockSummer()
        var offset: Int64 = 0
        var readError: Error?
        reading: while true {
            ring.condition.lock()
            while ring.free.isEmpty && ring.writeError == nil { ring.condition.wait() }
            if ring.writeError != nil { ring.condition.unlock(); break }
            let buffer = ring.free.removeLast()
            ring.condition.unlock()
            var count = 0
            while count < buffer.count {
                let n = Glibc.read(input, buffer.baseAddress! + count, buffer.count - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    readError = ArtifactError.system(Errno(rawValue: errno), "cannot read", path: source.appending(path).description)
                    break
                }
                if n == 0 { break }
                count += n
            }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            hasher.update(bufferPointer: bytes)
            summer.update(bytes)
            ring.condition.lock()
            if count > 0 && readError == nil { ring.full.append((buffer, count, offset)) } else { ring.free.append(buffer) }
            ring.condition.broadcast()
            ring.condition.unlock()
            offset += Int64(count)
            if count < buffer.count || readError != nil { break reading }
        }
        ring.condition.lock()
        ring.finished = true
        ring.condition.broadcast()
        while !ring.writerDone { ring.condition.wait() }
        let writeError = ring.writeError
        ring.condition.unlock()
        if let readError { throw readError }
        if let writeError { throw writeError }
        return (BlobHash(digest: hasher.finalize()), summer.finalize(), offset)
    }

    /// Temp files of an import that died (its pid is gone), from an earlier attempt.
    private func removeLeftoverTempFiles() {
        for entry in (try? Syscalls.listDirectory(tempDir)) ?? [] {
            let name = entry.name.description
            guard let pid = Int32(name.split(separator: "-").first ?? "") else { continue }
            if pid == getpid() || kill(pid, 0) != 0 && errno == ESRCH { try? Syscalls.unlink(tempDir + "/" + name) }
        }
    }

    /// Where this import packed content, from its batches so far (the writer's thread only):
    /// a later batch's file with the same content points there instead of packing it again.
    /// At most `limit` entries (about 3 MiB: 16 batches' worth), then it starts over: memory
    /// stays bounded, and what it forgets costs a second copy in a pack, not a second blob.
    private final class RecentlyPacked: @unchecked Sendable {
        static let limit = 16_384
        private(set) var places: [BlobHash: (name: String, offset: Int64)] = [:]
        func add(_ more: [BlobHash: (name: String, offset: Int64)]) {
            if places.count + more.count > Self.limit { places.removeAll(keepingCapacity: true) }
            places.merge(more) { old, _ in old }
        }
    }

    /// What one transaction of the journal takes.
    private struct Batch {
        var rows: [ImportJournalRow] = []
        var seen: [PathBytes] = []
        var adoptions: [BlobStore.Adoption] = []
        var temps: [String] = []
        /// Bytes of the files held in memory (`Adoption(content:)`), at most `batchContentBytes`.
        var contentBytes: Int64 = 0

        func removeTempFiles() { for t in temps { try? Syscalls.unlink(t) } }
    }
}

extension Date {
    var nanosecondsSince1970: Int64 { Int64(timeIntervalSince1970 * 1_000_000_000) }
}

/// One batch written behind the walk: `submit` waits for the previous batch to be written
/// (so batches land in order, and at most one is in flight), rethrows its error, and starts
/// the next on its own thread; `finish` waits for the last. A thread per batch rather than a
/// queue: a batch is a thousand files, and this keeps the error hand-over plain.
final class WriteBehind: @unchecked Sendable {
    /// Guarded by `idle`: set by the batch's thread before it signals.
    private var failure: Error?
    private let idle = DispatchSemaphore(value: 1)

    func submit(_ work: @escaping () throws -> Void) throws {
        idle.wait()
        if let failure {
            idle.signal()
            throw failure
        }
        // Handed over whole: the walk touches nothing the batch's closure holds once it is
        // submitted, and the next submit waits for this thread.
        let job = Job(work)
        let thread = Thread { [self] in
            do { try job.work() } catch { failure = error }
            idle.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private final class Job: @unchecked Sendable {
        let work: () throws -> Void
        init(_ work: @escaping () throws -> Void) { self.work = work }
    }

    /// Waits until no batch is in flight; throws the last one's error.
    func finish() throws {
        idle.wait()
        defer { idle.signal() }
        if let failure { throw failure }
    }
}
