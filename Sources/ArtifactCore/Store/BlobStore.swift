import Foundation
import Crypto
import CSystemShims
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Content-addressed, SHA-256 named blobs: loose files in fan-out folders
/// (`objects/ab/cdef...`), or, for the many small blobs an import stores at once, packed into
/// pack files (`packs/`, see `PackFile`) that the catalog's pack index (`PackIndex`) maps.
///
/// A blob reaches its final name only whole and durable: new content is written to a temp
/// file, fsynced and renamed (or, for a staged file that is already complete, fsynced and
/// hard-linked), and the folder is fsynced, all before any catalog row refers to it; a pack is
/// made durable and renamed before its index rows are written. A blob is looked for loose
/// first, then in the pack index. Reference counts live in the catalog, not here.
public final class BlobStore: Sendable {
    public let root: String
    let tmpDir: String
    /// Shared while this process holds blobs; gc takes it exclusively (`BlobHoldLock`).
    public let holdLock: BlobHoldLock
    /// Where packed blobs are; nil: this store packs nothing and finds only loose blobs.
    public let packIndex: (any PackIndex)?
    /// `packs/` beside `root`.
    public var packsDir: String { pathParent(root) + "/packs" }

    /// `root`: the `objects/` folder; `tmpDir`: where copies are written before their rename
    /// (same filesystem); the hold lock is `blobs.lock` beside `root`. `packIndex`: the
    /// catalog, for packed blobs.
    public init(root: String, tmpDir: String, packIndex: (any PackIndex)? = nil) throws {
        self.root = root
        self.tmpDir = tmpDir
        self.packIndex = packIndex
        self.holdLock = BlobHoldLock(path: pathParent(root) + "/blobs.lock")
        do {
            try Syscalls.mkdirs(root)
            try Syscalls.mkdirs(tmpDir)
            if packIndex != nil { try Syscalls.mkdirs(pathParent(root) + "/packs") }
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot create the blob store", path: root)
        }
    }

    public func path(of hash: BlobHash) -> String {
        let hex = hash.hex
        let cut = hex.index(hex.startIndex, offsetBy: 2)
        return "\(root)/\(hex[..<cut])/\(hex[cut...])"
    }

    func fanoutDir(of hash: BlobHash) -> String { pathParent(path(of: hash)) }

    /// Whether the store holds blob `hash`, loose or packed. An index that cannot be read
    /// counts as no (the caller stores the content again).
    public func contains(_ hash: BlobHash) -> Bool {
        Syscalls.exists(path(of: hash)) || (try? packIndex?.packedLocations([hash]))?[hash] != nil
    }

    /// A complete file to take into the store under the blob name `hash`, or bytes in memory
    /// (a symlink's target).
    public struct Adoption: Sendable {
        public var path: PathBytes
        public var hash: BlobHash
        public var size: Int64
        /// Store a copy instead of the file itself: for a file that keeps another, writable name
        /// outside what is stored (a hard link left behind, an upper file a kept name still
        /// uses), whose later writes must never reach the blob.
        public var copying: Bool
        /// The content itself, when there is no file (`path` is empty then).
        public var content: [UInt8]?

        public init(path: PathBytes, hash: BlobHash, size: Int64, copying: Bool = false) {
            self.path = path; self.hash = hash; self.size = size; self.copying = copying
        }

        /// Bytes to store as one blob (written to a temp file, made durable and renamed; in a
        /// batch of many small ones, packed: `PackFile`).
        public init(content: [UInt8]) {
            self.path = .empty; self.hash = BlobHash(digest: SHA256.hash(data: content))
            self.size = Int64(content.count); self.copying = true; self.content = content
        }
    }

    /// Past this many files, one syncfs of the store's filesystem is cheaper than an fsync
    /// per file and folder.
    public static let syncfsThreshold = 16

