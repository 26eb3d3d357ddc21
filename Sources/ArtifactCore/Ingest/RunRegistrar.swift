import Foundation
import GRDB
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
    public func register(projectId: Int64, entries: [StagedEntry], directories: [StagedDirectory] = [],
                         uid: Int64, action: String = "ingest", completed: Bool = true,
                         cleanup: [(path: PathBytes, ino: UInt64)] = [], now: Date = Date()) throws -> RunRecord {
        try catalog.write("the run was not registered") { db in
            try Self.insertRun(db, projectId: projectId, entries: entries, directories: directories,
                               uid: uid, action: action, completed: completed, cleanup: cleanup, now: now)
        }
    }

    static func insertRun(_ db: Database, projectId: Int64, entries: [StagedEntry], directories: [StagedDirectory],
                          uid: Int64, action: String, completed: Bool,
                          cleanup: [(path: PathBytes, ino: UInt64)], now: Date) throws -> RunRecord {
        let nowSeconds = now.timeIntervalSince1970
        let id = try ChronologicalID.next(db, table: "run", ownerColumn: "project_id", ownerId: projectId, now: now)
        var run = RunRecord(id: nil, projectId: projectId, name: id.name,
                            timestamp: id.timestamp, seq: id.seq, action: action,
                            status: completed ? .completed : .inProgress, uid: uid,
                            createdAt: nowSeconds, completedAt: completed ? nowSeconds : nil, error: nil,
                            filesNew: 0, filesSuperseded: 0, filesDuplicate: 0, bytes: 0)
        try run.insert(db)
        let runId = run.id!

        let current = try db.cachedStatement(sql: """
            SELECT id, blob, kind FROM file WHERE project_id = ? AND dir = ? AND name = ? AND superseded_by IS NULL
            """)
        let supersede = try db.cachedStatement(sql: "UPDATE file SET status = 'superseded', superseded_by = ? WHERE id = ?")
        let insertFile = try db.cachedStatement(sql: """
            INSERT INTO file (project_id, run_id, path, dir, name, blob, size, mode, mtime_ns, uid, gid, status, created_at,
                              kind, xattrs, link_group, nlink, rdev, atime_ns)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let insertDir = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO dir (project_id, run_id, parent, name, mode, uid, gid, mtime_ns, xattrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)

        // Folders with what the staging area saw of them; ancestors it did not list get none.
        let known = Dictionary(directories.map { ($0.relativePath, $0) }, uniquingKeysWith: { a, _ in a })
        var dirs = Set<PathBytes>()
        func addDirAndAncestors(_ dir: PathBytes) throws {
            for d in dir.folderAndAncestors {
                guard dirs.insert(d).inserted else { return }  // and so are the folders above it
                let m = known[d]
                try insertDir.execute(arguments: [projectId, runId, d.parent, d.lastComponent, m?.mode, m?.uid, m?.gid, m?.mtimeNs,
                                                  m?.xattrs.encoded.map { Data($0) }])
            }
        }
        var linkCounts: [UInt64: Int64] = [:]
        for e in entries { if let k = e.linkKey { linkCounts[k, default: 0] += 1 } }
        var linkLeaders: [UInt64: Int64] = [:]

        for entry in entries {
            let dir = entry.path.parent, name = entry.path.lastComponent
            try addDirAndAncestors(dir)
            var status = FileStatus.new
            let previous = try Row.fetchOne(current, arguments: [projectId, dir, name])
            if let previous {
                let previousBlob: String = previous["blob"], previousKind: String = previous["kind"]
                if previousBlob == entry.hash.hex && previousKind == entry.kind.rawValue {
                    status = .duplicate; run.filesDuplicate += 1
                } else {
                    run.filesSuperseded += 1
                }
            } else {
                run.filesNew += 1
            }
            let group = entry.linkKey.flatMap { linkCounts[$0, default: 1] > 1 ? $0 : nil }
            try BlobReferences.add(db, entry.hash, size: entry.size, now: nowSeconds)
            try insertFile.execute(arguments: [projectId, runId, entry.path, dir, name, entry.hash.hex, entry.size,
                                               entry.mode, entry.mtimeNs, entry.uid, entry.gid, status.rawValue, nowSeconds,
                                               entry.kind.rawValue, entry.xattrs.encoded.map { Data($0) },
                                               group.flatMap { linkLeaders[$0] }, group.map { linkCounts[$0]! } ?? 1,
                                               entry.rdev, entry.atimeNs])
            let fileId = db.lastInsertedRowID
            if let group, linkLeaders[group] == nil {
                linkLeaders[group] = fileId
                try db.execute(sql: "UPDATE file SET link_group = ? WHERE id = ?", arguments: [fileId, fileId])
            }
            if let previous {
                let previousId: Int64 = previous["id"]
                try supersede.execute(arguments: [fileId, previousId])
            }
            run.bytes += entry.size
        }
        for d in directories { try addDirAndAncestors(d.relativePath) }

        let insertCleanup = try db.cachedStatement(sql: "INSERT INTO seal_cleanup (project_id, staged_path, ino) VALUES (?, ?, ?)")
        for item in cleanup {
            try insertCleanup.execute(arguments: [projectId, item.path, Int64(bitPattern: item.ino)])
        }
        try run.update(db)
        return run
    }
}
