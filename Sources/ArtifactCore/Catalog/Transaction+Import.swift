import Foundation
import GRDB

/// Which import a journal row belongs to: the target (`project:P`, `dataset:D@B`) and the
/// absolute source folder, as the bytes of its path.
struct ImportKey: Sendable {
    var target: String
    var source: PathBytes
}

/// One path of a tree being imported, as `import_journal` keeps it: what was stored for it
/// (`blob`: nil for a folder) and the file's identity when it was read (size, mtime, inode,
/// device), by which a rerun knows it need not read it again.
struct ImportJournalRow: Sendable {
    var path: PathBytes
    /// `EntryKind`'s raw value: file, dir, symlink, fifo, socket, chardev, blockdev.
    var kind: EntryKind
    var blob: BlobHash?
    var size: Int64
    var mode: Int64
    var mtimeNs: Int64
    var ctimeNs: Int64
    var uid: Int64
    var gid: Int64
    var ino: UInt64
    var dev: UInt64
    var nlink: Int64
    var rdev: Int64
    var atimeNs: Int64?
    var xattrs: UserXattrs
    /// JSON of a `FileSchema` (datasets' tabular files).
    var schema: String?
    /// This import stored the blob (the store did not hold the content before).
    var stored: Bool
    /// The content's block checksums, computed while it was copied (`BlockSums.encoded`).
    var blocks: BlockSums? = nil
    /// Where this import packed the blob (`PackFile`): the pack's name (known before its
    /// `pack` row is made, and read back with the row where a query joins it), its row id once
    /// it has one, and the offset. Nil for content kept loose, or that the store held already.
    var packName: String? = nil
    var packId: Int64? = nil
    var packOffset: Int64? = nil

    init(row: Row) {
        path = row["path"]
        kind = EntryKind(rawValue: row["kind"]) ?? .file
        blob = row["blob"]
        size = row["size"]; mode = row["mode"]; mtimeNs = row["mtime_ns"]; ctimeNs = row["ctime_ns"]
        uid = row["uid"]; gid = row["gid"]
        ino = UInt64(bitPattern: row["ino"]); dev = UInt64(bitPattern: row["dev"])
        nlink = row["nlink"]; rdev = row["rdev"]; atimeNs = row["atime_ns"]
        xattrs = UserXattrs(encoded: (row["xattrs"] as Data?).map { Array($0) })
        schema = row["schema"]
        stored = row["stored"]
        blocks = (row["blocks"] as Data?).flatMap(BlockSums.init(encoded:))
        packId = row["pack"]; packOffset = row["pack_offset"]; packName = row["pack_name"]
    }

    init(path: PathBytes, kind: EntryKind, blob: BlobHash?, size: Int64, st: stat, xattrs: UserXattrs) {
        self.path = path; self.kind = kind; self.blob = blob; self.size = size
        mode = Int64(st.st_mode & 0o7777); mtimeNs = st.st_mtim.nanoseconds; ctimeNs = st.st_ctim.nanoseconds
        uid = Int64(st.st_uid); gid = Int64(st.st_gid); ino = UInt64(st.st_ino); dev = UInt64(st.st_dev)
        nlink = Int64(st.st_nlink); rdev = Int64(st.st_rdev); atimeNs = st.st_atim.nanoseconds
        self.xattrs = xattrs; schema = nil; stored = false
    }

    /// The key its hard links share: a file's (inode, device), when it has more than one name
    /// (`insertRun` groups a run's names by the same pair, in SQL).
    var linkKey: UInt64? { kind == .file && nlink > 1 ? ino &* 1_000_003 &+ dev : nil }

    /// Where this import packed the blob, once the row is in the journal.
    var packed: PackPlace? { packId.flatMap { id in packOffset.map { PackPlace(pack: id, offset: $0) } } }

    /// The blob of no bytes (a special file's, as the seal stores it).
    static let emptyContent = BlobStore.Adoption(content: []).hash

    /// The version entry this row writes (a symlink's mode is 0777, a special file has no blob).
    func entry(datasetId: DatasetID, versionId: VersionID) -> EntryRecord {
        EntryRecord(id: nil, datasetId: datasetId, versionId: versionId, path: path, dir: path.parent, name: path.lastComponent,
                    kind: kind, blob: kind.hasBytes ? blob : nil, size: kind.hasBytes ? size : 0,
                    mode: kind == .symlink ? 0o777 : mode, mtimeNs: mtimeNs, uid: uid, gid: gid, schema: schema,
                    xattrs: xattrs.encoded.map { Data($0) }, rdev: rdev, atimeNs: atimeNs)
    }

