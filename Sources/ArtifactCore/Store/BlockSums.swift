import CXXHash
import Foundation

/// The checksums of a blob's 1 MiB blocks (the last one shorter), recorded at ingest and
/// checked on every read the daemon serves from disk (SPEC §6): a flipped bit answers EIO
/// instead of bad bytes, without hashing the whole blob at each open.
///
/// XXH64 (xxHash, from Debian's libxxhash-dev): a non-cryptographic checksum at over 10 GB/s
/// per core, well kept and used for the same job by zstd and rsync; SHA-256 still names the
/// blob. A blob of one block needs none: its name is its checksum.
public struct BlockSums: Sendable, Equatable {
    /// Bytes per block (1 MiB).
    public static let blockSize = 1 << 20
    public var sums: [UInt64]

    public init(sums: [UInt64]) { self.sums = sums }

    /// As stored in `blob.blocks`: 8 little-endian bytes per block.
    public var encoded: Data {
        var data = Data(capacity: sums.count * 8)
        for s in sums { withUnsafeBytes(of: s.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// From `blob.blocks`; nil unless it is a whole number of sums.
    public init?(encoded data: Data) {
        guard data.count % 8 == 0 else { return nil }
        var sums: [UInt64] = []
        sums.reserveCapacity(data.count / 8)
        data.withUnsafeBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) { sums.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))) }
        }
        self.sums = sums
    }

    /// How many blocks a blob of `size` bytes has (0 for an empty one).
    public static func count(forSize size: Int64) -> Int { Int((size + Int64(blockSize) - 1) / Int64(blockSize)) }

    /// The checksum of one block's bytes.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        afs_xxh64(bytes.baseAddress, bytes.count)
    }

    /// Whether `bytes` are block `index` as recorded.
    public func matches(block index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        index < sums.count && Self.checksum(bytes) == sums[index]
    }

    /// The sums of bytes in memory.
    public static func of(_ bytes: [UInt8]) -> BlockSums {
        var summer = BlockSummer()
        bytes.withUnsafeBytes { summer.update($0) }
        return summer.finalize()
    }
}

/// Computes `BlockSums` of a stream of bytes in order, beside its SHA-256 (a value type: it
/// may be copied out, fed and put back, as `StreamingHasher` is).
public struct BlockSummer: @unchecked Sendable {
    private var state = afs_xxh64_state()
    private var inBlock = 0
    private var sums: [UInt64] = []

    public init() { afs_xxh64_reset(&state) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let take = min(bytes.count - offset, BlockSums.blockSize - inBlock)
            afs_xxh64_update(&state, bytes.baseAddress! + offset, take)
            inBlock += take
            offset += take
            if inBlock == BlockSums.blockSize {
                sums.append(afs_xxh64_digest(&state))
                afs_xxh64_reset(&state)
                inBlock = 0
            }
        }
    }

    public func finalize() -> BlockSums {
        var copy = self
        if copy.inBlock > 0 { copy.sums.append(afs_xxh64_digest(&copy.state)) }
        return BlockSums(sums: copy.sums)
    }
}
