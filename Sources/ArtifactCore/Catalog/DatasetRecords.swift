import Foundation
import GRDB

/// A dataset: a DAG of versions with movable branches and immutable tags.
public struct DatasetRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "dataset"
    public var id: DatasetID?
    public var name: String
    public var ownerUid: Int64
    public var ownerGid: Int64
    public var createdAt: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = DatasetID(inserted.rowID) }
}

/// One committed, immutable tree of a dataset.
public struct VersionRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "version"
    public var id: VersionID?
    public var datasetId: DatasetID
    /// The id users see, e.g. 20261121T143005Z-001; sorts chronologically.
    public var name: String
    public var timestamp: Int64
    public var seq: Int64
    public var parentId: VersionID?
    public var depth: Int64
    /// The branch it was committed on.
    public var branch: String
    public var authorUid: Int64
    public var message: String
    public var createdAt: Double
    /// Entries written: files and folders added, changed or deleted.
    public var changes: Int64

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = VersionID(inserted.rowID) }
}

/// A branch or a tag.
public struct RefRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case branch, tag }
    public static let databaseTableName = "ref"
    public var id: RefID?
    public var datasetId: DatasetID
    public var kind: Kind
    public var name: String
    public var versionId: VersionID?
    public var createdAt: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = RefID(inserted.rowID) }
}

/// What a tree entry or a working-tree change is.
public enum EntryKind: String, Codable, Sendable {
    case file, dir
    /// The path is gone (a version deleted it, or the working tree did).
    case deleted
    /// A symbolic link: its target is its content (a blob, or an upper file while uncommitted).
    case symlink
    /// Metadata-only entries (SPEC §1).
    case fifo, socket, chardev, blockdev

    /// The kind of a non-folder entry; nil for a folder or a deletion.
    public var fileKind: FileKind? {
        switch self {
        case .file: return .regular
        case .symlink: return .symlink
        case .fifo: return .fifo
        case .socket: return .socket
        case .chardev: return .charDevice
        case .blockdev: return .blockDevice
        case .dir, .deleted: return nil
        }
    }

    public init(_ kind: FileKind) {
        switch kind {
        case .regular: self = .file
        case .symlink: self = .symlink
        case .fifo: self = .fifo
        case .socket: self = .socket
        case .charDevice: self = .chardev
        case .blockDevice: self = .blockdev
        }
    }

    /// Whether its bytes are a blob or an upper file (a regular file or a symlink's target).
    public var hasBytes: Bool { self == .file || self == .symlink }
}

/// One row of `entry`: what one version wrote at one path.
public struct EntryRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "entry"
    public var id: EntryID?
    public var datasetId: DatasetID
    public var versionId: VersionID
    public var path: PathBytes
    public var dir: PathBytes
    public var name: PathBytes
    public var kind: EntryKind
    public var blob: BlobHash?
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    /// JSON of a `FileSchema` for tabular files.
    public var schema: String?
    /// `UserXattrs.encoded`.
    public var xattrs: Data? = nil
    public var rdev: Int64 = 0
    public var atimeNs: Int64? = nil
    /// Hard links: the id of the first entry of the group this version wrote (nil: one name).
    public var linkGroup: EntryID? = nil
    public var nlink: Int64 = 1

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = EntryID(inserted.rowID) }
}

/// One uncommitted change in a branch's working tree. A file's bytes are either a blob
/// (renamed or re-moded but not rewritten) or an upper file on disk (written).
public struct WorktreeChangeRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "worktree_change"
    public var id: RowID<WorktreeChangeRecord>?
    public var branchId: RefID
    public var path: PathBytes
    public var dir: PathBytes
    public var name: PathBytes
    public var kind: EntryKind
    public var blob: BlobHash?
    public var upper: String?
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    /// `UserXattrs.encoded`.
    public var xattrs: Data? = nil
    public var rdev: Int64 = 0
    public var atimeNs: Int64? = nil
    public var ctimeNs: Int64? = nil

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = RowID(inserted.rowID) }
}

