import Foundation
import Crypto
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Packed blobs (`PackFile`): writing a batch's small blobs into packs, finding and reading
/// them, and what gc and verify do with pack files.
extension BlobStore {
    /// Where a batch's blob from memory goes (`adopt`).
    enum TempPlace { case present, pack, temp(String) }

    /// A pack written under a temp name, then renamed to `path`, not yet indexed.
    struct PackTemp {
        var name: String
        var temp: String
        var path: String
        var size: Int64
        var entries: [PackFile.Entry]
        var renamed = false
    }

    /// Where blob `hash` is: a loose file, or a packed location, or nowhere.
    public enum Location: Sendable, Equatable {
        case loose(String)
        case packed(PackedLocation)
        case missing
    }

    public func location(of hash: BlobHash) -> Location {
        let p = path(of: hash)
        if Syscalls.exists(p) { return .loose(p) }
        if let loc = (try? packIndex?.packedLocations([hash]))?[hash] { return .packed(loc) }
        return .missing
    }

    /// The path of pack `name`.
    public func packPath(_ name: String) -> String { packsDir + "/" + name }

    /// Writes `blobs` (content in memory) into new packs under temp names, up to
    /// `PackFile.targetSize` bytes each, without fsync (the caller syncs the filesystem). Throws
    /// `.io`/`.noSpace` naming the pack; then none of them is left.
    func writePackTemps(_ blobs: [Adoption]) throws -> [PackTemp] {
        var out: [PackTemp] = []
        var start = 0
        do {
            while start < blobs.count {
                var end = start, bytes = 0
                while end < blobs.count && (end == start || bytes + blobs[end].content!.count <= PackFile.targetSize) {
                    bytes += blobs[end].content!.count
                    end += 1
                }
                let (content, entries) = PackFile.encode(blobs[start..<end].map { ($0.hash, $0.content!) })
                let name = PackFile.newName()
                let temp = packsDir + "/" + Self.fanoutTempPrefix + name
                try writeFile(temp, content, sync: false, what: "cannot write pack")
                out.append(PackTemp(name: name, temp: temp, path: packPath(name), size: Int64(content.count), entries: entries))
                start = end
            }
        } catch {
            for p in out { try? Syscalls.unlink(p.temp) }
            throw error
        }
        return out
    }

    /// Renames durable pack temps to their names (the caller syncs the filesystem after).
    func placePacks(_ packs: inout [PackTemp]) throws {
        for i in packs.indices {
            do { try Syscalls.rename(packs[i].temp, packs[i].path) } catch let e as Errno {
                throw ArtifactError.system(e, "cannot name pack", path: packs[i].temp)
            }
            packs[i].renamed = true
        }
    }

    /// Indexes durable, named packs, one transaction each, adding to `stored` the blobs each
    /// stored (content no other pack holds), and taking it off `packs`. A pack none of whose
    /// blobs was indexed (another adopter packed them all meanwhile) stays for gc.
    func indexPacks(_ packs: inout [PackTemp], into stored: inout Set<BlobHash>) throws {
        guard let packIndex else { return }
        while let pack = packs.first {
            stored.formUnion(try packIndex.addPack(name: pack.name, size: pack.size, entries: pack.entries))
            packs.removeFirst()
        }
    }

    /// The bytes packed blob `hash` has in its pack, unchecked, and where; nil when it is not
    /// packed. Looks the location up again once when the pack is gone (gc rewrote it
    /// meanwhile). Throws `.corrupt` when its pack cannot be read.
    public func packedContent(_ hash: BlobHash) throws -> (bytes: [UInt8], location: PackedLocation)? {
        guard let packIndex else { return nil }
        for attempt in 0..<2 {
            guard let loc = try packIndex.packedLocations([hash])[hash] else { return nil }
            let fd: Int32
            do { fd = try Syscalls.open(packPath(loc.pack), flags: O_RDONLY) } catch Errno.noSuchFileOrDirectory where attempt == 0 {
                continue
            } catch Errno.noSuchFileOrDirectory {
                throw ArtifactError(.corrupt, "pack missing", path: packPath(loc.pack))
            } catch let e as Errno {
                throw ArtifactError.system(e, "cannot open pack", path: packPath(loc.pack))
            }
            defer { close(fd) }
            do {
                return (try PackFile.read(fd: fd, offset: loc.offset, count: Int(loc.length)), loc)
            } catch let e as Errno {
                throw ArtifactError.system(e, "cannot read pack", path: packPath(loc.pack))
            }
        }
        return nil
    }

