import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file ready to be registered: its place under raw_source/ and what the blob store holds.
public struct StagedEntry: Sendable, Equatable {
    public var path: PathBytes
    public var hash: BlobHash
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    /// A symlink's blob holds its target; a special file's blob is empty.
    public var kind: FileKind = .regular
    public var xattrs = UserXattrs()
    /// Entries with the same key are hard links of one file (the staged inode number).
    public var linkKey: UInt64? = nil
    public var rdev: Int64 = 0
    public var atimeNs: Int64? = nil
    /// The block checksums computed while it was hashed, recorded with a new blob.
    public var blocks: BlockSums? = nil
    /// Where an import packed the content, recorded with a blob row that has no location.
    public var packed: PackPlace? = nil

    public init(path: PathBytes, hash: BlobHash, size: Int64, mode: Int64, mtimeNs: Int64, uid: Int64, gid: Int64) {
        self.path = path; self.hash = hash; self.size = size; self.mode = mode
        self.mtimeNs = mtimeNs; self.uid = uid; self.gid = gid
    }
}

/// Told about every run once it is registered, e.g. to queue its pipeline stages.
/// The core declares it; the executable wires in whatever listens.
public protocol RunSealedSink: AnyObject, Sendable {
    func runSealed(_ run: RunRecord)
}

/// Registers a run in one catalog transaction: all of its files, or none of them.
/// The seal of incoming/ and `import` both come through here.
public final class RunRegistrar: Sendable {
    let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    /// The user-visible run id for a time and sequence: 20261121T143005Z-001.
    public static func runName(timestamp: Int64, seq: Int64) -> String {
        ChronologicalID(timestamp: timestamp, seq: seq).name
    }

    /// Registers `entries` (blobs already durable in the store) as one new run.
    /// `cleanup` names the staged files the caller removes after the commit.
    public func register(projectId: ProjectID, entries: [StagedEntry], directories: [StagedDirectory] = [],
                         uid: Int64, action: String = "ingest", completed: Bool = true,
                         cleanup: [(path: PathBytes, ino: UInt64)] = [], now: Date = Date()) throws -> RunRecord {
        try register(projectId: projectId, files: .entries { _, each in try entries.forEach(each) }, directories: { _ in directories },
                     uid: uid, action: action, completed: completed, cleanup: cleanup, now: now)
    }

    /// Registers `files` and the folders `directories` reads (both inside the one transaction)
    /// as one new run, and in the same transaction does `alsoInTransaction` (an import clears
    /// its journal there). `error`: files that could not be taken.
    func register(projectId: ProjectID, files: RunFiles, directories: (CatalogTransaction) throws -> [StagedDirectory],
                  uid: Int64, action: String = "ingest", completed: Bool = true, error: String? = nil,
                  cleanup: [(path: PathBytes, ino: UInt64)] = [], now: Date = Date(),
                  alsoInTransaction: (CatalogTransaction, RunRecord) throws -> Void = { _, _ in }) throws -> RunRecord {
        try catalog.writing("the run was not registered") { tx in
            let run = try tx.insertRun(projectId: projectId, files: files, directories: try directories(tx),
                                       uid: uid, action: action, completed: completed, error: error, cleanup: cleanup, now: now)
            try alsoInTransaction(tx, run)
            return run
        }
    }
}
