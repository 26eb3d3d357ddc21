import Foundation
import Synchronization

/// datasets/: dataset folders, `@branch` working trees, `versions/`, `tags/` and `.log`.
extension Namespace {
    func lookupDataset(_ parent: Node, _ name: PathBytes) throws -> Node? {
        // Datasets, refs and versions have text names (NameRules); bytes that are not UTF-8
        // name none of them ("\0" matches no name: NameRules refuse NUL).
        let text = name.validUTF8 ?? "\u{0}"
        switch parent {
        case .datasets:
            return try catalog.dataset(named: text).map { .dataset($0.id!) }
        case .dataset(let d):
            switch name {
            case "versions": return .versions(dataset: d)
            case "tags": return .tags(dataset: d)
            case ".log": return .datasetLog(d)
            default:
                guard text.hasPrefix("@") else { return nil }
                return try catalog.ref(datasetId: d, kind: .branch, name: String(text.dropFirst())).map { .worktree(branch: $0.id!, path: .empty) }
            }
        case .worktree(let b, let path):
            let child = path.appending(name)
            return try worktrees.item(branch: b, path: child) == nil ? nil : .worktree(branch: b, path: child)
        case .versions(let d):
            return try catalog.version(datasetId: d, name: text).map { .versionDir(version: $0.id!, tag: nil, path: .empty) }
        case .tags(let d):
            guard let tag = try catalog.ref(datasetId: d, kind: .tag, name: text), let v = tag.versionId else { return nil }
            return .versionDir(version: v, tag: tag.id!, path: .empty)
        case .versionDir(let v, let t, let path):
            let child = path.appending(name)
            guard let item = try trees.item(version: v, path: child) else { return nil }
            return item.isDirectory ? .versionDir(version: v, tag: t, path: child) : .versionFile(entry: item.linkGroup ?? item.entryId!)
        default:
            return nil
        }
    }

    func datasetChildren(_ node: Node) throws -> [DirectoryEntry] {
        switch node {
        case .datasets:
            return try catalog.datasets().map { DirectoryEntry(name: PathBytes($0.name), node: .dataset($0.id!), attributes: datasetDirAttributes($0, writable: true)) }
        case .dataset(let d):
            guard let ds = try catalog.dataset(id: d) else { return [] }
            let ro = datasetDirAttributes(ds, writable: false)
            var out = [
                DirectoryEntry(name: ".log", node: .datasetLog(d), attributes: try attributes(.datasetLog(d))),
                DirectoryEntry(name: "tags", node: .tags(dataset: d), attributes: ro),
                DirectoryEntry(name: "versions", node: .versions(dataset: d), attributes: ro),
            ]
            for b in try catalog.refs(datasetId: d, kind: .branch) {
                let n = Node.worktree(branch: b.id!, path: .empty)
                out.append(DirectoryEntry(name: PathBytes("@" + b.name), node: n, attributes: try attributes(n)))
            }
            return out.sorted { $0.name < $1.name }
        case .worktree(let b, let path):
            return try worktrees.children(branch: b, dir: path).map {
                var a = itemAttributes($0, readOnly: false, branch: b)
                if $0.isDirectory { a.nlink = try worktrees.folderLinkCount(branch: b, path: $0.path) }
                return DirectoryEntry(name: $0.name, node: .worktree(branch: b, path: $0.path), attributes: a)
            }
        case .versions(let d):
            return try catalog.versions(datasetId: d).map {
                DirectoryEntry(name: PathBytes($0.name), node: .versionDir(version: $0.id!, tag: nil, path: .empty), attributes: try versionDirAttributes($0))
            }
        case .tags(let d):
            return try catalog.refs(datasetId: d, kind: .tag).compactMap { tag in
                guard let vid = tag.versionId, let v = try catalog.version(id: vid) else { return nil }
                return DirectoryEntry(name: PathBytes(tag.name), node: .versionDir(version: vid, tag: tag.id!, path: .empty), attributes: try versionDirAttributes(v))
            }
        case .versionDir(let v, let t, let path):
            guard try catalog.version(id: v) != nil else { return [] }
            let items = try trees.children(version: v, dir: path)
            return try items.values.sorted { $0.name < $1.name }.map {
                $0.isDirectory
                    ? DirectoryEntry(name: $0.name, node: .versionDir(version: v, tag: t, path: $0.path),
                                     attributes: try versionFolderAttributes($0, version: v))
                    : DirectoryEntry(name: $0.name, node: .versionFile(entry: $0.linkGroup ?? $0.entryId!), attributes: itemAttributes($0, readOnly: true))
            }
        default:
            return []
        }
    }

