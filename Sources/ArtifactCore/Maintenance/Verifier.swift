import Foundation
import Logging

/// Checks a store (SPEC §6, verify), like `restic check`: every referenced blob exists (and,
/// with `readData`, hashes to its name), reference counts match the rows that refer to them,
/// rows point at what exists, no run was left in progress with nothing to finish it, and no
/// staged file a committed seal took is still in incoming/. Each problem names the blob, run
/// or path and the files that use it. Safe while the store is mounted.
///
/// With `fix` (`verify --fix`) it first backs the catalog up, then repairs what can be
/// repaired and never deletes referenced data: refcounts are recounted, a damaged blob is
/// moved to `quarantine/`, a missing blob is put back from a good copy found among the
/// unreferenced files or the quarantine, a stale run is closed as failed, a staged leftover
/// is removed. What it did is in `Report.fixes`.
public struct Verifier {
    public struct Problem: Codable, Sendable, Equatable {
        public var kind: String
        public var blob: String?
        public var detail: String
        /// Where the blob shows in a mount (up to 5): the files a missing or damaged blob breaks.
        public var uses: [String]? = nil
        /// What `--fix` did about it (nil: nothing could be done, or no `--fix`).
        public var fixed: String? = nil

        public init(kind: String, blob: String?, detail: String) { self.kind = kind; self.blob = blob; self.detail = detail }
    }

    /// What to do: `readData` is the share of referenced blobs read and hashed (0: none, only
    /// their sizes; 1: all, `--read-data`; between: a random subset, `--read-data-subset`).
    public struct Options: Sendable {
        public var readData: Double
        public var fix: Bool
        public init(readData: Double = 1, fix: Bool = false) { self.readData = readData; self.fix = fix }
    }

    public struct Report: Codable, Sendable {
        public var blobsChecked = 0
        /// Blobs read and hashed, and their bytes.
        public var blobsRead = 0
        public var bytesRead: Int64 = 0
        public var filesChecked = 0
        public var problems: [Problem] = []
        /// Blobs on disk that nothing refers to (left by an interrupted seal, or released by
        /// forget); not a problem: `gc` removes them.
        public var orphans: [String] = []
        /// The catalog copy `--fix` made before changing anything.
        public var backup: String? = nil
        /// Every problem is gone (or, after `--fix`, was repaired).
        public var ok: Bool { problems.allSatisfy { $0.fixed != nil && !Verifier.unrepaired.contains($0.kind) } }

        enum CodingKeys: String, CodingKey {
            case ok, problems, orphans, backup
            case blobsChecked = "blobs_checked", filesChecked = "files_checked", blobsRead = "blobs_read", bytesRead = "bytes_read"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(blobsChecked, forKey: .blobsChecked)
            try c.encode(blobsRead, forKey: .blobsRead)
            try c.encode(bytesRead, forKey: .bytesRead)
            try c.encode(filesChecked, forKey: .filesChecked)
            try c.encode(problems, forKey: .problems)
            try c.encode(orphans, forKey: .orphans)
            try c.encodeIfPresent(backup, forKey: .backup)
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            blobsChecked = try c.decode(Int.self, forKey: .blobsChecked)
            blobsRead = try c.decodeIfPresent(Int.self, forKey: .blobsRead) ?? 0
            bytesRead = try c.decodeIfPresent(Int64.self, forKey: .bytesRead) ?? 0
            filesChecked = try c.decode(Int.self, forKey: .filesChecked)
            problems = try c.decode([Problem].self, forKey: .problems)
            orphans = try c.decode([String].self, forKey: .orphans)
            backup = try c.decodeIfPresent(String.self, forKey: .backup)
        }
    }

    /// Kinds that stay problems after `--fix` did what it could: a damaged blob's data is gone
    /// (quarantined) until a good copy comes back, e.g. by sealing the same content again.
    static let unrepaired: Set<String> = ["corrupt_blob"]

    /// Progress: blobs done and to do, bytes read and to read.
    public struct Progress: Sendable { public var blobs: Int; public var totalBlobs: Int; public var bytes: Int64; public var totalBytes: Int64 }

