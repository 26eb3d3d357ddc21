import Foundation
import Synchronization

/// One thread that SHA-256s what was written to staged files, reading it back from the page
/// cache behind the writer, in the order each file's writes were recorded, so that a FUSE
/// WRITE is answered as soon as its bytes are in the staging file.
///
/// Why: with hashing on the request's own thread, every 1 MiB write waited for the copy into
/// the staging file and then for SHA-256 of it (together 85 % of the daemon's CPU on a large
/// `cp`, issue 11). A queued write is a range of its file (a descriptor, an offset, a length),
/// not a copy of its bytes: the request thread does no more than before the write, and the
/// hashing thread's read comes from the page cache the write just filled. A range overwritten
/// before its turn is also a write out of order, which spoils the hash (the seal then reads
/// the file again), so what is read is never hashed under the wrong offset.
///
/// Writes smaller than `inlineLimit` bytes to a file with nothing queued are still hashed at
/// once from the request's buffer: the handoff would cost more than the hash. At most `lag`
/// bytes (256 MiB) wait to be hashed, so that they are still in the page cache when read; a
/// writer that would pass it waits until the thread catches up.
///
/// The queue is an `NSCondition`-guarded FIFO, because "this file's writes are hashed" needs
/// a condition variable, which `Synchronization.Mutex` does not offer: hence @unchecked
/// Sendable, with every stored var guarded by `condition`.
final class BackgroundHasher: @unchecked Sendable {
    /// The one hasher of the process (the staged files of every mount share the thread).
    static let shared = BackgroundHasher()

    /// Writes below this many bytes are hashed on the caller's thread when nothing of their
    /// file is queued.
    static let inlineLimit = 64 << 10
    /// Most bytes queued and not yet hashed.
    let lag = 256 << 20
    /// Bytes read back per step.
    let chunk = 1 << 20

    private struct Job {
        let file: StagedFileWrites
        /// The file's own descriptor for reading back (`State.readFD`), not the writer's: a
        /// writer's may be closed, and its number reused, before the job's turn.
        let fd: Int32
        let offset: Int64
        let length: Int
        let generation: UInt64
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var queuedBytes = 0
    /// Jobs queued and jobs finished since the start: `waitForQueuedWork` waits for the one
    /// to reach the other.
    private var queued: UInt64 = 0
    private var finished: UInt64 = 0

    private init() {
        let thread = Thread { [unowned self] in self.work() }
        thread.name = "artifactfs-hasher"
        thread.start()
    }

    /// Queues the `length` bytes written at `offset` of `file` through `fd` (open for reading),
    /// after every write of it queued before. The job reads through a duplicate of `fd` that
    /// the file keeps while it has writes queued.
    func enqueue(_ file: StagedFileWrites, fd: Int32, at offset: Int64, length: Int) {
        condition.lock()
        defer { condition.unlock() }
        while queuedBytes > 0 && queuedBytes + length > lag { condition.wait() }
        // The generation is read with the job's place in the queue fixed: a restart of the
        // file's hash after this point drops the job, and one before it is seen.
        let taken = file.state.withLock { state -> (fd: Int32, generation: UInt64)? in
            // Close-on-exec like every descriptor of the daemon: a stage command must not inherit it.
            if state.readFD < 0 { state.readFD = fcntl(fd, F_DUPFD_CLOEXEC, 0) }
            guard state.readFD >= 0 else { state.hasher.spoil(); return nil }
            state.pendingJobs += 1
            return (state.readFD, state.generation)
        }
        guard let taken else { return }
        jobs.append(Job(file: file, fd: taken.fd, offset: offset, length: length, generation: taken.generation))
        queuedBytes += length
        queued += 1
        condition.broadcast()
    }

    /// Returns once every write queued before the call is hashed, and the hash of every file
    /// whose last writer has closed is handed to its `State.whenHashed`.
    func waitForQueuedWork() {
        condition.lock()
        let target = queued
        while finished < target { condition.wait() }
        condition.unlock()
    }

    private func work() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
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

            hash(job, buffer)

            condition.lock()
            job.file.state.withLock { state in
                state.pendingJobs -= 1
                guard state.pendingJobs == 0 else { return }
                // The hash first, while the descriptor still pins the inode number (a new file
                // cannot take it and be forgotten before this stale hash arrives).
                if let leave = state.whenHashed {
                    leave(state.hasher)
                    state.whenHashed = nil
                    state.hasher = StreamingHasher()  // handed over: let go of its context
                }
                close(state.readFD)
                state.readFD = -1
            }
            queuedBytes -= job.length
            finished += 1
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Reads the job's range back and feeds it to its file's hash, unless the hash was
    /// restarted since the job was queued; a short or failed read spoils the hash. The file's
    /// lock is held only to take and put back the hash, never while hashing: the writer's next
    /// `enqueue` takes the same lock.
    private func hash(_ job: Job, _ buffer: UnsafeMutableRawBufferPointer) {
        guard var hasher = job.file.state.withLock({ $0.generation == job.generation ? $0.hasher : nil }) else { return }
        var done = 0
        while done < job.length && !hasher.spoiled {
            let want = min(chunk, job.length - done)
            let n = pread(job.fd, buffer.baseAddress, want, off_t(job.offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n == want else { hasher.spoil(); break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: job.offset + Int64(done))
            done += n
        }
        job.file.state.withLock { state in
            // Nothing else feeds this hash while one of its writes is queued: in between, it
            // can only have been restarted (a new generation) or spoiled, and both stay.
            guard state.generation == job.generation, !state.hasher.spoiled else { return }
            state.hasher = hasher
        }
    }
}