    /// Packed blob `hash`'s content, checked against `size` and its name; nil when it is not
    /// packed. Damaged content is quarantined (every later open answers EIO) and throws
    /// `.corrupt` saying what was wrong; an unreadable pack throws `.corrupt` too.
    public func readPacked(_ hash: BlobHash, size: Int64) throws -> [UInt8]? {
        guard let (bytes, location) = try packedContent(hash) else { return nil }
        let actual = BlobHash(digest: SHA256.hash(data: bytes))
        guard Int64(bytes.count) == size, actual == hash else {
            let reason = Int64(bytes.count) != size ? "size is \(bytes.count), the catalog says \(size)" : "content hashes to \(actual.hex)"
            do { try quarantinePacked(hash, reason: "read: \(reason)", at: location) } catch {
                throw ArtifactError(.corrupt, "blob damaged (\(reason)); cannot quarantine it: \(error)", path: packPath(location.pack))
            }
            throw ArtifactError(.corrupt, "blob damaged (\(reason)); moved to quarantine/, reads answer EIO", path: packPath(location.pack))
        }
        return bytes
    }

    /// The packed locations of those of `hashes` whose pack file is there. A location whose
    /// pack is gone (ENOENT) is forgotten, so that the content stored again heals the blob.
    func packedAndPresent(_ hashes: [BlobHash]) throws -> [BlobHash: PackedLocation] {
        guard let packIndex else { return [:] }
        var found = try packIndex.packedLocations(hashes)
        var gone: [String: Bool] = [:]
        for (hash, loc) in found {
            let missing = try gone[loc.pack] ?? {
                let m: Bool
                do { _ = try Syscalls.lstat(packPath(loc.pack)); m = false } catch Errno.noSuchFileOrDirectory { m = true }
                gone[loc.pack] = m
                return m
            }()
            if missing {
                _ = try packIndex.forgetPacked(hash, at: loc)
                found[hash] = nil
            }
        }
        return found
    }

    /// Copies packed blob `hash`'s bytes (as they are) to `quarantineDir`, marked with
    /// `reason`, and forgets where it is packed, so that every later open answers EIO; only if
    /// it is still packed at `location` (nil: wherever it is; no-op when it is not packed).
    /// The pack's bytes stay until gc rewrites it. Throws `.corrupt`/`.io` when the bytes
    /// cannot be read or copied (then nothing changed).
    func quarantinePacked(_ hash: BlobHash, reason: String, at location: PackedLocation?) throws {
        guard let packIndex, let (bytes, now) = try packedContent(hash), location == nil || now == location else { return }
        var target = quarantineDir + "/" + hash.hex
        do {
            _ = try Syscalls.mkdirs(quarantineDir)
            var n = 1
            while Syscalls.exists(target) { target = quarantineDir + "/" + hash.hex + ".\(n)"; n += 1 }
            try writeFile(target, bytes, sync: true, what: "cannot quarantine blob \(hash.hex)")
            try? ExtendedAttributes.set(target, ControlAttribute.quarantine, reason)
            try syncDirectories([quarantineDir])
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot quarantine blob \(hash.hex)", path: target)
        }
        _ = try packIndex.forgetPacked(hash, at: now)
    }

