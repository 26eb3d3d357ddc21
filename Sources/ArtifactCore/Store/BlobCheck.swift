import Foundation
import Crypto
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What an open blob is checked against (SPEC §6, reads are checked end to end): its block
/// checksums, or for a blob of one block its name, and which blocks this open file has
/// checked already. Each block is read and checked once per open, before the first reply
/// that holds any of its bytes; replies still come straight from the descriptor (splice),
/// from the page cache that check filled. Pages the kernel keeps (`keep_cache`) are served
/// without a request at all, so they cost nothing.
public final class BlobCheck: Sendable {
    public let hash: BlobHash
    /// Bytes.
    public let size: Int64
    /// nil: one block, checked by SHA-256 against the blob's name.
    public let sums: BlockSums?
    private let verified: Mutex<[UInt64]>
    /// One held while a block is read and checked (block i takes lock i mod 8): the kernel's
    /// readahead sends several READs of one block at once, and each would otherwise read and
    /// check the whole block again; READs of other blocks go on beside it.
    private let checking = (0..<8).map { _ in NSLock() }

    public init(hash: BlobHash, size: Int64, sums: BlockSums?) {
        self.hash = hash; self.size = size; self.sums = sums
        verified = Mutex(Array(repeating: 0, count: (BlockSums.count(forSize: size) + 63) / 64))
    }

    private func isVerified(_ block: Int) -> Bool { verified.withLock { $0[block / 64] & (1 << UInt64(block % 64)) != 0 } }
    private func markVerified(_ block: Int) { verified.withLock { $0[block / 64] |= 1 << UInt64(block % 64) } }

    /// Checks every block that `[offset, offset + length)` touches and this open has not
    /// checked, reading each whole from `fd`. Returns the first block that does not match
    /// (nil: all good). Throws the read's errno.
    ///
    /// When the reads go in order (the block before was checked), the next `checkAhead`
    /// blocks are checked on another thread meanwhile (with `keepOpen`, which owns `fd`, held
    /// until then), so a sequential read finds them checked instead of waiting for each one
    /// (cold reads: 1.9x native without, measured in Benchmarks/run.sh (b)). A block found
    /// bad there is left unchecked: the read that reaches it finds it again and answers.
    public func firstBadBlock(fd: Int32, offset: Int64, length: Int, keepOpen: (any AnyObject & Sendable)? = nil) throws -> Int? {
        guard length > 0, offset < size else { return nil }
        let blockSize = Int64(BlockSums.blockSize)
        let first = Int(offset / blockSize), last = Int((min(offset + Int64(length), size) - 1) / blockSize)
        for block in first...last where !isVerified(block) {
            if let bad = try checkOnce(block, fd: fd) { return bad }
        }
        let count = BlockSums.count(forSize: size)
        if let keepOpen, first == 0 || isVerified(first - 1) {
            for ahead in (last + 1)..<min(count, last + 1 + Self.checkAhead) where !isVerified(ahead) {
                Self.ahead.async { [self] in
                    withExtendedLifetime(keepOpen) { _ = try? self.checkOnce(ahead, fd: fd) }
                }
            }
        }
        return nil
    }

    /// Blocks checked ahead of a sequential read.
    static let checkAhead = 2
    /// Where blocks are checked ahead (one thread at a time: the other core serves the reads).
    static let ahead = DispatchQueue(label: "artifactfs-check-ahead")

    /// Checks `block` unless it is checked already (or being checked: then waits for that).
    private func checkOnce(_ block: Int, fd: Int32) throws -> Int? {
        let lock = checking[block % checking.count]
        lock.lock()
        defer { lock.unlock() }
        return isVerified(block) ? nil : try check(block, fd: fd)
    }

    /// Reads block `block` whole and checks it; returns it when it does not match.
    private func check(_ block: Int, fd: Int32) throws -> Int? {
        let blockSize = Int64(BlockSums.blockSize)
        do {
            let start = Int64(block) * blockSize
            let count = Int(min(blockSize, size - start))
            // No posix_fadvise(WILLNEED) of the next blocks: it cost 0.25 ms per call and made
            // cold reads 3x slower; sequential preads on the descriptor get the disk's own
            // readahead, as the splices after them do.
            let whole = Self.buffers.take()
            defer { Self.buffers.give(whole) }
            let buffer = UnsafeMutableRawBufferPointer(rebasing: whole[0..<count])
            var done = 0
            while done < count {
                let n = try Syscalls.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), offset: start + Int64(done))
                if n == 0 { return block }  // shorter than catalogued
                done += n
            }
            let bytes = UnsafeRawBufferPointer(buffer)
            let good = sums.map { $0.matches(block: block, bytes) } ?? (BlobHash(digest: SHA256.hash(data: bytes)) == hash)
            guard good else { return block }
            markVerified(block)
        }
        return nil
    }
}

extension BlobCheck {
    /// Block buffers reused across checks: a fresh 1 MiB allocation is a fresh mapping, and
    /// faulting its 256 pages in cost more than reading and checking the block (cold reads
    /// took 3x native with one per check). At most `kept` stay, as many as reads run at once.
    final class BufferPool: @unchecked Sendable {
        private var free: [UnsafeMutableRawBufferPointer] = []
        private let lock = Mutex(())
        static let kept = 16

        func take() -> UnsafeMutableRawBufferPointer {
            lock.withLock { _ in free.popLast() } ?? .allocate(byteCount: BlockSums.blockSize, alignment: 4096)
        }

        func give(_ buffer: UnsafeMutableRawBufferPointer) {
            let keep = lock.withLock { _ -> Bool in
                guard free.count < Self.kept else { return false }
                free.append(buffer)
                return true
            }
            if !keep { buffer.deallocate() }
        }
    }

    static let buffers = BufferPool()
}
