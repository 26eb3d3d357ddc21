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

    public init(hash: BlobHash, size: Int64, sums: BlockSums?) {
        self.hash = hash; self.size = size; self.sums = sums
        verified = Mutex(Array(repeating: 0, count: (BlockSums.count(forSize: size) + 63) / 64))
    }

    private func isVerified(_ block: Int) -> Bool { verified.withLock { $0[block / 64] & (1 << UInt64(block % 64)) != 0 } }
    private func markVerified(_ block: Int) { verified.withLock { $0[block / 64] |= 1 << UInt64(block % 64) } }

    /// Checks every block that `[offset, offset + length)` touches and this open has not
    /// checked, reading each whole from `fd`. Returns the first block that does not match
    /// (nil: all good). Throws the read's errno.
    public func firstBadBlock(fd: Int32, offset: Int64, length: Int) throws -> Int? {
        guard length > 0, offset < size else { return nil }
        let blockSize = Int64(BlockSums.blockSize)
        let first = Int(offset / blockSize), last = Int((min(offset + Int64(length), size) - 1) / blockSize)
        for block in first...last where !isVerified(block) {
            let start = Int64(block) * blockSize
            let count = Int(min(blockSize, size - start))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
            defer { buffer.deallocate() }
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