    let store: ArtifactStore
    let logger = Logger(label: "artifactfs.verify")
    public init(store: ArtifactStore) { self.store = store }

    /// Verifies with `readData` 1 and no fix; `progress` gets (blobs done, blobs to do).
    public func run(progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        try run(Options()) { progress($0.blobs, $0.totalBlobs) }
    }

    /// Verifies (and with `options.fix`, repairs) the store. Throws when the catalog cannot be
    /// read or, with `fix`, backed up (then nothing was changed).
    public func run(_ options: Options, progress: (Progress) -> Void = { _ in }) throws -> Report {
        var report = Report()
        if options.fix {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let backup = "\(store.root)/catalog.sqlite.bak-\(stamp)"
            try store.catalog.backup(to: backup)
            report.backup = backup
        }
        if options.fix {
            // Counts first, so that the blob checks below see every referenced blob.
            let recounted = try store.catalog.recountReferences()
            for hex in recounted.sorted() {
                var p = Problem(kind: "refcount_mismatch", blob: hex, detail: "refcount did not match the rows that refer to it")
                p.fixed = "recounted"
                report.problems.append(p)
            }
        }
        let blobs = try store.catalog.blobs()
        let counted = try store.catalog.countedReferences()
        report.filesChecked = Int(counted.values.reduce(0, +))
        let malformed = try store.catalog.malformedBlobNames()
        let known = Set(blobs.map(\.hash.hex)).union(malformed)
        for name in malformed {
            report.problems.append(Problem(kind: "bad_name", blob: name, detail: "catalog holds a blob name that is not a SHA-256"))
        }
        let totalBytes = blobs.reduce(Int64(0)) { $0 + $1.size }
        var damaged: [(BlobHash, Int)] = []  // (blob, index of its problem)
        var bytesDone: Int64 = 0
        for (i, blob) in blobs.enumerated() {
            let hash = blob.hash
            let refs = counted[hash.hex] ?? 0
            if refs != blob.refcount {
                report.problems.append(Problem(kind: "refcount_mismatch", blob: hash.hex,
                                               detail: "refcount is \(blob.refcount) but \(refs) rows refer to it"))
            }
            if refs > 0 || blob.refcount > 0 {
                let read = options.readData >= 1 || (options.readData > 0 && Double.random(in: 0..<1) < options.readData)
                if read { report.blobsRead += 1; report.bytesRead += blob.size }
                var problem: Problem?
                let health = store.blobs.check(hash, expectedSize: blob.size, readData: read, recorded: blob.blocks.flatMap(BlockSums.init(encoded:))) {
                    progress(Progress(blobs: i, totalBlobs: blobs.count, bytes: bytesDone + $0, totalBytes: totalBytes))
                }
                switch health {
                case .ok: break
                case .wrongBlockSums(let right):
                    var p = Problem(kind: "bad_block_sums", blob: hash.hex, detail: "the content is right but its recorded block checksums are not (reads would fail)")
                    if options.fix {
                        try store.catalog.replaceBlockSums(right, of: hash)
                        p.fixed = "recorded the right checksums"
                    }
                    report.problems.append(p)
                case .missing:
                    if let reason = store.blobs.quarantineReason(hash) {
                        problem = Problem(kind: "quarantined_blob", blob: hash.hex, detail: "in quarantine/: \(reason)")
                    } else {
                        problem = Problem(kind: "missing_blob", blob: hash.hex, detail: "referenced blob is not in objects/ or packs/")
                    }
                case .wrongSize(let actual):
                    problem = Problem(kind: "corrupt_blob", blob: hash.hex, detail: "size is \(actual), catalog says \(blob.size)")
                case .wrongHash(let actual):
                    problem = Problem(kind: "corrupt_blob", blob: hash.hex, detail: "content hashes to \(actual.hex)")
                }
                if let problem {
                    damaged.append((hash, report.problems.count))
                    report.problems.append(problem)
                }
            }
            report.blobsChecked += 1
            bytesDone += blob.size
            progress(Progress(blobs: i + 1, totalBlobs: blobs.count, bytes: bytesDone, totalBytes: totalBytes))
        }
        for (hash, n) in counted where !known.contains(hash) {
            report.problems.append(Problem(kind: "unknown_blob", blob: hash, detail: "\(n) rows refer to a blob the catalog does not list"))
        }
        for (kind, rows) in try store.catalog.danglingRows() where rows > 0 {
            report.problems.append(Problem(kind: kind.rawValue, blob: nil, detail: kind.detail(rows)))
        }
        let mounted = store.isMounted
        for run in try store.catalog.staleRuns() where !mounted {
            let project = try store.catalog.project(id: run.projectId)?.name ?? "\(run.projectId)"
            var p = Problem(kind: "stale_run", blob: nil, detail: "projects/\(project)/runs/\(run.name): in progress with no stage left to run")
            if options.fix {
                try store.catalog.closeRun(run.id!, reason: "closed by verify --fix: left in progress with no stage to run")
                p.fixed = "closed as failed"
            }
            report.problems.append(p)
        }
        if !mounted {
            for (path, ino) in try store.catalog.sealCleanup() {
                guard let st = try? Syscalls.lstat(path), UInt64(st.st_ino) == ino else { continue }
                var p = Problem(kind: "staged_leftover", blob: nil, detail: "\(path): sealed, but still in incoming/ (the next mount removes it)")
                if options.fix, (try? Syscalls.unlink(path)) != nil { p.fixed = "removed" }
                report.problems.append(p)
            }
            if options.fix { try? store.catalog.clearSealCleanup(projectId: nil) }
        }
        let referenced = Set(counted.keys)
        var orphans = try store.blobs.allHashes().filter { !referenced.contains($0.hex) }

        if !damaged.isEmpty {
            let uses = try store.catalog.uses(of: damaged.map(\.0))
            for (hash, index) in damaged { report.problems[index].uses = uses[hash] ?? [] }
            if options.fix { try repair(damaged, in: &report, orphans: &orphans) }
        }
        report.orphans = orphans.map(\.hex).sorted()
        report.problems.sort { ($0.kind, $0.blob ?? "", $0.detail) < ($1.kind, $1.blob ?? "", $1.detail) }
        return report
    }