    func datasetAttributes(_ node: Node) throws -> NodeAttributes {
        switch node {
        case .dataset(let d):
            guard let ds = try catalog.dataset(id: d) else { throw ArtifactError(.notFound, "no such dataset") }
            return datasetDirAttributes(ds, writable: true)
        case .versions(let d), .tags(let d):
            guard let ds = try catalog.dataset(id: d) else { throw ArtifactError(.notFound, "no such dataset") }
            return datasetDirAttributes(ds, writable: false)
        case .worktree(let b, let path):
            guard let item = try worktrees.item(branch: b, path: path) else { throw ArtifactError(.notFound, "no such file", path: path.description) }
            var a = itemAttributes(item, readOnly: false, branch: b)
            if item.isDirectory { a.nlink = try worktrees.folderLinkCount(branch: b, path: path) }
            return a
        case .versionDir(let v, _, let path):
            guard let version = try catalog.version(id: v) else { throw ArtifactError(.notFound, "no such version") }
            // A committed folder shows its own mode (without write bits), owner and mtime.
            if !path.isEmpty, let folder = try trees.item(version: v, path: path) {
                return try versionFolderAttributes(folder, version: v)
            }
            return try versionDirAttributes(version)
        case .versionFile(let e):
            guard let entry = try catalog.entry(id: e) else { throw ArtifactError(.notFound, "no such file") }
            return itemAttributes(TreeItem(entry), readOnly: true)
        case .datasetLog(let d):
            guard let ds = try catalog.dataset(id: d) else { throw ArtifactError(.notFound, "no such dataset") }
            let bytes = try datasetLogs.text(catalog: catalog, datasetId: d)
            return NodeAttributes(isDirectory: false, mode: 0o444, size: Int64(bytes.utf8.count), uid: UInt32(ds.ownerUid),
                                  gid: UInt32(ds.ownerGid), mtimeNs: Int64((try catalog.newestVersionTime(datasetId: d) ?? ds.createdAt) * 1e9))
        default:
            throw ArtifactError(.notFound, "not a dataset node")
        }
    }

    func datasetContent(_ node: Node) throws -> NodeContent {
        switch node {
        case .worktree(let b, let path):
            guard let item = try worktrees.item(branch: b, path: path) else { throw ArtifactError(.notFound, "no such file", path: path.description) }
            if item.isDirectory { throw ArtifactError(.isDirectory, "is a folder", path: path.description) }
            if let upper = item.upper { return .staged(path: worktrees.upperPath(b, upper)) }
            guard let hash = item.blob else { throw ArtifactError(.corrupt, "file has no content", path: path.description) }
            return .blob(hash, size: item.size)
        case .versionFile(let e):
            guard let entry = try catalog.entry(id: e), let hash = entry.blob else {
                throw ArtifactError(.notFound, "no such file")
            }
            return .blob(hash, size: entry.size)
        case .datasetLog(let d):
            return .bytes(Array(try datasetLogs.text(catalog: catalog, datasetId: d).utf8))
        default:
            throw ArtifactError(.invalidArgument, "not a file")
        }
    }

    func datasetExtendedAttributes(_ node: Node) throws -> [(String, String)] {
        switch node {
        case .dataset(let d):
            guard let ds = try catalog.dataset(id: d) else { return [] }
            return [(ControlAttribute.dataset, ds.name)]
        case .worktree(let b, let path):
            guard let ref = try catalog.ref(id: b), let ds = try catalog.dataset(id: ref.datasetId),
                  let item = try worktrees.item(branch: b, path: path) else { return [] }
            var out = [(ControlAttribute.dataset, ds.name), (ControlAttribute.branch, ref.name)]
            if path.isEmpty {
                let head = try ref.versionId.flatMap { try catalog.version(id: $0)?.name }
                out.append((ControlAttribute.head, head ?? ""))
                out.append((ControlAttribute.uncommitted, try worktrees.hasChanges(branch: b) ? "true" : "false"))
                return out
            }
            out.append((ControlAttribute.path, path.description))
            if item.entryId != nil {
                if let blob = item.blob { out.append((ControlAttribute.sha256, blob.hex)) }
                if let v = try item.versionId.flatMap({ try catalog.version(id: $0) }) { out.append((ControlAttribute.version, v.name)) }
                if let schema = item.schema { out.append((ControlAttribute.schema, schema)) }
            }
            out.append((ControlAttribute.uncommitted, item.entryId == nil ? "true" : "false"))
            if let upper = item.upper, StagingMark.has(StagingMark.interrupted, at: PathBytes(worktrees.upperPath(b, upper))) {
                out.append((ControlAttribute.interrupted, "true"))
            }
            return out
        case .versions(let d), .tags(let d), .datasetLog(let d):
            // Every folder of a dataset names it, so `artifactfs log .` works anywhere in it.
            guard let ds = try catalog.dataset(id: d) else { return [] }
            return [(ControlAttribute.dataset, ds.name)]
        case .versionDir(let v, _, let path):
            guard let version = try catalog.version(id: v), let ds = try catalog.dataset(id: version.datasetId) else { return [] }
            var out = [(ControlAttribute.dataset, ds.name), (ControlAttribute.version, version.name)]
            if path.isEmpty { out.append((ControlAttribute.message, version.message)) } else { out.append((ControlAttribute.path, path.description)) }
            return out
        case .versionFile(let e):
            guard let entry = try catalog.entry(id: e),
                  let v = try catalog.version(id: entry.versionId), let ds = try catalog.dataset(id: entry.datasetId) else { return [] }
            var out = [(ControlAttribute.sha256, entry.blob?.hex ?? ""), (ControlAttribute.dataset, ds.name),
                       (ControlAttribute.version, v.name), (ControlAttribute.path, entry.path.description)]
            if let schema = entry.schema { out.append((ControlAttribute.schema, schema)) }
            return out
        default:
            return []
        }
    }

