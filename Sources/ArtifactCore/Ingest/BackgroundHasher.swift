import Foundation
import Synchronization

/// One thread that SHA-256s the bytes written to staged files, in the order each file's
/// writes were recorded, so that a FUSE WRITE is answered once its bytes are in the staging
/// file and hashing runs on the other core while the writer sends the next bytes.
///
/// Why: with hashing on the request's own thread, every 1 MiB write waited for the copy into
/// the staging file and then for SHA-256 of it (together 85 % of the daemon's CPU on a large
/// `cp`, issue 11). Writes smaller than `inlineLimit` bytes to a file with nothing queued are
/// still hashed at once: the handoff would cost more than the hash.
///
/// Memory is bounded: at most `capacity` bytes (32 MiB) of copied writes wait; a writer that
/// would pass it waits until the thread catches up (back-pressure, as a pipe gives).
/// The job queue is an `NSCondition`-guarded FIFO, because waiting for "this file's jobs are
/// done" needs a condition variable, which `Synchronization.Mutex` does not offer.
final class BackgroundHasher: @unchecked Sendable {
    /// The one hasher of the process (staged files of every mount share the thread).
    static let shared = BackgroundHasher()

    /// Writes below this many bytes are hashed on the caller's thread when nothing of their
    /// file is queued.
    static let inlineLimit = 64 << 10
    /// Most bytes of copied writes queued at once.
    let capacity = 32 << 20

    private struct Job {
        let file: StagedFileWrites
        let bytes: [UInt8]
        let offset: Int64
        let generation: UInt64
    }

    // Guarded by `condition`: the reason for @unchecked Sendable.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var queuedBytes = 0

    private init() {
        let thread = Thread { [unowned self] in self.work() }
        thread.name = "artifactfs-hasher"
        thread.start()
    }

    /// Queues `bytes`, written at `offset` of `file`, after every write of it queued before.
    func enqueue(_ file: StagedFileWrites, _ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        let copy = [UInt8](bytes)
        condition.lock()
        while queuedBytes > 0 && queuedBytes + copy.count > capacity { condition.wait() }
        // The generation is read with the job's place in the queue fixed, so a reset of the
        // file's hash after this point drops the job and one before it is seen.
        let generation = file.state.withLock { state -> UInt64 in
            state.pendingJobs += 1
            return state.generation
        }
        jobs.append(Job(file: file, bytes: copy, offset: offset, generation: generation))
        queuedBytes += copy.count
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once every write of `file` queued so far is hashed.
    func waitUntilHashed(_ file: StagedFileWrites) {
        condition.lock()
        while file.state.withLock({ $0.pendingJobs }) > 0 { condition.wait() }
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head == jobs.count || head > 1024 {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()

            job.file.state.withLock { state in
                if state.generation == job.generation {
                    job.bytes.withUnsafeBytes { state.hasher.update($0, at: job.offset) }
                }
            }

            condition.lock()
            job.file.state.withLock { $0.pendingJobs -= 1 }
            queuedBytes -= job.bytes.count
            condition.broadcast()
            condition.unlock()
        }
    }
}