    /// Quarantines damaged blobs and puts missing ones back from a good copy: an unreferenced
    /// file in `objects/` or a quarantined one whose content hashes to the missing name.
    /// Holds the store's `BlobHoldLock` exclusively meanwhile, as gc does.
    private func repair(_ damaged: [(BlobHash, Int)], in report: inout Report, orphans: inout [BlobHash]) throws {
        try store.blobs.holdLock.exclusively {
            for (hash, index) in damaged where report.problems[index].kind == "corrupt_blob" {
                try store.blobs.quarantine(hash, reason: "verify: \(report.problems[index].detail)")
                report.problems[index].fixed = "moved to quarantine/"
                logger.warning("quarantined blob \(hash.hex): \(report.problems[index].detail)")
            }
            let wanted = Dictionary(damaged.filter { report.problems[$0.1].kind != "corrupt_blob" }.map { ($0.0, $0.1) },
                                    uniquingKeysWith: { a, _ in a })
            guard !wanted.isEmpty else { return }
            var candidates = orphans.map { store.blobs.path(of: $0) }.filter(Syscalls.exists)
            candidates += ((try? Syscalls.listDirectory(store.blobs.quarantineDir)) ?? []).map { store.blobs.quarantineDir + "/" + $0.name.description }
            for path in candidates {
                guard let (actual, _) = try? BlobStore.hash(fileAt: PathBytes(path)), let index = wanted[actual],
                      report.problems[index].fixed == nil else { continue }
                try store.blobs.restore(actual, from: path)
                report.problems[index].fixed = "put back from \(path)"
                orphans.removeAll { store.blobs.path(of: $0) == path }
            }
        }
    }
}