    /// Pack files on disk (names), and pack temp files (paths) a process that stopped left.
    public func packFilesOnDisk() -> (packs: [String], temps: [String]) {
        var packs: [String] = [], temps: [String] = []
        for (name, _) in (try? Syscalls.listDirectory(packsDir)) ?? [] {
            let n = name.description
            if n.hasPrefix(Self.fanoutTempPrefix) { temps.append(packsDir + "/" + n) } else if n.hasSuffix(".pack") { packs.append(n) }
        }
        return (packs.sorted(), temps.sorted())
    }

    /// Writes the blobs of pack `old` listed in `entries` (those still indexed in it) into a new
    /// pack, checking each against its name on the way, and makes it durable under its name.
    /// Returns the new pack (not yet indexed: `Catalog.movePacked`) and the blobs found damaged
    /// (left out; the caller quarantines them). Throws `.io`/`.noSpace`.
    func rewritePack(_ old: String, entries: [PackFile.Entry]) throws -> (pack: PackTemp?, damaged: [PackFile.Entry]) {
        let fd: Int32
        do { fd = try Syscalls.open(packPath(old), flags: O_RDONLY) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot open pack", path: packPath(old))
        }
        defer { close(fd) }
        var good: [Adoption] = [], damaged: [PackFile.Entry] = []
        for e in entries {
            let bytes = (try? PackFile.read(fd: fd, offset: e.offset, count: Int(e.length))) ?? []
            if bytes.count == Int(e.length), BlobHash(digest: SHA256.hash(data: bytes)) == e.hash {
                var a = Adoption(content: bytes)
                a.hash = e.hash
                good.append(a)
            } else {
                damaged.append(e)
            }
        }
        guard !good.isEmpty else { return (nil, damaged) }
        let (content, newEntries) = PackFile.encode(good.map { ($0.hash, $0.content!) })
        let name = PackFile.newName()
        var pack = PackTemp(name: name, temp: packsDir + "/" + Self.fanoutTempPrefix + name, path: packPath(name),
                            size: Int64(content.count), entries: newEntries)
        try writeFile(pack.temp, content, sync: true, what: "cannot write pack")
        do {
            try Syscalls.rename(pack.temp, pack.path)
            pack.renamed = true
            try Syscalls.fsyncPath(packsDir)
        } catch let e as Errno {
            try? Syscalls.unlink(pack.renamed ? pack.path : pack.temp)
            throw ArtifactError.system(e, pack.renamed ? "cannot sync the pack folder" : "cannot name pack",
                                       path: pack.renamed ? packsDir : pack.temp)
        }
        return (pack, damaged)
    }

    /// `check` of a blob that is not loose: packed, with its bytes in its pack (`.missing`
    /// when it is not packed or its pack is gone).
    func checkPacked(_ hash: BlobHash, expectedSize: Int64, readData: Bool, recorded: BlockSums?) -> Health {
        // Looked up again once when the pack is gone: gc may have just rewritten it.
        var found: (PackedLocation, stat)?
        for _ in 0..<2 where found == nil {
            guard let packIndex, let loc = (try? packIndex.packedLocations([hash]))?[hash] else { return .missing }
            if let st = try? Syscalls.lstat(packPath(loc.pack)) { found = (loc, st) }
        }
        guard let (loc, st) = found else { return .missing }
        let available = max(0, min(loc.length, Int64(st.st_size) - loc.offset))
        if loc.length != expectedSize || available < loc.length { return .wrongSize(actual: available < loc.length ? available : loc.length) }
        guard readData else { return .ok }
        guard let (bytes, _) = try? packedContent(hash) else { return .missing }
        if Int64(bytes.count) != expectedSize { return .wrongSize(actual: Int64(bytes.count)) }
        let actual = BlobHash(digest: SHA256.hash(data: bytes))
        guard actual == hash else { return .wrongHash(actual: actual) }
        if let recorded, recorded != BlockSums.of(bytes) { return .wrongBlockSums(BlockSums.of(bytes)) }
        return .ok
    }
}