    func datasetLinkTarget(_ node: Node) throws -> PathBytes {
        switch node {
        case .worktree(let b, let path):
            return try worktrees.linkTarget(branch: b, path: path)
        case .versionFile(let e):
            guard let entry = try catalog.entry(id: e), entry.kind == .symlink,
                  let hash = entry.blob else { throw ArtifactError(.invalidArgument, "not a symbolic link") }
            return PathBytes(try store.blobs.read(hash))
        default:
            throw ArtifactError(.invalidArgument, "not a symbolic link")
        }
    }

    func datasetUserXattrs(_ node: Node) throws -> UserXattrs {
        switch node {
        case .worktree(let b, let path):
            return UserXattrs(encoded: try worktrees.item(branch: b, path: path)?.xattrs)
        case .versionFile(let e):
            return UserXattrs(encoded: try catalog.entry(id: e)?.xattrs.map { Array($0) })
        case .versionDir(let v, _, let path) where !path.isEmpty:
            return UserXattrs(encoded: try trees.item(version: v, path: path)?.xattrs)
        default:
            return UserXattrs()
        }
    }

    func datasetDirAttributes(_ ds: DatasetRecord, writable: Bool) -> NodeAttributes {
        dirAttributes(uid: UInt32(ds.ownerUid), gid: UInt32(ds.ownerGid), mtimeNs: Int64(ds.createdAt * 1e9), writable: writable)
    }

    /// A version's top folder; its link count is 2 + its folders, as on ext4.
    func versionDirAttributes(_ v: VersionRecord) throws -> NodeAttributes {
        var a = dirAttributes(uid: UInt32(v.authorUid), gid: 0, mtimeNs: Int64(v.createdAt * 1e9), writable: false)
        a.nlink = UInt32(2 + (try trees.subfolders(version: v.id, dir: .empty)).count)
        return a
    }

    /// A folder inside a version: its own mode (without write bits), owner and mtime, and a
    /// link count of 2 + its folders.
    func versionFolderAttributes(_ folder: TreeItem, version v: VersionID) throws -> NodeAttributes {
        var a = itemAttributes(folder, readOnly: true)
        a.nlink = UInt32(2 + (try trees.subfolders(version: v, dir: folder.path)).count)
        return a
    }

    /// Committed versions are read-only whatever mode their files were committed with.
    /// `branch`: the working tree the item is shown in. Only there do several names share one
    /// kernel inode by `linkIdentity` (scoped to the branch); a version's hard links are one
    /// node already (`.versionFile` of the group's first entry), and must never share an inode
    /// with a working tree, whose writes would then show through the version.
    func itemAttributes(_ item: TreeItem, readOnly: Bool, branch: RefID? = nil) -> NodeAttributes {
        var mode = UInt32(item.mode & 0o7777)
        if readOnly && item.kind != .symlink { mode &= ~0o222 }
        var a = NodeAttributes(isDirectory: item.isDirectory, mode: mode, size: item.isDirectory ? 0 : item.size,
                               uid: UInt32(item.uid), gid: UInt32(item.gid), mtimeNs: item.mtimeNs,
                               nlink: item.isDirectory ? 2 : UInt32(max(1, item.nlink)))
        a.kind = item.kind.fileKind ?? .regular
        a.rdev = UInt64(item.rdev)
        a.atimeNs = item.atimeNs
        a.ctimeNs = item.ctimeNs
        if item.nlink > 1, let branch {
            a.linkIdentity = item.upper.map { "upper-\($0)" } ?? item.linkGroup.map { "branch-\(branch)-entry-\($0)" }
        }
        a.blocks = item.blocks
        return a
    }
}

/// `.log` text per dataset, made again only when a version or a ref changed: `ls -l` asks for
/// its size on every listing, and a long history is costly to draw.
final class DatasetLogCache: Sendable {
    private let texts = Mutex<[DatasetID: (key: String, text: String)]>([:])

    func text(catalog: Catalog, datasetId: DatasetID) throws -> String {
        let key = try catalog.historyStamp(datasetId: datasetId)
        if let hit = texts.withLock({ $0[datasetId] }), hit.key == key { return hit.text }
        let text = try DatasetHistory.logText(catalog: catalog, datasetId: datasetId)
        texts.withLock { $0[datasetId] = (key, text) }
        return text
    }
}
