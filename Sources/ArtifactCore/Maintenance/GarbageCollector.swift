import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Removes what no row needs any more (SPEC §6, gc): blobs whose last reference went more than
/// a grace period ago, blob files and packed blobs that no row ever named (a process died
/// between storing them and committing), pack files nothing is packed in any more (and
/// rewrites those mostly unused), and the blob store's own temp files left by such a process.
///
/// Safe while the store is mounted and while other commands run: it deletes only with the
/// store's `BlobHoldLock` held exclusively, so no blob that a seal, commit, stage or import in
/// flight has stored or found (and holds until its rows are in) is ever taken; each candidate
/// is checked again in the catalog transaction that deletes its row. Open files keep their
/// descriptor (the daemon opens a blob once per open), and the grace period (default 1 h)
/// covers the rest. Like JuiceFS's gc, `dryRun` only reports.
public struct GarbageCollector {
    /// What one collection removed, or with `dryRun` would remove.
    public struct Report: Codable, Sendable, Equatable {
        public var dryRun = false
        /// Blobs no row refers to any more, past the grace period.
        public var blobsRemoved = 0
        public var bytesFreed: Int64 = 0
        /// Blob files and packed blobs no row ever named (part of `bytesFreed`).
        public var orphansRemoved = 0
        /// The blob store's temp files left by a process that died.
        public var tempFilesRemoved = 0
        /// Unreferenced blobs kept because their grace period has not passed yet.
        public var blobsInGrace = 0
        public var bytesInGrace: Int64 = 0
        /// Runs the projects' stored keep policies forgot first (see `KeepPolicy.store`).
        public var runsForgotten = 0
        /// Versions no branch or tag reaches any more whose deleted branch's retention passed
        /// (see `VersionRetention`).
        public var versionsRemoved = 0
        /// Pack files removed (none of their blobs indexed any more, or never indexed: a
        /// process died between writing and indexing them).
        public var packsRemoved = 0
        /// Pack files rewritten without their unreferenced blobs (more than half of them was).
        public var packsRewritten = 0
        /// Packs that were due for a rewrite but could not be read or rewritten (verify names
        /// the blobs of one that cannot be read).
        public var packsUnreadable = 0

        enum CodingKeys: String, CodingKey {
            case runsForgotten = "runs_forgotten", versionsRemoved = "versions_removed"
            case dryRun = "dry_run", blobsRemoved = "blobs_removed", bytesFreed = "bytes_freed"
            case orphansRemoved = "orphans_removed", tempFilesRemoved = "temp_files_removed"
            case blobsInGrace = "blobs_in_grace", bytesInGrace = "bytes_in_grace"
            case packsRemoved = "packs_removed", packsRewritten = "packs_rewritten", packsUnreadable = "packs_unreadable"
        }
        public init() {}
    }

    /// Blobs deleted per hold of the exclusive lock: seals wait at most for this many unlinks.
    static let batch = 1_000

    let store: ArtifactStore
    /// Seconds a blob stays after its last reference went.
    public let grace: Double
    let now: Date
    let logger = Logger(label: "artifactfs.gc")

    /// `grace` in seconds (default 1 h); `now` for tests.
    public init(store: ArtifactStore, grace: Double = 3_600, now: Date = Date()) {
        self.store = store; self.grace = grace; self.now = now
    }

