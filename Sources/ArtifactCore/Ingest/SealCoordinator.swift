import Foundation
import Crypto
import Logging
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the filesystem knows about one project's incoming/ between seals.
///
/// `lock` is held by every change the FUSE adapter makes in incoming/ and by the commit step
/// of a seal, so a seal sees a still folder. Writes through an open handle do not take it:
/// no seal starts while a writer is open.
public final class IncomingState: Sendable {
    public let lock = Mutex(Fields())

    /// What `lock` guards.
    public struct Fields: Sendable {
        public var openWriters = 0
        /// Bumped by every change; a seal that sees it move gives up and waits for quiet again.
        public internal(set) var generation: UInt64 = 0
        var lastChange: UInt64 = 0
        var pending = false
        var retryAfter: UInt64 = 0

        /// After changing incoming/.
        public mutating func noteChange() {
            generation &+= 1
            lastChange = monotonicNanoseconds()
            pending = true
        }
    }
}

/// Turns a project's incoming/ into one run, atomically, once it has been quiet.
///
/// Order of work: hash (outside the lock, reusing hashes computed during writes), then with
/// the lock held: fsync the staged data, hard-link it into the blob store, fsync the blob
/// folders, register the run in one transaction that also records which staged files to
/// remove, remove them, and forget that record. A crash at any point leaves either the staged
/// files (sealed again at the next mount) or a registered run whose leftovers are removed at
/// the next start; never both, never neither.
public final class SealCoordinator: Sendable {
    public let catalog: Catalog
    public let blobs: BlobStore
    public let staging: StagingArea
    public let hashes = StagedHashCache()
    let registrar: RunRegistrar
    let logger: Logger
    public var sink: RunSealedSink? {
        get { listeners.withLock { $0.sink } }
        set { listeners.withLock { $0.sink = newValue } }
    }
    /// Called after a seal registered `run` and removed its staged files, with their inode
    /// numbers, before the seal returns (the FUSE adapter drops what it held of them, and the
    /// kernel's cached latest/ entries that now stand for older versions).
    public var onSealed: (@Sendable (_ projectId: ProjectID, _ inodes: Set<UInt64>, _ run: RunRecord) -> Void)? {
        get { listeners.withLock { $0.onSealed } }
        set { listeners.withLock { $0.onSealed = newValue } }
    }

    private struct Listeners {
        weak var sink: RunSealedSink?
        var onSealed: (@Sendable (_ projectId: ProjectID, _ inodes: Set<UInt64>, _ run: RunRecord) -> Void)?
    }
    private let listeners = Mutex(Listeners())
    private let states = Mutex<[ProjectID: IncomingState]>([:])

    public enum Outcome: Sendable {
        case sealed(RunRecord)
        case empty
        /// Something changed or a writer is open; try again after the quiet period.
        case busy
    }

    public init(catalog: Catalog, blobs: BlobStore, staging: StagingArea, logger: Logger = Logger(label: "artifactfs.seal")) {
        self.catalog = catalog
        self.blobs = blobs
        self.staging = staging
        self.registrar = RunRegistrar(catalog: catalog)
        self.logger = logger
    }

    public func state(_ projectId: ProjectID) -> IncomingState {
        states.withLock { states in
            if let s = states[projectId] { return s }
            let s = IncomingState()
            states[projectId] = s
            return s
        }
    }

    /// Finishes what a crash interrupted: removes staged files whose run committed, then marks
    /// every project with staged files as pending so they seal after the quiet period.
    public func recover() throws {
        let leftovers = try catalog.sealCleanup()
        for (path, ino) in leftovers {
            if let st = try? Syscalls.lstat(path), UInt64(st.st_ino) == ino {
                try? Syscalls.unlink(path)
            }
        }
        if !leftovers.isEmpty {
            try? catalog.clearSealCleanup(projectId: nil)
        }
        for project in try catalog.projects() {
            let scan = try staging.scan(projectId: project.id!, recovering: true)
            let s = state(project.id!)
            if scan.files.contains(where: { !$0.interrupted }) || !scan.directories.isEmpty {
                s.lock.withLock { $0.noteChange() }
            }
        }
    }

    /// Seals every project whose incoming/ has been quiet for `quietPeriod` with no writer open.
    public func sealQuietProjects(quietPeriod: UInt64) {
        let now = monotonicNanoseconds()
        let ready: [ProjectID] = states.withLock { states in
            states.compactMap { id, s in
                s.lock.withLock { s in
                    s.pending && s.openWriters == 0 && now >= s.lastChange + quietPeriod && now >= s.retryAfter ? id : nil
                }
            }
        }
        for id in ready.sorted() {
            do {
                _ = try seal(projectId: id)
            } catch {
                let s = state(id)
                // Keep the files staged and try again later (disk full, say) without spinning.
                s.lock.withLock { $0.retryAfter = monotonicNanoseconds() + max(quietPeriod, 1_000_000_000) * 5 }
                logger.error("seal of project \(id) failed: \(error)")
            }
        }
    }

    /// Returns once every staged write recorded so far is hashed and the hash of each file no
    /// longer open for writing is in `hashes` (see `BackgroundHasher`; at most its lag, 256 MiB
    /// of hashing).
    public func waitForHashing() { BackgroundHasher.shared.waitForQueuedWork() }

