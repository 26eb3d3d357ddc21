import Foundation
import Synchronization

/// One staged file while the mount writes it: its open writers and the SHA-256 of the bytes
/// written so far, in order (spoiled by anything else), so that a seal need not read the file
/// again. Made by the FUSE adapter for each staged file it knows; its changes go through
/// `IncomingChanges`, and its byte writes through `record`.
public final class StagedFileWrites: Sendable {
    public let projectId: ProjectID
    /// The file's inode number on the backing filesystem (the key of the seal's hash cache).
    public let ino: UInt64
    let state = Mutex(State())

    struct State {
        var hasher = StreamingHasher()
        var writers = 0
        /// Writes queued on the `BackgroundHasher` and not yet hashed.
        var pendingJobs = 0
        /// The descriptor those writes are read back through (-1: none), closed by the
        /// hashing thread after the last.
        var readFD: Int32 = -1
        /// Set when the last writer closes with writes still queued: what to do with the
        /// finished hash, run by the hashing thread after the last of them.
        var whenHashed: (@Sendable (StreamingHasher) -> Void)?
        /// Moves on at every new `hasher`: queued writes of an older one are dropped.
        var generation: UInt64 = 0

        /// Starts the hash again from byte 0; `spoiled`: the seal reads the file again.
        mutating func restart(spoiled: Bool) {
            hasher = StreamingHasher()
            if spoiled { hasher.spoil() }
            generation &+= 1
            whenHashed = nil
        }
    }

    public init(projectId: ProjectID, ino: UInt64) { self.projectId = projectId; self.ino = ino }

    /// The hash's generation now: taken before a write (`record(…, since:)`), so that a
    /// truncation between the write and its record spoils the hash rather than feeding it
    /// bytes the file no longer holds.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// `bytes` were written at `offset` (bytes) through `fd` (open for reading too), by a write
    /// that began at hash `generation`: hashed if they continue what came before. Small writes
    /// are hashed here; others are read back and hashed on the `BackgroundHasher`'s thread, in
    /// the order recorded, so the caller can answer the write at once.
    public func record(_ bytes: UnsafeRawBufferPointer, at offset: Int64, through fd: Int32, since generation: UInt64) {
        let outcome = state.withLock { state -> Bool? in
            guard state.generation == generation else { state.hasher.spoil(); return true }
            guard bytes.count < BackgroundHasher.inlineLimit, state.pendingJobs == 0 else { return nil }
            state.hasher.update(bytes, at: offset)
            return true
        }
        if outcome == nil { BackgroundHasher.shared.enqueue(self, fd: fd, at: offset, length: bytes.count) }
    }

    /// Bytes changed in a way the streaming hash cannot follow (a failed write, fallocate,
    /// a hole): the seal reads the file again.
    public func spoil() { state.withLock { $0.hasher.spoil() } }


    /// Runs `body` when no writer has the file open (a seal took it: its name goes), with the
    /// lock held; returns whether it ran.
    @discardableResult
    public func ifNoWriters(_ body: () -> Void) -> Bool {
        state.withLock { state in
            guard state.writers == 0 else { return false }
            body()
            return true
        }
    }
}

/// The change protocol of every project's incoming/, as `Worktrees` is for branches: every
/// change runs under the project's lock and moves its quiet period; open writers hold off
/// the seal; the first writer marks a file on disk as being written (`StagingMark`) and the
/// last leaves its streaming hash for the seal. The FUSE adapter calls it and keeps nothing
/// of this itself.
public final class IncomingChanges: Sendable {
    let seals: SealCoordinator

    public init(seals: SealCoordinator) { self.seals = seals }

    /// A change in progress, under the project's lock (see `changing`).
    public struct Change {
        let seals: SealCoordinator
        /// Writers begun; `changing` counts them in the project's state before it lets go of
        /// the lock.
        var writersBegun = 0

