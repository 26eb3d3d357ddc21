import Crypto

/// The SHA-256 of a blob's content as 64 lowercase hex characters: the blob's name.
public struct BlobHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let hex: String

    public init?(hex: String) {
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            return nil
        }
        self.hex = hex
    }

    public init(digest: SHA256.Digest) {
        self.init(digestBytes: digest)
    }

    /// The name of a 32-byte digest; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.init(digestBytes: bytes)
    }

    private init(digestBytes: some Sequence<UInt8>) {
        let table: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digestBytes {
            out.append(table[Int(byte >> 4)])
            out.append(table[Int(byte & 0xF)])
        }
        self.hex = String(decoding: out, as: UTF8.self)
    }

    /// The 32 bytes of the digest (what the catalog stores).
    public var bytes: [UInt8] {
        func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        var out = [UInt8]()
        out.reserveCapacity(32)
        var it = hex.utf8.makeIterator()
        while let hi = it.next(), let lo = it.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
        return out
    }

    /// The hash of no bytes at all.
    public static let empty = BlobHash(digest: SHA256.hash(data: [UInt8]()))

    public var description: String { hex }
    public static func < (a: BlobHash, b: BlobHash) -> Bool { a.hex < b.hex }
}

/// Encoded as its hex text (memo entries, reports); decoding anything else throws.
extension BlobHash: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let hash = BlobHash(hex: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a SHA-256: \(text)")
        }
        self = hash
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}

/// Computes a SHA-256 incrementally from writes that arrive in order; the first write out of
/// order spoils it, and then the seal hashes the file again from disk.
// Unchecked: swift-crypto's SHA256 is not marked Sendable, yet it is a copy-on-write value
// (its C context is copied before a shared one changes), so this struct is a plain value too.
///
/// The SHA-256 context (two allocations, about 200 bytes) is made at the first byte: a staged
/// file the kernel knows but nobody writes, or one whose hash was already handed over, holds
/// none (a million staged files are a million of these).
public struct StreamingHasher: @unchecked Sendable {
    private var hasher: SHA256?
    /// The block checksums (`BlockSums`), in a box made at the first byte like the SHA-256
    /// context, and copied before a shared one changes.
    private var summer: SummerBox?
    public private(set) var length: Int64 = 0
    public private(set) var spoiled = false

    private final class SummerBox { var value = BlockSummer(); init() {}; init(_ v: BlockSummer) { value = v } }

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        guard !spoiled else { return }
        guard offset == length else { spoil(); return }
        if hasher == nil { hasher = SHA256(); summer = SummerBox() }
        hasher!.update(bufferPointer: bytes)
        if !isKnownUniquelyReferenced(&summer!) { summer = SummerBox(summer!.value) }
        summer!.value.update(bytes)
        length += Int64(bytes.count)
    }

    public mutating func spoil() { spoiled = true; hasher = nil; summer = nil }

    public func finalize() -> BlobHash? {
        spoiled ? nil : BlobHash(digest: (hasher ?? SHA256()).finalize())
    }

    /// The block checksums of what was fed (nil when spoiled).
    public var blocks: BlockSums? { spoiled ? nil : (summer?.value.finalize() ?? BlockSums(sums: [])) }
}