    /// Collects (or with `dryRun`, counts). `progress` gets (steps done, steps to do, bytes freed
    /// so far): a step is a batch's blob or one fan-out folder scanned for leftovers.
    /// Throws `.io` when the catalog or the lock cannot be used; what was removed before stays
    /// removed, and the rest is found again by the next run.
    public func run(dryRun: Bool = false, progress: (Int, Int, Int64) -> Void = { _, _, _ in }) throws -> Report {
        var report = Report()
        report.dryRun = dryRun
        report.runsForgotten = try applyStoredPolicies(dryRun: dryRun)
        if !dryRun {
            for dataset in try store.catalog.datasets() {
                let retention = try VersionRetention.stored(for: dataset.id!, in: store.catalog)
                report.versionsRemoved += try store.catalog.expireVersions(datasetId: dataset.id!, retention: retention, now: now)
            }
        }
        let cutoff = now.timeIntervalSince1970 - grace
        // One read of the import journals for the whole pass, then only what they add.
        let journaled = JournaledBlobs()
        (report.blobsInGrace, report.bytesInGrace) = try store.catalog.blobsInGrace(releasedBefore: cutoff)

        let candidates = try store.catalog.collectableBlobs(releasedBefore: cutoff, journaled: journaled)
        let fanouts = (try? Syscalls.listDirectory(store.blobs.root).filter { $0.name.count == 2 }) ?? []
        let total = candidates.count + fanouts.count
        var done = 0
        for start in stride(from: 0, to: candidates.count, by: Self.batch) {
            let chunk = Array(candidates[start..<min(start + Self.batch, candidates.count)])
            if dryRun {
                report.blobsRemoved += chunk.count
                report.bytesFreed += chunk.reduce(0) { $0 + $1.size }
            } else {
                try store.blobs.holdLock.exclusively {
                    let deleted = try store.catalog.deleteCollectable(chunk.map(\.hash), releasedBefore: cutoff, journaled: journaled)
                    for blob in deleted {
                        try? Syscalls.unlink(store.blobs.path(of: blob.hash))
                        report.blobsRemoved += 1
                        report.bytesFreed += blob.size
                    }
                }
            }
            done += chunk.count
            progress(done, total, report.bytesFreed)
        }

        // Files no row names, one fan-out folder at a time (bounded memory at any store size),
        // and temp files an adopter that stopped left beside its blobs.
        var tempFiles = store.blobs.tempFilesInTmp()
        for fanout in fanouts {
            let folder = store.blobs.root + "/" + fanout.name.description
            var sizes: [BlobHash: Int64] = [:]
            for entry in (try? Syscalls.listDirectory(folder)) ?? [] {
                if entry.name.description.hasPrefix(BlobStore.fanoutTempPrefix) {
                    tempFiles.append(folder + "/" + entry.name.description)
                    continue
                }
                guard let hash = BlobHash(hex: fanout.name.description + entry.name.description),
                      let st = try? Syscalls.lstat(folder + "/" + entry.name.description) else { continue }
                sizes[hash] = Int64(st.st_size)
            }
            let unnamed = try store.catalog.unnamedBlobs(Array(sizes.keys), journaled: journaled)
            if !unnamed.isEmpty {
                if dryRun {
                    report.orphansRemoved += unnamed.count
                    report.bytesFreed += unnamed.reduce(0) { $0 + sizes[$1]! }
                } else {
                    try store.blobs.holdLock.exclusively {
                        // Nobody holds a blob now: what is still unnamed can only be a leftover.
                        for hash in try store.catalog.unnamedBlobs(unnamed, journaled: journaled) {
                            try? Syscalls.unlink(store.blobs.path(of: hash))
                            report.orphansRemoved += 1
                            report.bytesFreed += sizes[hash]!
                        }
                    }
                }
            }
            done += 1
            progress(done, total, report.bytesFreed)
        }
        try collectPacks(dryRun: dryRun, collected: dryRun ? candidates : [], journaled: journaled, report: &report)
        tempFiles += store.blobs.packFilesOnDisk().temps
        report.tempFilesRemoved = try removeTempLeftovers(tempFiles, dryRun: dryRun)
        if !dryRun {
            logger.debug("gc removed \(report.blobsRemoved) blobs and \(report.orphansRemoved) orphans, \(report.bytesFreed) bytes")
        }
        return report
    }