/// A path as the working tree or a version shows it: where its bytes are and its metadata.
public struct TreeItem: Sendable, Equatable {
    public var path: PathBytes
    public var kind: EntryKind
    public var blob: BlobHash?
    /// File name under the branch's upper folder, for bytes written in the working tree.
    public var upper: String?
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    /// The committed entry this comes from (nil for uncommitted changes).
    public var entryId: EntryID?
    public var versionId: VersionID?
    public var schema: String?
    /// `UserXattrs.encoded`.
    public var xattrs: [UInt8]? = nil
    public var rdev: Int64 = 0
    /// Nanoseconds since 1970; nil shows mtime.
    public var atimeNs: Int64? = nil
    public var ctimeNs: Int64? = nil
    /// Names of this file in the working tree (rows sharing its upper file).
    public var nlink: Int64 = 1
    /// 512-byte blocks the upper file holds on disk (sparse files hold fewer); nil: from size.
    public var blocks: Int64? = nil
    /// A committed hard link's group (`EntryRecord.linkGroup`).
    public var linkGroup: EntryID? = nil

    public var name: PathBytes { path.lastComponent }
    public var isDirectory: Bool { kind == .dir }

    init(_ e: EntryRecord) {
        path = e.path; kind = e.kind; blob = e.blob; upper = nil; size = e.size; mode = e.mode
        mtimeNs = e.mtimeNs; uid = e.uid; gid = e.gid; entryId = e.id; versionId = e.versionId; schema = e.schema
        xattrs = e.xattrs.map { Array($0) }; rdev = e.rdev; atimeNs = e.atimeNs
        linkGroup = e.linkGroup; nlink = e.nlink
    }

    init(_ c: WorktreeChangeRecord) {
        path = c.path; kind = c.kind; blob = c.blob; upper = c.upper; size = c.size; mode = c.mode
        mtimeNs = c.mtimeNs; uid = c.uid; gid = c.gid; entryId = nil; versionId = nil; schema = nil
        xattrs = c.xattrs.map { Array($0) }; rdev = c.rdev; atimeNs = c.atimeNs; ctimeNs = c.ctimeNs
    }

    public init(path: PathBytes, kind: EntryKind, blob: BlobHash? = nil, upper: String? = nil, size: Int64 = 0,
                mode: Int64, mtimeNs: Int64, uid: Int64, gid: Int64) {
        self.path = path; self.kind = kind; self.blob = blob; self.upper = upper; self.size = size
        self.mode = mode; self.mtimeNs = mtimeNs; self.uid = uid; self.gid = gid
    }
}

// Explicit row decoding for the two records every lookup, create and listing in a working tree
// reads: Codable's snake-case key conversion was most of their cost under perf.
extension EntryKind {
    init(column value: String) throws {
        guard let kind = EntryKind(rawValue: value) else { throw ArtifactError(.corrupt, "unknown entry kind \(value)") }
        self = kind
    }
}

extension EntryRecord {
    public init(row: Row) throws {
        id = row["id"]; datasetId = row["dataset_id"]; versionId = row["version_id"]
        path = row["path"]; dir = row["dir"]; name = row["name"]
        kind = try EntryKind(column: row["kind"]); blob = try BlobHash.parseOptional(row["blob"], of: path)
        size = row["size"]; mode = row["mode"]; mtimeNs = row["mtime_ns"]; uid = row["uid"]; gid = row["gid"]
        schema = row["schema"]
        xattrs = row["xattrs"]; rdev = row["rdev"] ?? 0; atimeNs = row["atime_ns"]
        linkGroup = row["link_group"]; nlink = row["nlink"] ?? 1
    }
}

extension WorktreeChangeRecord {
    public init(row: Row) throws {
        id = row["id"]; branchId = row["branch_id"]
        path = row["path"]; dir = row["dir"]; name = row["name"]
        kind = try EntryKind(column: row["kind"]); blob = try BlobHash.parseOptional(row["blob"], of: path); upper = row["upper"]
        size = row["size"]; mode = row["mode"]; mtimeNs = row["mtime_ns"]; uid = row["uid"]; gid = row["gid"]
        xattrs = row["xattrs"]; rdev = row["rdev"] ?? 0; atimeNs = row["atime_ns"]; ctimeNs = row["ctime_ns"]
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id; container["branch_id"] = branchId
        container["path"] = path; container["dir"] = dir; container["name"] = name
        container["kind"] = kind.rawValue; container["blob"] = blob; container["upper"] = upper
        container["size"] = size; container["mode"] = mode; container["mtime_ns"] = mtimeNs; container["uid"] = uid; container["gid"] = gid
        container["xattrs"] = xattrs; container["rdev"] = rdev; container["atime_ns"] = atimeNs; container["ctime_ns"] = ctimeNs
    }
}