    /// Seals incoming/ of one project now, without waiting for the quiet period; never while a
    /// writer is open (then `.busy`). Files a crash interrupted (`StagingMark`) stay staged
    /// unless `includingInterrupted` (an explicit `artifactfs seal`).
    @discardableResult
    public func seal(projectId: ProjectID, includingInterrupted: Bool = false) throws -> Outcome {
        var removed = Set<UInt64>()
        let outcome = try sealLocked(projectId: projectId, includingInterrupted: includingInterrupted, removed: &removed)
        // Outside the incoming/ lock: whatever listens must not hold up writers.
        if case .sealed(let run) = outcome {
            onSealed?(projectId, removed, run)
            sink?.runSealed(run)
        }
        return outcome
    }

    private func sealLocked(projectId: ProjectID, includingInterrupted: Bool, removed: inout Set<UInt64>) throws -> Outcome {
        let state = state(projectId)
        let generation0 = state.lock.withLock { $0.generation }
        var scan = try staging.scan(projectId: projectId)
        // Kept back: interrupted copies (unless sealed on purpose), the `.artifactfsignore` file
        // itself and what it names; they stay in incoming/.
        let ignore = staging.ignoreRules(projectId: projectId)
        let held = scan.files.filter {
            ($0.interrupted && !includingInterrupted) || $0.relativePath == IgnoreRules.fileName
                || ignore.ignores($0.relativePath.bytes, isDirectory: false)
        }
        scan.files.removeAll { file in held.contains { $0.ino == file.ino && $0.relativePath == file.relativePath } }
        scan.directories.removeAll { ignore.ignores($0.relativePath.bytes, isDirectory: true) }
        // Folders are part of the tree (an empty one too), except those that only hold files
        // kept back.
        let onlyHolding = scan.directories.allSatisfy { d in held.contains { $0.relativePath.isBelow(d.relativePath) } }
        if scan.files.isEmpty && onlyHolding {
            return state.lock.withLock { fields in
                if fields.generation == generation0 {
                    staging.removeEmptyDirectories(projectId: projectId, scan.directories)
                    fields.pending = false
                }
                return .empty
            }
        }

        // Hash what was not hashed while it was written. No lock: writers may go on, and the
        // generation check below notices.
        waitForHashing()
        var entries: [StagedEntry] = []
        entries.reserveCapacity(scan.files.count)
        for file in scan.files {
            let hash: BlobHash
            var blocks: BlockSums?
            if file.kind != .regular {
                hash = BlobHash(digest: SHA256.hash(data: Self.content(of: file)))
            } else if let cached = hashes.lookup(ino: file.ino, size: file.size) {
                (hash, blocks) = cached
            } else {
                let d = try BlobStore.digest(fileAt: file.fullPath)
                if d.size != file.size { return .busy }
                (hash, blocks) = (d.hash, d.blocks)
            }
            var entry = StagedEntry(path: file.relativePath, hash: hash, size: file.kind == .symlink ? Int64(file.target?.count ?? 0) : file.size,
                                    mode: file.mode, mtimeNs: file.mtimeNs, uid: file.uid, gid: file.gid)
            entry.kind = file.kind
            entry.xattrs = file.xattrs
            entry.linkKey = file.nlink > 1 ? file.ino : nil
            entry.rdev = file.rdev
            entry.atimeNs = file.atimeNs
            entry.blocks = blocks
            entries.append(entry)
        }

        return try state.lock.withLock { fields in
            guard fields.openWriters == 0, fields.generation == generation0 else { return .busy }

            // Sealed on purpose: the copy is what the user wants kept, and the blob carries no mark.
            for file in scan.files where file.interrupted { StagingMark.remove(StagingMark.interrupted, at: file.fullPath) }
            // A file with a name that stays in incoming/ (a hard link that is ignored or
            // interrupted) is stored as a copy: writes through that name must never reach a blob.
            var sealedNames: [UInt64: Int64] = [:]
            for file in scan.files where file.kind == .regular { sealedNames[file.ino, default: 0] += 1 }
            var adoptions: [BlobStore.Adoption] = []
            for (file, entry) in zip(scan.files, entries) {
                if file.kind == .regular {
                    adoptions.append(BlobStore.Adoption(path: file.fullPath, hash: entry.hash, size: entry.size,
                                                        copying: file.nlink > sealedNames[file.ino, default: 0]))
                } else {
                    // A symlink's target (or a special file's nothing) as a blob, as git keeps links.
                    adoptions.append(BlobStore.Adoption(content: Self.content(of: file)))
                }
            }
            let adopted = try blobs.adopt(adoptions, referenced: catalog.referencedBlobs)

            let uid = scan.files.first?.uid ?? 0
            let run: RunRecord
            do {
                run = try registrar.register(projectId: projectId, entries: entries, directories: scan.directories,
                                             uid: uid, completed: sink == nil,
                                             cleanup: scan.files.map { ($0.fullPath, $0.ino) })
            } catch {
                // The staged files stay in incoming/, writable: no blob may stay linked to them.
                blobs.discard(adopted, referenced: catalog.referencedBlobs)
                throw error
            }
            blobs.release(adopted)

            for file in scan.files {
                try? Syscalls.unlink(file.fullPath)
                hashes.forget(ino: file.ino)
            }
            staging.removeEmptyDirectories(projectId: projectId, scan.directories)
            try? catalog.clearSealCleanup(projectId: projectId)
            fields.noteChange()
            fields.pending = false
            logger.info("sealed run \(run.name) of project \(projectId): \(entries.count) files, \(run.bytes) bytes")
            removed = Set(scan.files.map(\.ino))
            return .sealed(run)
        }
    }

    /// The blob bytes of a symlink (its target) or a special file (none).
    static func content(of file: StagedFile) -> [UInt8] { file.kind == .symlink ? (file.target?.bytes ?? []) : [] }
}