    var stagedDirectory: StagedDirectory {
        StagedDirectory(relativePath: path, mode: mode, uid: uid, gid: gid, mtimeNs: mtimeNs, xattrs: xattrs)
    }
}

extension Catalog {
    /// Whether an earlier attempt of the import left journal rows (a rerun after a kill): when
    /// not, no path needs looking up in the journal.
    func hasImportJournal(_ key: ImportKey) throws -> Bool {
        try read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM import_journal WHERE target = ? AND source = ?)",
                                     arguments: [key.target, key.source]) ?? false }
    }

    /// The journal rows of `key` for `paths` (one read), by path.
    func importJournal(_ key: ImportKey, paths: [PathBytes]) throws -> [PathBytes: ImportJournalRow] {
        try read { db in
            let find = try db.cachedStatement(sql: """
                SELECT j.*, p.name AS pack_name FROM import_journal j LEFT JOIN pack p ON p.id = j.pack
                WHERE j.target = ? AND j.source = ? AND j.path = ?
                """)
            var out: [PathBytes: ImportJournalRow] = [:]
            for p in paths {
                if let row = try Row.fetchOne(find, arguments: [key.target, key.source, p]) { out[p] = ImportJournalRow(row: row) }
            }
            return out
        }
    }

    /// Records one batch in one transaction: `rows` (their blobs already durable and held) as
    /// found in attempt `pass`, and `seen`, paths whose rows an earlier attempt wrote and this
    /// one found unchanged. `packs` (name, bytes): the batch's new packs, durable under their
    /// names; they get their `pack` rows here, and the rows whose `packName` names one of them
    /// or a pack of an earlier batch point into it. The blob rows are left alone (they are made
    /// when the import is registered): the journal is written in path order, the blob table by
    /// hash, all over it.
    func recordImportBatch(_ key: ImportKey, rows: [ImportJournalRow], seen: [PathBytes], pass: Int64,
                           packs: [(name: String, size: Int64)] = []) throws {
        try write("the import's progress was not recorded") { db in
            let now = Date().timeIntervalSince1970
            var ids: [String: Int64] = [:]
            for pack in packs {
                try db.execute(sql: "INSERT INTO pack (name, size, created_at) VALUES (?, ?, ?)", arguments: [pack.name, pack.size, now])
                ids[pack.name] = db.lastInsertedRowID
            }
            let packId = try db.cachedStatement(sql: "SELECT id FROM pack WHERE name = ?")
            let insert = try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO import_journal (target, source, path, kind, blob, size, mode, mtime_ns, ctime_ns, uid, gid,
                                                      ino, dev, nlink, rdev, atime_ns, xattrs, schema, stored, pass, blocks,
                                                      pack, pack_offset)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for r in rows {
                var pack: Int64?
                if let name = r.packName {
                    if ids[name] == nil { ids[name] = try Int64.fetchOne(packId, arguments: [name]) }
                    guard let id = ids[name] else {
                        throw ArtifactError(.io, "the import's pack is not indexed", path: name)
                    }
                    pack = id
                }
                try insert.execute(arguments: [key.target, key.source, r.path, r.kind.rawValue, r.blob, r.size, r.mode, r.mtimeNs, r.ctimeNs,
                                               r.uid, r.gid, Int64(bitPattern: r.ino), Int64(bitPattern: r.dev), r.nlink, r.rdev, r.atimeNs,
                                               r.xattrs.encoded.map { Data($0) }, r.schema, r.stored, pass,
                                               BlobReferences.keptBlocks(r.blocks, size: r.size),
                                               pack, pack.map { _ in r.packOffset }])
            }
            let touch = try db.cachedStatement(sql: "UPDATE import_journal SET pass = ? WHERE target = ? AND source = ? AND path = ?")
            for p in seen { try touch.execute(arguments: [pass, key.target, key.source, p]) }
        }
    }

    /// The summary (JSON) of an import whose run or version is registered but not yet handed
    /// over (see `import_done`), if any.
    func importDone(_ key: ImportKey) throws -> String? {
        try read { try String.fetchOne($0, sql: "SELECT summary FROM import_done WHERE target = ? AND source = ?", arguments: [key.target, key.source]) }
    }

    /// The import is handed over: forget it.
    func forgetImportDone(_ key: ImportKey) throws {
        try write { try $0.execute(sql: "DELETE FROM import_done WHERE target = ? AND source = ?", arguments: [key.target, key.source]) }
    }
}

