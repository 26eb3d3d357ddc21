import Foundation
import GRDB

/// Columns are snake_case in SQL and camelCase in Swift.
protocol CatalogRecord: Codable, FetchableRecord, MutablePersistableRecord {}
extension CatalogRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

public struct ProjectRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "project"
    public var id: ProjectID?
    public var name: String
    public var ownerUid: Int64
    public var createdAt: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = ProjectID(inserted.rowID) }
}

/// Lifecycle of a run (SPEC §2).
public enum RunStatus: String, Codable, Sendable {
    case inProgress = "in_progress", completed, completedWithErrors = "completed_with_errors", failed
}

/// One ingestion: everything that was in incoming/ when it sealed.
public struct RunRecord: CatalogRecord, MutablePersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "run"
    public var id: RunID?
    public var projectId: ProjectID
    /// The id users see, e.g. 20261121T143005Z-001; sorts chronologically.
    public var name: String
    public var timestamp: Int64
    public var seq: Int64
    public var action: String
    public var status: RunStatus
    public var uid: Int64
    public var createdAt: Double
    public var completedAt: Double?
    public var error: String?
    public var filesNew: Int64
    public var filesSuperseded: Int64
    public var filesDuplicate: Int64
    public var bytes: Int64
    /// The pipeline definition that processed this run; nil until it was handed to the pipeline.
    public var pipelineHash: String? = nil

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = RunID(inserted.rowID) }
}

/// What a registered file is, relative to the earlier versions of its path.
public enum FileStatus: String, Codable, Sendable {
    /// The current version, with content not seen at this path before.
    case new
    /// Same content as the version it replaced.
    case duplicate
    /// A later run registered this path again.
    case superseded
}

/// One version of one raw file: a path under raw_source/ in one run.
///
/// Rows are written by `CatalogTransaction.insertRun` and read through `init(row:)`; the
/// table keeps `dir` and `name` but not the whole path (SPEC §8, catalog size), which is
/// `dir/name`.
public struct FileRecord: FetchableRecord, TableRecord, Sendable, Equatable {
    public static let databaseTableName = "file"
    public var id: FileID?
    public var projectId: ProjectID
    public var runId: RunID
    /// `dir` and `name` joined; not a column.
    public var path: PathBytes
    public var dir: PathBytes
    public var name: PathBytes
    public var blob: BlobHash
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var uid: Int64
    public var gid: Int64
    public var status: FileStatus
    public var supersededBy: FileID?
    public var createdAt: Double
    public var processedAt: Double?
    /// Regular file, symlink (its target is the blob's bytes), or a metadata-only special file.
    public var kind: FileKind = .regular
    /// `UserXattrs.encoded`.
    public var xattrs: Data? = nil
    /// The id of the first row of its hard-link group in the run (nil: one name only).
    public var linkGroup: FileID? = nil
    /// Names of this inode within the run.
    public var nlink: Int64 = 1
    public var rdev: Int64 = 0
    public var atimeNs: Int64? = nil
}

/// A folder of a run: its name and, for runs sealed since folders kept their metadata, its
/// mode, owner, mtime and user attributes.
public struct FolderRecord: FetchableRecord, Sendable, Equatable {
    public var name: PathBytes
    public var mode: Int64?
    public var uid: Int64?
    public var gid: Int64?
    public var mtimeNs: Int64?
    public var xattrs: [UInt8]?

    public init(row: Row) throws {
        name = row["name"]; mode = row["mode"]; uid = row["uid"]; gid = row["gid"]; mtimeNs = row["mtime_ns"]
        xattrs = (row["xattrs"] as Data?).map { Array($0) }
    }
}

/// What a file entry of a run or a version is (SPEC §1: a run holds the whole tree).
public enum FileKind: String, Codable, Sendable {
    case regular = "file", symlink, fifo, socket, charDevice = "chardev", blockDevice = "blockdev"

    /// The kind of a file with mode `st_mode`; nil for a folder.
    public init?(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o120000: self = .symlink
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        case 0o020000: self = .charDevice
        case 0o060000: self = .blockDevice
        default: return nil
        }
    }

    /// The S_IFMT bits.
    public var typeBits: UInt32 {
        switch self {
        case .regular: return 0o100000
        case .symlink: return 0o120000
        case .fifo: return 0o010000
        case .socket: return 0o140000
        case .charDevice: return 0o020000
        case .blockDevice: return 0o060000
        }
    }

    /// Whether it has content a tool reads (pipelines, schemas): regular files only.
    public var hasContent: Bool { self == .regular }
}

public struct BlobRecord: CatalogRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "blob"
    public var hash: BlobHash
    public var size: Int64
    public var refcount: Int64
    public var createdAt: Double
    /// `BlockSums.encoded` (kept for blobs of more than one block).
    public var blocks: Data? = nil
}

/// A file a stage wrote, shown under runs/<run>/<stage>/.
public struct OutputRecord: CatalogRecord, Sendable, Equatable {
    public static let databaseTableName = "output"
    public var id: OutputID?
    public var runId: RunID
    public var stage: String
    /// Path inside the stage's folder.
    public var path: PathBytes
    public var dir: PathBytes
    public var name: PathBytes
    public var blob: BlobHash
    public var size: Int64
    public var mode: Int64
    public var mtimeNs: Int64
    public var inputPath: PathBytes
    public var jobId: JobID?

    public init(id: OutputID?, runId: RunID, stage: String, path: PathBytes, dir: PathBytes, name: PathBytes, blob: BlobHash,
                size: Int64, mode: Int64, mtimeNs: Int64, inputPath: PathBytes, jobId: JobID?) {
        self.id = id; self.runId = runId; self.stage = stage; self.path = path; self.dir = dir; self.name = name
        self.blob = blob; self.size = size; self.mode = mode; self.mtimeNs = mtimeNs; self.inputPath = inputPath; self.jobId = jobId
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = OutputID(inserted.rowID) }
}

// Explicit row decoding for the records every listing reads: a blob name that is not a
// SHA-256 throws `.corrupt` naming the row's file (as `BlobHash.parse` does), and Codable's
// snake-case key conversion stays off the hot path.
extension FileRecord {
    public init(row: Row) throws {
        id = row["id"]; projectId = row["project_id"]; runId = row["run_id"]
        dir = row["dir"]; name = row["name"]; path = dir.appending(name)
        blob = try BlobHash.parse(row["blob"], of: path)
        size = row["size"]; mode = row["mode"]; mtimeNs = row["mtime_ns"]; uid = row["uid"]; gid = row["gid"]
        guard let status = FileStatus(rawValue: row["status"]) else { throw ArtifactError(.corrupt, "unknown file status", path: path) }
        self.status = status
        supersededBy = row["superseded_by"]; createdAt = row["created_at"]; processedAt = row["processed_at"]
        guard let kind = FileKind(rawValue: row["kind"] ?? FileKind.regular.rawValue) else {
            throw ArtifactError(.corrupt, "unknown file kind", path: path)
        }
        self.kind = kind
        xattrs = row["xattrs"]; linkGroup = row["link_group"]; nlink = row["nlink"] ?? 1; rdev = row["rdev"] ?? 0; atimeNs = row["atime_ns"]
    }
}

extension OutputRecord {
    public init(row: Row) throws {
        id = row["id"]; runId = row["run_id"]; stage = row["stage"]
        path = row["path"]; dir = row["dir"]; name = row["name"]
        blob = try BlobHash.parse(row["blob"], of: path)
        size = row["size"]; mode = row["mode"]; mtimeNs = row["mtime_ns"]; inputPath = row["input_path"]; jobId = row["job_id"]
    }
}