    /// The one way files enter the store (SPEC §6: a blob is durable before any row that
    /// names it): each file's data is made durable (fsync, or one syncfs past
    /// `syncfsThreshold`), linked (or copied) to its blob name, and the blob folders are
    /// synced, all before this returns. Past `syncfsThreshold` files, content in memory of at
    /// most `PackFile.sizeLimit` bytes (at least `PackFile.minimumBlobs` of them) goes into
    /// pack files instead, indexed once they are durable under their names (with
    /// `indexingPacks` false, not indexed: the caller writes their locations in the transaction
    /// that commits its rows, see `Adopted.unindexedPacks`). Content the store holds already,
    /// loose or packed, is not stored again. Seal, commit, stage outputs and import call it,
    /// and then insert their rows.
    ///
    /// Every hash it returns is *held* until the caller says how its transaction ended:
    /// `release` after the rows are committed, `discard` when they never will be (which
    /// removes the blobs this call stored, so none stays linked to a file that remains
    /// writable, unless a committed row or another adopter in flight needs them).
    /// `referenced` says which of some hashes a committed row names (`Catalog.referencedBlobs`).
    /// Holding also keeps the store's `holdLock` shared, so no gc in any process removes a
    /// blob this call found or stored before its rows are in.
    /// Throws `.io`/`.noSpace` with the file's path; then nothing is held.
    public func adopt(_ files: [Adoption], indexingPacks: Bool = true,
                      referenced: ([BlobHash]) -> Set<BlobHash>) throws -> Adopted {
        let syncAll = files.count > Self.syncfsThreshold
        try hold(files.map(\.hash))
        var touched = Set<String>()
        var stored: [BlobHash] = []
        // Content in memory, in a batch: written to temp files first, so that the one syncfs
        // below makes their bytes durable before any of them is renamed to its blob name.
        var written: [BlobHash: String] = [:]
        // Content the store holds packed already: nothing of it is written again.
        let alreadyPacked: [BlobHash: PackedLocation]
        do { alreadyPacked = try packedAndPresent(files.map(\.hash)) } catch {
            release(Adopted(stored: [], held: files.map(\.hash), syncedFolders: [], syncedFilesystem: false))
            throw error
        }
        // A batch's content (distinct), what of it this call stored, and its packs not yet indexed.
        var memory: [Adoption] = []
        var storedFromMemory = Set<BlobHash>(), storedPacked = Set<BlobHash>()
        var packing: [PackTemp] = []
        var packedNow = Set<BlobHash>()
        var unindexed: [PackTemp] = []
        do {
            if syncAll {
                // Many small blobs (an import's batch): each is written to a temp name in its own
                // fan-out folder, and after the syncfs renamed within that folder, on every core,
                // a folder's blobs all on one thread. So no two threads wait on one folder's lock,
                // and no rename crosses folders (which would take the filesystem's rename mutex,
                // `lock_rename`: measured, parallel renames from `tmp/` only spun on it).
                //
                // Small ones go into pack files instead (`PackFile`): one file for many blobs.
                // A few (a seal's symlinks) stay loose: a pack of three blobs would only add a file.
                var distinct = Set<BlobHash>()
                memory = files.filter { $0.content != nil && distinct.insert($0.hash).inserted }
                let pending = memory.filter { alreadyPacked[$0.hash] == nil }
                let packs = packIndex != nil && pending.count(where: { $0.content!.count <= PackFile.sizeLimit }) >= PackFile.minimumBlobs
                let temps = Self.concurrentMap(pending, partition: Self.fanoutKey) { f in
                    Result { () -> TempPlace in
                        if Syscalls.exists(self.path(of: f.hash)) { return .present }
                        if packs && f.content!.count <= PackFile.sizeLimit { return .pack }
                        return .temp(try self.writeTemp(f.content!, as: f.hash, sync: false, beside: true))
                    }
                }
                var toPack: [Adoption] = []
                for (f, place) in zip(pending, temps) {
                    switch place {
                    case .success(.temp(let tmp)): written[f.hash] = tmp
                    case .success(.pack): toPack.append(f)
                    default: break
                    }
                }
                if let failure = temps.lazy.compactMap({ if case .failure(let e) = $0 { e } else { nil } }).first { throw failure }
                packedNow = Set(toPack.map(\.hash))
                packing = try writePackTemps(toPack)
                try syncFilesystem()
                try placePacks(&packing)
                let named = pending.compactMap { f in written[f.hash].map { (f, $0) } }
                let placed = Self.concurrentMap(named, partition: { Self.fanoutKey($0.0) }) { f, tmp in
                    var local = Set<String>()
                    return Result { try self.place(tmp, as: f.hash, touchedDirectories: &local) }
                }
                var failure: Error?
                for ((f, _), isNew) in zip(named, placed) {
                    written[f.hash] = nil  // renamed, or removed by `place`
                    switch isNew {
                    case .success(true): storedFromMemory.insert(f.hash)
                    case .success(false): break
                    case .failure(let e): failure = failure ?? e
                    }
                }
                if let failure { throw failure }
            }
            // (A staged file with the content of a blob packed just now is not linked again.)
            for f in files where alreadyPacked[f.hash] == nil && !packedNow.contains(f.hash) {
                if let content = f.content {
                    if !syncAll, try store(content, as: f.hash, touchedDirectories: &touched) {
                        stored.append(f.hash)
                    }
                    continue
                }
                // Content the store already holds (the same size at its blob name): nothing of
                // this file will be kept, so its bytes need not reach the disk. A re-upload of
                // an identical 1 GiB file skipped a 0.5 s fsync this way (BENCHMARKS.md, (e)).
                if !syncAll, let existing = try? Syscalls.lstat(path(of: f.hash)), Int64(existing.st_size) == f.size {
                    continue
                }
                if !syncAll {
                    do {
                        let fd = try Syscalls.open(f.path, flags: O_RDONLY)
                        defer { close(fd) }
                        try Syscalls.fsync(fd)
                    } catch let e as Errno { throw ArtifactError.system(e, "cannot sync the file", path: f.path.description) }
                }
                if try adopt(stagedFile: f.path, as: f.hash, size: f.size, copying: f.copying, touchedDirectories: &touched) {
                    stored.append(f.hash)
                }
            }
            // Copies were fsynced one by one; links need the folders (or the whole filesystem).
            if syncAll { try syncFilesystem() } else { try syncDirectories(touched) }
            // Packs are durable under their names now: indexing them makes their blobs stored.
            if indexingPacks {
                try indexPacks(&packing, into: &storedPacked)
            } else {
                for pack in packing { storedPacked.formUnion(pack.entries.map(\.hash)) }
                unindexed = packing
                packing = []
            }
            storedFromMemory.formUnion(storedPacked)
        } catch {
            // Temp files go while the hold still keeps gc out (gc takes any it sees as leftovers).
            for tmp in written.values { try? Syscalls.unlink(tmp) }
            written.removeAll()
            for pack in packing { try? Syscalls.unlink(pack.renamed ? pack.path : pack.temp) }
            let all = memory.map(\.hash).filter { storedFromMemory.contains($0) || storedPacked.contains($0) } + stored
            discard(Adopted(stored: all, held: files.map(\.hash), syncedFolders: [], syncedFilesystem: false, packed: storedPacked),
                    referenced: referenced)
            throw error
        }
        stored = memory.map(\.hash).filter(storedFromMemory.contains) + stored
        return Adopted(stored: stored, held: files.map(\.hash), syncedFolders: syncAll ? [] : touched, syncedFilesystem: syncAll,
                       packed: storedPacked, unindexedPacks: unindexed)
    }