/// The journal inside the transaction that registers the import's run or version. Only rows
/// of attempt `pass` count: rows an earlier attempt wrote for paths the folder no longer holds
/// are left out (and go with the journal).
extension CatalogTransaction {
    /// Every row of the import but folders, by path, one at a time (a cursor: bounded memory).
    func forEachImportedFile(_ key: ImportKey, pass: Int64, _ each: (ImportJournalRow) throws -> Void) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM import_journal WHERE target = ? AND source = ? AND kind != 'dir' AND pass = ? ORDER BY path",
                                       arguments: [key.target, key.source, pass])
        while let row = try rows.next() { try each(ImportJournalRow(row: row)) }
    }

    /// The import's folders.
    func importedFolders(_ key: ImportKey, pass: Int64) throws -> [ImportJournalRow] {
        try Row.fetchAll(db, sql: "SELECT * FROM import_journal WHERE target = ? AND source = ? AND kind = 'dir' AND pass = ? ORDER BY path",
                         arguments: [key.target, key.source, pass]).map(ImportJournalRow.init(row:))
    }

    /// The row of one path of the import.
    func importedRow(_ key: ImportKey, path: PathBytes, pass: Int64) throws -> ImportJournalRow? {
        let find = try db.cachedStatement(sql: "SELECT * FROM import_journal WHERE target = ? AND source = ? AND path = ? AND pass = ?")
        return try Row.fetchOne(find, arguments: [key.target, key.source, path, pass]).map(ImportJournalRow.init(row:))
    }

    /// How many names each hard-linked file of the import has, by its link key.
    func importLinkCounts(_ key: ImportKey, pass: Int64) throws -> [UInt64: Int64] {
        let rows = try Row.fetchCursor(db, sql: """
            SELECT * FROM import_journal WHERE target = ? AND source = ? AND kind = 'file' AND nlink > 1 AND pass = ?
            """, arguments: [key.target, key.source, pass])
        var out: [UInt64: Int64] = [:]
        while let row = try rows.next() { out[ImportJournalRow(row: row).linkKey!, default: 0] += 1 }
        return out
    }

    /// Gives the blob rows that have no location (their bytes went to quarantine) the place
    /// where this import packed the same content, as `BlobReferences.add` does for the rows it
    /// counts: one statement over the journal's packed rows, each blob row found by its hash.
    func locateImportedPacks(_ key: ImportKey, pass: Int64) throws {
        try db.execute(sql: """
            UPDATE blob SET pack = j.pack, pack_offset = j.pack_offset
            FROM (SELECT blob, size, pack, pack_offset FROM import_journal
                  WHERE target = ? AND source = ? AND pass = ? AND pack IS NOT NULL) AS j
            WHERE blob.hash = j.blob AND blob.pack IS NULL AND blob.size = j.size
            """, arguments: [key.target, key.source, pass])
    }

    /// Bytes of the blobs this import stored (content the store did not hold before).
    func importStoredBytes(_ key: ImportKey, pass: Int64) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM import_journal WHERE target = ? AND source = ? AND stored AND pass = ?",
                           arguments: [key.target, key.source, pass]) ?? 0
    }

    /// Ends the journal of a registered import: its rows go (their blobs are now named by the
    /// run or version), and `summary` is kept until the import is handed over.
    func closeImport(_ key: ImportKey, summary: String) throws {
        try db.execute(sql: "DELETE FROM import_journal WHERE target = ? AND source = ?", arguments: [key.target, key.source])
        try db.execute(sql: "INSERT OR REPLACE INTO import_done (target, source, summary) VALUES (?, ?, ?)",
                       arguments: [key.target, key.source, summary])
    }

    /// Whether the branch has uncommitted changes in its working tree (the folder's own times aside).
    func hasUncommittedChanges(branch branchId: RefID) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM worktree_change WHERE branch_id = ? AND path != x'')", arguments: [branchId]) ?? false
    }

    /// Records how many entries a version wrote (known once they are in).
    func setVersionChanges(_ versionId: VersionID, _ changes: Int64) throws {
        try db.execute(sql: "UPDATE version SET changes = ? WHERE id = ?", arguments: [changes, versionId])
    }

    /// Removes a version that wrote no entry and that nothing points at yet.
    func deleteEmptyVersion(_ versionId: VersionID) throws {
        try db.execute(sql: "DELETE FROM version WHERE id = ? AND NOT EXISTS (SELECT 1 FROM entry WHERE version_id = ?)",
                       arguments: [versionId, versionId])
    }
}
