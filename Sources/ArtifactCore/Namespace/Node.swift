/// A place in the virtual tree. Equal nodes are the same file to the kernel (same inode).
public enum Node: Hashable, Sendable {
    case root
    case projects
    case datasets
    case project(ProjectID)
    /// The writable staging folder of a project; the FUSE adapter serves it from disk.
    case incoming(ProjectID)
    case runs(ProjectID)
    case run(RunID)
    /// A folder under runs/<run>/raw_source; "" is raw_source itself.
    case runSource(run: RunID, dir: PathBytes)
    case runJSON(RunID)
    case latest(project: ProjectID, dir: PathBytes)
    /// history/<dir>/: folders and one folder per file path.
    case history(project: ProjectID, dir: PathBytes)
    /// history/<path>/: one entry per version of that path, named by run id. Named by a
    /// version of the path (the latest when it was looked up; any one names the same folder),
    /// so that the FUSE adapter can derive its inode number from the row (`DerivedInode`).
    case historyOfFile(FileID)
    /// One registered file version, wherever it is shown.
    case file(FileID)
    /// A folder of stage outputs: runs/<run>/<stage>/<dir>; "" is the stage folder.
    case stageOutputs(run: RunID, stage: String, dir: PathBytes)
    /// One file a stage wrote.
    case output(OutputID)
    /// projects/<p>/pipeline.toml, read-only.
    case pipelineDefinition(ProjectID)
    case dataset(DatasetID)
    /// A path in a branch's writable working tree (`@branch/<path>`); "" is `@branch` itself.
    case worktree(branch: RefID, path: PathBytes)
    case versions(dataset: DatasetID)
    case tags(dataset: DatasetID)
    /// A folder of a committed version: `versions/<v>/<path>` (tag nil) or `tags/<t>/<path>`.
    case versionDir(version: VersionID, tag: RefID?, path: PathBytes)
    /// One committed file entry, wherever it is shown.
    case versionFile(entry: EntryID)
    /// datasets/<d>/.log, the history as text.
    case datasetLog(DatasetID)

    public var isDirectory: Bool {
        switch self {
        case .file, .runJSON, .output, .pipelineDefinition, .versionFile, .datasetLog: return false
        // Resolved from the working tree; ask `Namespace.attributes`.
        case .worktree: return true
        default: return true
        }
    }
}

/// What `stat` shows for a node.
public struct NodeAttributes: Sendable, Equatable {
    public var isDirectory: Bool
    public var mode: UInt32
    public var size: Int64
    public var uid: UInt32
    public var gid: UInt32
    public var mtimeNs: Int64
    public var nlink: UInt32
    /// What a non-folder is (regular file unless said otherwise).
    public var kind: FileKind = .regular
    public var rdev: UInt64 = 0
    /// Nanoseconds since 1970; nil shows mtime.
    public var atimeNs: Int64? = nil
    public var ctimeNs: Int64? = nil
    /// Shared by the names of one file that has several (hard links in a working tree): the
    /// FUSE adapter gives them one inode.
    public var linkIdentity: String? = nil
    /// 512-byte blocks on disk; nil: as many as the size needs.
    public var blocks: Int64? = nil

    public init(isDirectory: Bool, mode: UInt32, size: Int64, uid: UInt32, gid: UInt32, mtimeNs: Int64, nlink: UInt32 = 1) {
        self.isDirectory = isDirectory; self.mode = mode; self.size = size
        self.uid = uid; self.gid = gid; self.mtimeNs = mtimeNs; self.nlink = nlink
    }

    /// st_mode: type bits and permission bits.
    public var typeAndMode: UInt32 { (isDirectory ? 0o040000 : kind.typeBits) | (mode & 0o7777) }
}

/// One entry of a folder listing.
public struct DirectoryEntry: Sendable {
    public var name: PathBytes
    public var node: Node
    public var attributes: NodeAttributes
}

/// Where a file's bytes come from.
public enum NodeContent: Sendable {
    case blob(BlobHash, size: Int64)
    case bytes([UInt8])
    /// A file on disk (uncommitted bytes of a working tree).
    case staged(path: String)
}