        /// A writer opened `file` as `fd`; `truncated`: it starts empty (a create or O_TRUNC),
        /// so its bytes can be hashed as they come; `created`: this open made it (no mark of an
        /// interrupted copy can be on it). Counts one open writer until `endWriting`.
        public mutating func beginWriting(_ file: StagedFileWrites, fd: Int32, truncated: Bool, created: Bool = false) {
            writersBegun += 1
            seals.hashes.forget(ino: file.ino)
            file.state.withLock { writes in
                if writes.writers == 0 {
                    writes.restart(spoiled: !truncated)
                    StagingMark.beginWriting(fd: fd, created: created)
                }
                writes.writers += 1
            }
        }
    }

    /// Runs one change to project `projectId`'s incoming/ under its lock and records it for
    /// the quiet period (also when `body` throws: it may have changed something first).
    public func changing<T>(_ projectId: ProjectID, _ body: (inout Change) throws -> T) rethrows -> T {
        try seals.state(projectId).lock.withLock { fields in
            var change = Change(seals: seals)
            defer {
                fields.openWriters += change.writersBegun
                fields.noteChange()
            }
            return try body(&change)
        }
    }

    /// `file` was truncated to `size` bytes (by a setattr, with or without a writer): a hash
    /// left by an earlier writer no longer describes it, and the streaming one starts again
    /// (from byte 0 when `size` is 0; spoiled otherwise).
    public func truncated(_ file: StagedFileWrites, to size: Int64) {
        file.state.withLock { $0.restart(spoiled: size != 0) }
        seals.hashes.forget(ino: file.ino)
    }

    /// The writer of `beginWriting` closed `fd`. The last one removes the on-disk mark and, when
    /// the streaming hash saw every byte in order, leaves it for the seal.
    /// With writes still queued for hashing, the hash is left by the hashing thread after
    /// the last of them (a seal waits for that: `SealCoordinator.waitForHashing`).
    public func endWriting(_ file: StagedFileWrites, fd: Int32) {
        seals.state(file.projectId).lock.withLock { fields in
            fields.openWriters -= 1
            fields.noteChange()
            file.state.withLock { writes in
                writes.writers -= 1
                guard writes.writers == 0 else { return }
                StagingMark.endWriting(fd: fd)
                guard let st = try? Syscalls.fstat(fd) else { return }
                let size = Int64(st.st_size), ino = file.ino, hashes = seals.hashes
                let ticket = hashes.expect(ino: ino)
                let leave: @Sendable (StreamingHasher) -> Void = { hasher in
                    guard let hash = hasher.finalize(), hasher.length == size else { return }
                    hashes.store(ino: ino, hash: hash, size: size, blocks: hasher.blocks, ticket: ticket)
                }
                if writes.pendingJobs == 0 {
                    leave(writes.hasher)
                    writes.hasher = StreamingHasher()  // handed over: let go of its context
                } else {
                    writes.whenHashed = leave
                }
            }
        }
    }
}

/// The one clock of quiet periods: every `tick` seconds it seals the projects and commits the
/// branches that have been quiet for `quietPeriod` seconds (SPEC §2, §3).
public final class QuietPeriodScheduler: Sendable {
    let seals: SealCoordinator
    let committer: DatasetCommitter
    let quietPeriod: Double
    let tick: Double

    public init(seals: SealCoordinator, committer: DatasetCommitter, quietPeriod: Double, tick: Double = 0.05) {
        self.seals = seals; self.committer = committer; self.quietPeriod = quietPeriod; self.tick = tick
    }

    /// Starts the ticking thread; it runs for the life of the process.
    public func start() {
        let quietNs = UInt64(quietPeriod * 1e9), tickUs = useconds_t(tick * 1e6)
        let seals = seals, committer = committer
        let thread = Thread {
            while true {
                seals.sealQuietProjects(quietPeriod: quietNs)
                committer.commitQuietBranches(quietPeriod: quietNs)
                usleep(tickUs)
            }
        }
        thread.name = "artifactfs-quiet-period"
        thread.start()
    }
}
