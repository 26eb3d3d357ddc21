import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a packed blob's bytes are: in `packs/<pack>`, `length` bytes from `offset`.
public struct PackedLocation: Sendable, Equatable {
    public var pack: String
    /// Bytes from the start of the pack file.
    public var offset: Int64
    /// Bytes.
    public var length: Int64

    public init(pack: String, offset: Int64, length: Int64) { self.pack = pack; self.offset = offset; self.length = length }
}

/// Which pack holds which blob: kept by the catalog, in the blob's own row (`Catalog+Packs`).
/// A packed blob is in the store exactly while its row says where (and its pack file is on
/// disk), as a loose blob is while its file has its name.
public protocol PackIndex: Sendable {
    /// The locations of those of `hashes` that are packed.
    func packedLocations(_ hashes: [BlobHash]) throws -> [BlobHash: PackedLocation]
    /// Indexes a new pack file, durable on disk, `size` bytes, holding `entries`; returns the
    /// hashes indexed now (one another pack holds already stays where it is). Durable when it
    /// returns.
    func addPack(name: String, size: Int64, entries: [PackFile.Entry]) throws -> Set<BlobHash>
    /// Forgets the packed copies of `hashes`, which an adopter stored and no row names (their
    /// bytes stay in the pack until gc rewrites or removes it); a row packing made goes too.
    func removePacked(_ hashes: [BlobHash]) throws
    /// Forgets the packed copy of `hash` if it is still at `location` (quarantine); true
    /// when it was.
    func forgetPacked(_ hash: BlobHash, at location: PackedLocation) throws -> Bool
    /// Every packed blob's hash (for orphan checks).
    func allPackedHashes() throws -> [BlobHash]
}

/// A pack file (`packs/<32 hex digits>.pack`): small blobs one after another, then a trailer
/// that lists them, so that a pack says what it holds without the catalog (as restic's pack
/// header does):
///
///     blob bytes … | n × (SHA-256: 32 bytes, offset: u64, length: u64) | n: u64 | "AFSPACK1"
///
/// Integers little-endian; offsets from the start of the file. Written whole to a temp name
/// (`.put-…` in `packs/`), made durable, renamed, and only then indexed: like a loose blob's
/// name, an index row appears only once the bytes it points at are durable. Never changed
/// afterwards; gc removes a pack none of whose blobs is indexed, and rewrites one that is
/// mostly dead.
public enum PackFile {
    /// One blob in a pack.
    public struct Entry: Sendable, Equatable {
        public var hash: BlobHash
        /// Bytes from the start of the pack file.
        public var offset: Int64
        /// Bytes.
        public var length: Int64
        public init(hash: BlobHash, offset: Int64, length: Int64) { self.hash = hash; self.offset = offset; self.length = length }
    }

    /// The trailer's last 8 bytes.
    public static let magic = Array("AFSPACK1".utf8)
    /// Blobs up to this many bytes are packed when a batch holds many of them in memory (an
    /// import's; larger ones stay loose files, read in place). 128 KiB: a pack read copies the blob into memory
    /// once per open, so the bound keeps that small; past it, a blob's own data costs the disk
    /// more than its inode.
    public static let sizeLimit = 128 << 10
    /// Fewer small blobs than this in one adopt stay loose files (a seal's few symlinks).
    public static let minimumBlobs = 32
    /// A new pack is started past this many bytes.
    public static let targetSize = 16 << 20

    /// A new pack's name: 128 random bits in hex.
    public static func newName() -> String {
        (0..<2).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16).leftPadded(to: 16) }.joined() + ".pack"
    }

    /// The bytes of a pack holding `blobs` (their content, in order), and where each is.
    /// Built in one allocation, each content copied once.
    static func encode(_ blobs: [(hash: BlobHash, content: [UInt8])]) -> (bytes: [UInt8], entries: [Entry]) {
        let data = blobs.reduce(0) { $0 + $1.content.count }
        let total = data + blobs.count * 48 + 16
        var entries: [Entry] = []
        entries.reserveCapacity(blobs.count)
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            var at = 0
            for blob in blobs {
                entries.append(Entry(hash: blob.hash, offset: Int64(at), length: Int64(blob.content.count)))
                blob.content.withUnsafeBytes { if let src = $0.baseAddress { (base + at).copyMemory(from: src, byteCount: $0.count) } }
                at += blob.content.count
            }
            for e in entries {
                e.hash.bytes.withUnsafeBytes { (base + at).copyMemory(from: $0.baseAddress!, byteCount: 32) }
                (base + at + 32).storeBytes(of: UInt64(e.offset).littleEndian, toByteOffset: 0, as: UInt64.self)
                (base + at + 40).storeBytes(of: UInt64(e.length).littleEndian, toByteOffset: 0, as: UInt64.self)
                at += 48
            }
            (base + at).storeBytes(of: UInt64(entries.count).littleEndian, toByteOffset: 0, as: UInt64.self)
            magic.withUnsafeBytes { (base + at + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            count = total
        }
        return (bytes, entries)
    }

    /// The entries a pack's trailer lists; nil when it has no well-formed trailer.
    public static func entries(fd: Int32, size: Int64) -> [Entry]? {
        guard size >= 16, let tail = try? read(fd: fd, offset: size - 16, count: 16), Array(tail[8...]) == magic else { return nil }
        let n = Int64(littleEndian: tail[0..<8])
        guard n >= 0, n <= (size - 16) / 48, let table = try? read(fd: fd, offset: size - 16 - n * 48, count: Int(n * 48)) else { return nil }
        var out: [Entry] = []
        for i in 0..<Int(n) {
            let base = i * 48
            guard let hash = BlobHash(bytes: table[base..<base + 32]) else { return nil }
            let offset = Int64(littleEndian: table[base + 32..<base + 40]), length = Int64(littleEndian: table[base + 40..<base + 48])
            guard offset >= 0, length >= 0, offset + length <= size - 16 - n * 48 else { return nil }
            out.append(Entry(hash: hash, offset: offset, length: length))
        }
        return out
    }

    /// `count` bytes of `fd` from `offset`; fewer when the file ends first. Throws the errno.
    static func read(fd: Int32, offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let done = try out.withUnsafeMutableBytes { try Syscalls.pread(fd, into: $0, offset: offset) }
        return done == count ? out : Array(out[..<done])
    }
}

private extension Int64 {
    init(littleEndian bytes: ArraySlice<UInt8>) {
        var v: UInt64 = 0
        for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        self = Int64(bitPattern: v)
    }
}

private extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