    /// Cores this process may run on, read once (`activeProcessorCount` asks the kernel each time).
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// `body` applied to each of `items` on as many threads as the machine has cores (at most
    /// 4), results in the items' order. Items with the same `partition` go to the same thread.
    /// Dispatch's `concurrentPerform`, which runs one worker on the calling thread.
    static func concurrentMap<Item, T>(_ items: [Item], partition: (Item) -> Int, _ body: (Item) -> T) -> [T] {
        let workers = min(4, Self.cores, items.count)
        guard workers > 1 else { return items.map(body) }
        return withoutActuallyEscaping(partition) { partition in
            withoutActuallyEscaping(body) { body in
                let work = ConcurrentMapWork(items: items, partition: partition, body: body)
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for i in work.items.indices where work.partition(work.items[i]) % workers == worker {
                        let value = work.body(work.items[i])
                        work.lock.withLock { work.values[i] = value }
                    }
                }
                return work.values.map { $0! }
            }
        }
    }

    /// Which fan-out folder a blob is in, as a number 0...255 (the hash's first byte).
    static func fanoutKey(_ adoption: Adoption) -> Int { Int(adoption.hash.bytes[0]) }

    /// What one `adopt` did.
    public struct Adopted: Sendable {
        /// Blobs it newly stored (content the store did not hold before): in a batch past
        /// `syncfsThreshold` those from memory first, each group in the batch's order.
        public var stored: [BlobHash]
        /// Every hash it relies on, stored now or found stored, held until `release`/`discard`.
        public var held: [BlobHash]
        /// Folders it fsynced after linking (new fan-out folders make `objects/` one of them).
        public var syncedFolders: Set<String>
        /// Whether it synced the whole filesystem instead (past `syncfsThreshold` files).
        public var syncedFilesystem: Bool
        /// Those of `stored` it put into packs (the rest are loose files).
        public var packed: Set<BlobHash> = []
        /// With `indexingPacks` false: the packs it wrote, durable under their names, that no
        /// catalog row points into yet. The caller's transaction records where their blobs are
        /// (an import's journal rows, `Catalog.recordImportBatch`); `discard` removes them.
        var unindexedPacks: [PackTemp] = []
    }

    /// Hashes adopters in flight rely on, with how many hold each: another adopter may have
    /// found a blob this one stored and be about to commit rows that name it.
    private let holds = Mutex<[BlobHash: Int]>([:])

    private func hold(_ hashes: [BlobHash]) throws {
        try holdLock.acquireShared()
        holds.withLock { holds in for h in hashes { holds[h, default: 0] += 1 } }
    }

    /// Holds blobs the store already has, for rows about to name them without any file being
    /// adopted (a memoized stage's outputs): nil, holding nothing, when one is missing.
    /// `release` or `discard` the result as for `adopt`.
    public func holdExisting(_ hashes: [BlobHash]) throws -> Adopted? {
        try hold(hashes)
        let adopted = Adopted(stored: [], held: hashes, syncedFolders: [], syncedFilesystem: false)
        guard hashes.allSatisfy(contains) else { release(adopted); return nil }
        return adopted
    }

    /// The rows that name `adopted`'s blobs are committed: they no longer need holding.
    public func release(_ adopted: Adopted) {
        holds.withLock { holds in
            for h in adopted.held {
                let n = holds[h, default: 1] - 1
                holds[h] = n > 0 ? n : nil
            }
        }
        holdLock.releaseShared()
    }

    /// The rows for `adopted` will never be committed: releases its holds, then removes the
    /// blobs it stored that no committed row names (`referenced`), if no adopter holds
    /// anything in any process (the `holdLock` taken exclusively without waiting): another
    /// adopter may have found one of them stored and be about to commit rows naming it. When
    /// one does, they stay as orphans, which gc removes at once.
    public func discard(_ adopted: Adopted, referenced: ([BlobHash]) -> Set<BlobHash>) {
        release(adopted)
        // Packs no row points into: nobody else knows of them.
        for pack in adopted.unindexedPacks { try? Syscalls.unlink(pack.path) }
        let inUnindexed = Set(adopted.unindexedPacks.flatMap { $0.entries.map(\.hash) })
        let stored = adopted.stored.filter { !inUnindexed.contains($0) }
        guard !stored.isEmpty else { return }
        _ = try? holdLock.exclusivelyIfFree {
            let named = referenced(stored)
            let unreferenced = stored.filter { !named.contains($0) }
            for hash in unreferenced where !adopted.packed.contains(hash) { try? Syscalls.unlink(path(of: hash)) }
            // Packed ones: their index rows go (gc removes a pack no row points into).
            try? packIndex?.removePacked(unreferenced.filter(adopted.packed.contains))
        }
    }

    /// One syncfs of the filesystem that holds the store.
    private func syncFilesystem() throws {
        do {
            let fd = try Syscalls.open(root, flags: O_RDONLY | O_DIRECTORY)
            defer { close(fd) }
            try Syscalls.syncfs(fd)
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot sync the store", path: root)
        }
    }

    /// Gives a complete, already fsynced file the blob name `hash` by hard link, so the staged
    /// name keeps the data until the catalog has committed. Returns false when the store
    /// already held that content. The caller fsyncs `touchedDirectories` before committing.
    ///
    /// With `copying`, the blob is a copy (temp file, fsync, rename) instead: for a staged
    /// file that keeps another name outside what is stored (a hard link that stays behind,
    /// ignored or interrupted), whose later writes must never reach the blob.
    private func adopt(stagedFile staged: PathBytes, as hash: BlobHash, size: Int64, copying: Bool,
                       touchedDirectories: inout Set<String>) throws -> Bool {
        let target = path(of: hash)
        let dir = pathParent(target)
        do {
            if try Syscalls.mkdirs(dir) { touchedDirectories.insert(root) }
            if copying {
                if let existing = try? Syscalls.lstat(target), Int64(existing.st_size) == size { return false }
                let tmp = "\(tmpDir)/copy-\(hash.hex)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
                try copy(staged, to: PathBytes(tmp), size: size)
                try Syscalls.rename(tmp, target)
                touchedDirectories.insert(dir)
                return true
            }
            do {
                try Syscalls.link(staged, target)
            } catch Errno.fileExists {
                // Same name means same content, unless the stored copy was damaged; a size
                // mismatch is cheap to see, and then the good staged copy replaces it.
                let existing = try Syscalls.lstat(target)
                if Int64(existing.st_size) == size { return false }
                let tmp = "\(tmpDir)/replace-\(hash.hex)-\(getpid())"
                try? Syscalls.unlink(tmp)
                try Syscalls.link(staged, tmp)
                try Syscalls.rename(tmp, target)
            }
            touchedDirectories.insert(dir)
            return true
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot store blob \(hash.hex.prefix(12))", path: staged.description)
        }
    }

    /// Copies blob `hash` into a new file `target` with `mode` and no fsync: a scratch copy
    /// that a command may read or even damage (a stage's input). Checked as it is copied
    /// (`copyChecked`). Throws the open, copy or `.corrupt` errors; a partial copy is removed.
    public func copy(_ hash: BlobHash, to target: PathBytes, mode: mode_t) throws {
        let output = try Syscalls.open(target, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do {
            defer { close(output) }
            try copyChecked(hash, to: output)
        } catch {
            try? Syscalls.unlink(target)
            throw error
        }
    }

    /// Copies blob `hash` to the open descriptor `output`, reading it once and hashing it as it
    /// goes, like a read through the mount is checked (SPEC §6): content that does not hash to
    /// its name is never handed on as good (a working tree's copy-up would commit it as new,
    /// a stage would memoize outputs of it). Then the blob goes to quarantine/ and this throws
    /// `.corrupt`; a missing blob throws `.corrupt` too. What was written stays for the caller
    /// to remove.
    public func copyChecked(_ hash: BlobHash, to output: Int32) throws {
        let source = path(of: hash)
        let input: Int32
        do { input = try Syscalls.open(source, flags: O_RDONLY) } catch {
            if let (bytes, location) = try packedContent(hash) {
                guard BlobHash(digest: SHA256.hash(data: bytes)) == hash else {
                    // On another thread: a copy-up copies inside a catalog write, and GRDB's
                    // writer is not reentrant (quarantine forgets the location in a write).
                    DispatchQueue.global(qos: .utility).async {
                        try? self.quarantinePacked(hash, reason: "copy: content does not hash to its name", at: location)
                    }
                    throw ArtifactError(.corrupt, "blob damaged (it goes to quarantine/)", path: packPath(location.pack))
                }
                do { try Syscalls.writeAll(output, bytes) } catch let e as Errno {
                    throw ArtifactError.system(e, "cannot copy blob \(hash.hex.prefix(12))", path: packPath(location.pack))
                }
                return
            }
            throw ArtifactError(.corrupt, "blob missing", path: source)
        }
        defer { close(input) }
        _ = posix_fadvise(input, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        do {
            while true {
                let n = Glibc.read(input, buffer.baseAddress, buffer.count)
                if n < 0 { if errno == EINTR { continue }; throw Errno(rawValue: errno) }
                if n == 0 { break }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                var done = 0
                while done < n {
                    let w = Glibc.write(output, buffer.baseAddress! + done, n - done)
                    if w < 0 { if errno == EINTR { continue }; throw Errno(rawValue: errno) }
                    done += w
                }
            }
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot copy blob \(hash.hex.prefix(12))", path: source)
        }
        guard BlobHash(digest: hasher.finalize()) == hash else {
            try? quarantine(hash, reason: "copy: content does not hash to its name", onlyIf: try? Syscalls.fstat(input))
            throw ArtifactError(.corrupt, "blob damaged (moved to quarantine/)", path: source)
        }
    }

    /// Copies `size` bytes of `source` into a new file `target` (read-only unless `mode` says
    /// otherwise) and, with `sync`, fsyncs it.
    private func copy(_ source: PathBytes, to target: PathBytes, size: Int64, mode: mode_t = 0o444, sync: Bool = true) throws {
        let input = try Syscalls.open(source, flags: O_RDONLY)
        defer { close(input) }
        let output = try Syscalls.open(target, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do {
            var copied: Int64 = 0
            while copied < size {
                let n = afs_copy_file_range(input, output, Int(min(size - copied, 1 << 30)))
                if n < 0 { if errno == EINTR { continue }; throw Errno(rawValue: errno) }
                if n == 0 { break }
                copied += Int64(n)
            }
            guard copied == size else { throw Errno.ioError }
            if sync { try Syscalls.fsync(output) }
            close(output)
        } catch {
            close(output)
            try? Syscalls.unlink(target)
            throw error
        }
    }

    /// The whole content of a small blob (a symlink's target); `.corrupt` when it is missing
    /// or does not hash to its name.
    public func read(_ hash: BlobHash, limit: Int = 1 << 20) throws -> [UInt8] {
        let p = path(of: hash)
        let bytes: [UInt8]
        if let data = FileManager.default.contents(atPath: p) {
            bytes = Array(data)
        } else if let (packed, _) = try packedContent(hash) {
            bytes = packed
        } else {
            throw ArtifactError(.corrupt, "blob missing", path: p)
        }
        guard bytes.count <= limit else { throw ArtifactError(.corrupt, "blob too large", path: p) }
        guard BlobHash(digest: SHA256.hash(data: bytes)) == hash else { throw ArtifactError(.corrupt, "blob damaged", path: p) }
        return bytes
    }

    /// Stores `bytes` as a blob (temp file, fsync, rename, folder fsync) and returns its hash.
    /// Holds nothing afterwards: a gc may remove the blob before a row names it. Production
    /// code adopts content instead (`Adoption(content:)`); this is for tests and tools.
    @discardableResult
    public func put(_ bytes: [UInt8]) throws -> BlobHash {
        let hash = BlobHash(digest: SHA256.hash(data: bytes))
        try hold([hash])
        defer { release(Adopted(stored: [], held: [hash], syncedFolders: [], syncedFilesystem: false)) }
        var touched = Set<String>()
        _ = try store(bytes, as: hash, touchedDirectories: &touched)
        try syncDirectories(touched)
        return hash
    }

    /// Writes `bytes` to a temp file, fsyncs it and renames it to blob `hash`; false when the
    /// store already held it. The caller fsyncs `touchedDirectories`.
    private func store(_ bytes: [UInt8], as hash: BlobHash, touchedDirectories touched: inout Set<String>) throws -> Bool {
        if contains(hash) { return false }
        return try place(try writeTemp(bytes, as: hash, sync: true), as: hash, touchedDirectories: &touched)
    }

    /// Writes `bytes` to a new temp file (fsynced when `sync`) and returns its path: in `tmp/`,
    /// or with `beside` in the blob's fan-out folder (made if missing), named
    /// `fanoutTempPrefix`…, which no blob name can be. Either name holds the blob's hash, so a
    /// leftover that another process with the same pid finds under the same name holds the
    /// same bytes. Throws `.io`/`.noSpace` naming the temp file; one this call created is then
    /// gone, one it did not (the name was taken) is left alone.
    private func writeTemp(_ bytes: [UInt8], as hash: BlobHash, sync: Bool, beside: Bool = false) throws -> String {
        let number = Self.tempCounter.add(1, ordering: .relaxed).newValue
        let tmp = beside ? "\(fanoutDir(of: hash))/\(Self.fanoutTempPrefix)\(hash.hex)-\(Self.pid)-\(number)"
                         : "\(tmpDir)/put-\(hash.hex)-\(Self.pid)-\(number)"
        do {
            try writeFile(tmp, bytes, sync: sync, what: "cannot write blob")
        } catch let e as ArtifactError where beside && e.underlying == .noSuchFileOrDirectory {
            // The fan-out folder is new (made here, not stat'ed before every write).
            do { try Syscalls.mkdirs(fanoutDir(of: hash)) } catch let e as Errno {
                throw ArtifactError.system(e, "cannot write blob", path: tmp)
            }
            try writeFile(tmp, bytes, sync: sync, what: "cannot write blob")
        }
        return tmp
    }

    /// Writes `bytes` to a new file `path` (read-only, `O_EXCL`), fsynced when `sync`. Throws
    /// `.io`/`.noSpace` with `what`, naming `path`; a file this call created is then gone, one
    /// it did not (the name was taken) is left alone.
    func writeFile(_ path: String, _ bytes: [UInt8], sync: Bool, what: String) throws {
        let fd: Int32
        do { fd = try Syscalls.open(path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o444) } catch let e as Errno {
            throw ArtifactError.system(e, what, path: path)
        }
        do {
            defer { close(fd) }
            try Syscalls.writeAll(fd, bytes)
            if sync { try Syscalls.fsync(fd) }
        } catch let e as Errno {
            try? Syscalls.unlink(path)
            throw ArtifactError.system(e, what, path: path)
        }
    }

    /// This process's id and a counter: with the hash, temp names unique in the store without a
    /// system call each (gc removes leftovers by prefix, under the hold lock).
    private static let pid = getpid()
    private static let tempCounter = Atomic<UInt64>(0)

    /// Renames the durable temp file `tmp` to blob `hash`, unless the store holds that blob
    /// already (then `tmp` goes, and false). The caller fsyncs `touchedDirectories`.
    private func place(_ tmp: String, as hash: BlobHash, touchedDirectories touched: inout Set<String>) throws -> Bool {
        let dir = fanoutDir(of: hash)
        do {
            do {
                do {
                    try Syscalls.renameat2(AT_FDCWD, tmp, AT_FDCWD, path(of: hash), flags: 1 /* RENAME_NOREPLACE */)
                } catch Errno.noSuchFileOrDirectory where Syscalls.exists(tmp) {
                    // The fan-out folder is new (made here, not stat'ed before every rename).
                    if try Syscalls.mkdirs(dir) { touched.insert(root) }
                    try Syscalls.renameat2(AT_FDCWD, tmp, AT_FDCWD, path(of: hash), flags: 1 /* RENAME_NOREPLACE */)
                }
            } catch Errno.fileExists {
                try? Syscalls.unlink(tmp)
                return false
            } catch Errno.invalidArgument {
                // A filesystem without RENAME_NOREPLACE: same name means same content.
                if contains(hash) { try? Syscalls.unlink(tmp); return false }
                if try Syscalls.mkdirs(dir) { touched.insert(root) }
                try Syscalls.rename(tmp, path(of: hash))
            }
            touched.insert(dir)
            return true
        } catch let e as Errno {
            try? Syscalls.unlink(tmp)
            throw ArtifactError.system(e, "cannot write blob", path: tmp)
        }
    }

    public func syncDirectories(_ dirs: Set<String>) throws {
        do {
            for dir in dirs.sorted(by: >) { try Syscalls.fsyncPath(dir) }
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot sync blob folder", path: root)
        }
    }

    /// What one read of a file's content gives: its blob name, size and block checksums.
    public struct FileDigest: Sendable {
        public var hash: BlobHash
        /// Bytes.
        public var size: Int64
        public var blocks: BlockSums
    }

    /// Reads a file and returns its SHA-256 and size.
    public static func hash(fileAt path: PathBytes) throws -> (BlobHash, Int64) {
        let d = try digest(fileAt: path)
        return (d.hash, d.size)
    }

    /// Reads a file once and returns its SHA-256, size and block checksums. Throws `.io` (or
    /// `.notFound`, …) naming `path` when it cannot be opened or read.
    /// `read` gets the bytes read so far after each 1 MiB (progress of a long hash).
    public static func digest(fileAt path: PathBytes, read: (Int64) -> Void = { _ in }) throws -> FileDigest {
        let fd: Int32
        do { fd = try Syscalls.open(path, flags: O_RDONLY) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot open for hashing", path: path.description)
        }
        defer { close(fd) }
        return try digest(fd: fd, path: path.description, read: read)
    }

    /// `digest(fileAt:)` of an open descriptor (read from offset 0); `path` names it in errors.
    public static func digest(fd: Int32, path: String, read: (Int64) -> Void = { _ in }) throws -> FileDigest {
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        var summer = BlockSummer()
        var total: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let n: Int
            do { n = try Syscalls.pread(fd, into: buffer, offset: total) } catch let e as Errno {
                throw ArtifactError.system(e, "cannot read for hashing", path: path)
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            summer.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
            read(total)
            if n < buffer.count { break }
        }
        return FileDigest(hash: BlobHash(digest: hasher.finalize()), size: total, blocks: summer.finalize())
    }

    /// What `verify` found for one blob.
    public enum Health: Equatable, Sendable {
        case ok
        case missing
        case wrongSize(actual: Int64)
        case wrongHash(actual: BlobHash)
        /// The content is right but the recorded block checksums are not (they would fail
        /// good reads); carries the right ones.
        case wrongBlockSums(BlockSums)
    }

    /// Whether blob `hash` is at its name with `expectedSize` bytes and, with `readData`,
    /// hashes to its name and matches the `recorded` block checksums (if any). `read` gets the
    /// bytes read so far while hashing.
    public func check(_ hash: BlobHash, expectedSize: Int64, readData: Bool = true, recorded: BlockSums? = nil,
                      read: (Int64) -> Void = { _ in }) -> Health {
        let p = path(of: hash)
        guard let st = try? Syscalls.lstat(p) else { return checkPacked(hash, expectedSize: expectedSize, readData: readData, recorded: recorded) }
        if Int64(st.st_size) != expectedSize { return .wrongSize(actual: Int64(st.st_size)) }
        guard readData else { return .ok }
        guard let digest = try? BlobStore.digest(fileAt: PathBytes(p), read: read) else { return .missing }
        guard digest.hash == hash else { return .wrongHash(actual: digest.hash) }
        if let recorded, recorded != digest.blocks { return .wrongBlockSums(digest.blocks) }
        return .ok
    }

    // MARK: quarantine

    /// `quarantine/` beside `objects/`: blobs found damaged, kept (never deleted) for a human
    /// to look at, under their name.
    public var quarantineDir: String { pathParent(root) + "/quarantine" }

    /// Moves blob `hash` out of `objects/` into `quarantineDir`, marked with `reason` (the
    /// `user.artifactfs.quarantine` attribute), so that every later open of a file that uses
    /// it answers EIO and `verify` names it. A later adopt of the same content stores a good
    /// copy again. `onlyIf` (the damaged file's `fstat`): move it only if it is still the file
    /// at the blob's name, so that a reader of an older, damaged copy never moves a good copy
    /// stored since. A packed blob (none loose, or `packedAt` given: only if still packed
    /// there) is copied out and its index row forgotten. An earlier quarantined copy is kept
    /// (the new one gets a suffix). Throws `.io` when the move fails (then the blob stays where
    /// it was).
    public func quarantine(_ hash: BlobHash, reason: String, onlyIf damaged: stat? = nil, packedAt: PackedLocation? = nil) throws {
        if packedAt != nil || (damaged == nil && !Syscalls.exists(path(of: hash))) {
            try quarantinePacked(hash, reason: reason, at: packedAt)
            return
        }
        var target = quarantineDir + "/" + hash.hex
        do {
            if let damaged {
                guard let now = try? Syscalls.lstat(path(of: hash)), now.st_dev == damaged.st_dev, now.st_ino == damaged.st_ino else { return }
            }
            _ = try Syscalls.mkdirs(quarantineDir)
            var n = 1
            while Syscalls.exists(target) { target = quarantineDir + "/" + hash.hex + ".\(n)"; n += 1 }
            try Syscalls.rename(path(of: hash), target)
            try? ExtendedAttributes.set(target, ControlAttribute.quarantine, reason)
            try syncDirectories([fanoutDir(of: hash), quarantineDir])
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot quarantine blob \(hash.hex)", path: path(of: hash))
        }
    }

    /// Why blob `hash` is in quarantine, or nil when it is not there.
    public func quarantineReason(_ hash: BlobHash) -> String? {
        let p = quarantineDir + "/" + hash.hex
        guard Syscalls.exists(p) else { return nil }
        return (try? ExtendedAttributes.get(p, ControlAttribute.quarantine)) ?? "quarantined"
    }

    /// Puts the file at `source` (whose content hashes to `hash`) back at blob `hash`'s name:
    /// `verify --fix` re-linking a good copy it found. Throws `.io`.
    public func restore(_ hash: BlobHash, from source: String) throws {
        do {
            var touched = Set<String>()
            if try Syscalls.mkdirs(fanoutDir(of: hash)) { touched.insert(root) }
            try Syscalls.rename(source, path(of: hash))
            touched.insert(fanoutDir(of: hash))
            try syncDirectories(touched)
        } catch let e as Errno {
            throw ArtifactError.system(e, "cannot put blob \(hash.hex) back", path: source)
        }
    }

    /// How temp files in fan-out folders begin (`writeTemp(beside:)`); a leading dot, so never
    /// a blob name.
    public static let fanoutTempPrefix = ".put-"

    /// Paths of the temp files in `tmp/` (`put-`, `copy-`, `replace-`; not `tmp/import/`, which
    /// the next import clears). Only a process holding blobs writes them, so with the
    /// `holdLock` exclusive every one is a leftover of a process that stopped.
    public func tempFilesInTmp() -> [String] {
        ((try? Syscalls.listDirectory(tmpDir)) ?? []).map(\.name.description).filter {
            $0.hasPrefix("put-") || $0.hasPrefix("copy-") || $0.hasPrefix("replace-")
        }.map { tmpDir + "/" + $0 }
    }

    /// Every blob the store holds, loose or packed, each once (for orphan checks).
    public func allHashes() throws -> [BlobHash] {
        var out: [BlobHash] = []
        for (fan, _) in (try? Syscalls.listDirectory(root)) ?? [] where fan.count == 2 {
            for (rest, _) in (try? Syscalls.listDirectory(PathBytes(root).appending(fan))) ?? [] {
                if let h = BlobHash(hex: fan.description + rest.description) { out.append(h) }
            }
        }
        let loose = Set(out)
        return out + (try packIndex?.allPackedHashes() ?? []).filter { !loose.contains($0) }
    }
}

/// The shared state of one `BlobStore.concurrentMap`: each index is written by one worker, and
/// `lock` orders those writes before the caller reads them.
private final class ConcurrentMapWork<Item, T>: @unchecked Sendable {
    let items: [Item]
    let partition: (Item) -> Int
    let body: (Item) -> T
    var values: [T?]
    let lock = NSLock()
    init(items: [Item], partition: @escaping (Item) -> Int, body: @escaping (Item) -> T) {
        self.items = items
        self.partition = partition
        self.body = body
        values = Array(repeating: nil, count: items.count)
    }
}