    /// Packed blobs no row names (orphans, as loose files no row names), pack files no index
    /// row points into, and packs more than half unused, rewritten without what is unused: all
    /// with the hold lock exclusive, so no adopter in flight has a pack written but not yet
    /// indexed, or a packed blob found but not yet named by its rows. A reader that looked up
    /// a pack just removed looks it up again (`BlobStore.packedContent`); one that opened it
    /// keeps reading the old file.
    ///
    /// `collected`: with `dryRun`, the blobs this run would have removed before (so that packs
    /// are counted as they would be left).
    private func collectPacks(dryRun: Bool, collected: [BlobRecord], journaled: JournaledBlobs, report: inout Report) throws {
        let unnamed = try store.catalog.unnamedPackedBlobs(journaled: journaled)
        if dryRun {
            report.orphansRemoved += unnamed.count
            report.bytesFreed += unnamed.reduce(0) { $0 + $1.length }
        } else if !unnamed.isEmpty {
            try store.blobs.holdLock.exclusively {
                let gone = try store.catalog.unnamedPackedBlobs(remove: true, journaled: journaled)
                report.orphansRemoved += gone.count
                report.bytesFreed += gone.reduce(0) { $0 + $1.length }
            }
        }
        var indexed = try store.catalog.packs()
        if dryRun {
            // As they would be: without the blobs this run would have removed (each looked up
            // by its name, not a pass over the index per pack).
            let gone = Array(Set(unnamed.map(\.hash)).union(collected.map(\.hash)))
            let position = Dictionary(uniqueKeysWithValues: indexed.enumerated().map { ($1.name, $0) })
            for (_, loc) in try store.catalog.packedLocations(gone) {
                guard let i = position[loc.pack] else { continue }
                indexed[i].blobs -= 1
                indexed[i].liveBytes -= loc.length
            }
        }
        let names = Set(indexed.map(\.name))
        for name in store.blobs.packFilesOnDisk().packs where !names.contains(name) {
            if dryRun { report.packsRemoved += 1; continue }
            try store.blobs.holdLock.exclusively {
                guard try !store.catalog.hasPack(name) else { return }
                if (try? Syscalls.unlink(store.blobs.packPath(name))) != nil { report.packsRemoved += 1 }
            }
        }
        for pack in indexed where !pack.journaled {
            // What the live blobs would take in a pack of their own (with their trailer entries).
            let live = pack.liveBytes + Int64(pack.blobs) * 48 + 16
            guard pack.blobs == 0 || live * 2 < pack.size else { continue }
            if dryRun {
                if pack.blobs == 0 { report.packsRemoved += 1 } else { report.packsRewritten += 1 }
                continue
            }
            try store.blobs.holdLock.exclusively {
                let entries = try store.catalog.packEntries(pack.name)
                var rewrote = false, forgotten = false
                if !entries.isEmpty {
                    let rewrite: (pack: BlobStore.PackTemp?, damaged: [PackFile.Entry])
                    do { rewrite = try store.blobs.rewritePack(pack.name, entries: entries) } catch let e as ArtifactError where e.code != .noSpace {
                        // A pack that cannot be read stays as it is (verify names its blobs);
                        // the rest of the collection goes on.
                        logger.warning("\(e)")
                        report.packsUnreadable += 1
                        return
                    }
                    let (rewritten, damaged) = rewrite
                    for e in damaged {
                        // Checked on the way, like a read: damage goes to quarantine, never into a new pack.
                        try? store.blobs.quarantine(e.hash, reason: "gc: content does not hash to its name",
                                                    packedAt: PackedLocation(pack: pack.name, offset: e.offset, length: e.length))
                        logger.warning("quarantined blob \(e.hash.hex) found damaged in pack \(pack.name)")
                    }
                    if let rewritten {
                        do {
                            forgotten = try store.catalog.movePacked(from: pack.name, to: rewritten.name, size: rewritten.size, entries: rewritten.entries)
                        } catch {
                            try? Syscalls.unlink(rewritten.path)
                            throw error
                        }
                        report.packsRewritten += 1
                        rewrote = true
                    }
                }
                if !forgotten { forgotten = try store.catalog.forgetPackIfEmpty(pack.name) }
                if forgotten {
                    try? Syscalls.unlink(store.blobs.packPath(pack.name))
                    if !rewrote { report.packsRemoved += 1 }
                }
            }
        }
    }

    /// Forgets what each project's stored keep policy does not keep, and tells the mounts.
    private func applyStoredPolicies(dryRun: Bool) throws -> Int {
        var forgotten = 0
        for (id, json) in try store.catalog.retentionPolicies(.project) {
            guard let project = try store.catalog.project(id: ProjectID(id)) else { continue }
            let policy = try JSONDecoder().decode(KeepPolicy.self, from: json)
            let (report, gone) = try RunRetention(store: store).forget(project: project, policy: policy, dryRun: dryRun, now: now)
            forgotten += report.forgotten.count
            if let gone {
                // The runs are gone either way; a mount that did not hear it shows them until its
                // cached entries time out (an hour at most): no reason to stop collecting.
                do { try MountControl.announce(gone, storeRoot: store.root) } catch { logger.warning("\(error)") }
            }
        }
        return forgotten
    }

    /// Removes `paths`, the blob store's temp files listed before (`BlobStore.tempFiles`, pack
    /// temps), under the hold lock taken exclusively: only a process holding blobs writes them,
    /// so one still there then is a leftover (one that an adopter in flight renamed or removed
    /// meanwhile is simply gone, and temp names hold the hash, pid and a counter, or for a pack
    /// 128 random bits: never made twice).
    private func removeTempLeftovers(_ paths: [String], dryRun: Bool) throws -> Int {
        if dryRun || paths.isEmpty { return paths.count }
        return try store.blobs.holdLock.exclusively {
            var n = 0
            for path in paths where (try? Syscalls.unlink(path)) != nil { n += 1 }
            return n
        }
    }
}
