import Foundation
import Synchronization

/// Resolves committed trees. A version stores only what it changed (parent-relative
/// entries), so a commit of k files writes k rows whatever the size of the tree; a path in
/// version v is the entry of that path written by the deepest version on v's ancestor
/// chain. Chains never change once written, so they are cached.
public final class VersionTrees: Sendable {
    let catalog: Catalog
    private let cache = Mutex(Cache())
    private struct Cache {
        var chains: [VersionID: Chain] = [:]
        /// Depth of every version a chain was built from. Versions are immutable, so it only
        /// grows (one entry per version: small next to the entries themselves).
        var depths: [VersionID: Int64] = [:]
    }
    private static let cachedChains = 256

    /// A version's ancestors, itself included: `ancestors[d]` is the one at depth d. A version
    /// x is on the chain when `ancestors[depth(x)] == x`, an O(1) test with O(depth) memory.
    struct Chain {
        let datasetId: DatasetID
        let ancestors: [VersionID]
    }

    public init(catalog: Catalog) { self.catalog = catalog }

    func chain(_ tx: CatalogTransaction, _ versionId: VersionID) throws -> Chain {
        if let c = cache.withLock({ $0.chains[versionId] }) { return c }
        guard let v = try tx.version(id: versionId) else {
            throw ArtifactError(.notFound, "no such version")
        }
        let ancestors: [VersionID]
        if let parent = v.parentId, let pc = cache.withLock({ $0.chains[parent] }) {
            // A new head whose parent is cached (every commit): extend it.
            ancestors = pc.ancestors + [versionId]
        } else {
            // Walk up through the dataset's versions, read in one query; no recursion, so a
            // long history cannot exhaust a FUSE thread's stack.
            var parentOf: [VersionID: VersionID] = [:], depthOf: [VersionID: Int64] = [:]
            try tx.versionLinks(datasetId: v.datasetId, maxDepth: v.depth) { id, parent, depth in
                depthOf[id] = depth
                if let parent { parentOf[id] = parent }
            }
            var list = [VersionID](repeating: VersionID(0), count: Int(v.depth) + 1)
            var current: VersionID? = versionId
            while let id = current, let d = depthOf[id] {
                list[Int(d)] = id
                current = parentOf[id]
            }
            ancestors = list
        }
        let c = Chain(datasetId: v.datasetId, ancestors: ancestors)
        cache.withLock { cache in
            for (d, id) in ancestors.enumerated() { cache.depths[id] = Int64(d) }
            if cache.chains.count >= Self.cachedChains { cache.chains.removeAll(keepingCapacity: true) }
            cache.chains[versionId] = c
        }
        return c
    }

    /// The depth of `versionId` when it is on chain `c`, else nil.
    fileprivate func depth(of versionId: VersionID, on c: Chain) -> Int64? {
        guard let d = cache.withLock({ $0.depths[versionId] }), d < c.ancestors.count, c.ancestors[Int(d)] == versionId else { return nil }
        return d
    }

    /// The entry at `path` in `versionId`; nil when absent or deleted.
    func item(_ tx: CatalogTransaction, version versionId: VersionID?, path: PathBytes) throws -> TreeItem? {
        guard let versionId else { return nil }
        let c = try chain(tx, versionId)
        var pick = Visible(trees: self, chain: c, key: \.path)
        try tx.entries(datasetId: c.datasetId, path: path) { pick.add($0) }
        return pick.items[path]
    }

    /// The entries directly in folder `dir` of `versionId`, by name.
    func children(_ tx: CatalogTransaction, version versionId: VersionID?, dir: PathBytes) throws -> [PathBytes: TreeItem] {
        guard let versionId else { return [:] }
        let c = try chain(tx, versionId)
        var pick = Visible(trees: self, chain: c, key: \.name)
        try tx.entries(datasetId: c.datasetId, dir: dir) { pick.add($0) }
        return pick.items
    }

    /// The folders directly in folder `dir` of `versionId`, by path: a folder's link count is
    /// 2 + their number, as on ext4. Reads only rows of paths that were ever folders there,
    /// not the folder's files.
    func subfolders(_ tx: CatalogTransaction, version versionId: VersionID?, dir: PathBytes) throws -> Set<PathBytes> {
        guard let versionId else { return [] }
        let c = try chain(tx, versionId)
        var pick = Visible(trees: self, chain: c, key: \.path)
        try tx.entriesOfFolders(datasetId: c.datasetId, in: dir) { pick.add($0) }
        return Set(pick.items.values.filter { $0.isDirectory && !$0.path.isEmpty }.map(\.path))
    }

    /// Every file and folder under `dir` (recursively), by path.
    func subtree(_ tx: CatalogTransaction, version versionId: VersionID?, dir: PathBytes) throws -> [TreeItem] {
        var out: [TreeItem] = []
        for (_, item) in try children(tx, version: versionId, dir: dir) {
            out.append(item)
            if item.isDirectory { out += try subtree(tx, version: versionId, dir: item.path) }
        }
        return out
    }

    /// The whole tree of a version, by path (for diff and verify).
    func allItems(_ tx: CatalogTransaction, version versionId: VersionID) throws -> [PathBytes: TreeItem] {
        let c = try chain(tx, versionId)
        // Entries off the chain (other branches) are skipped by `Visible`.
        var pick = Visible(trees: self, chain: c, key: \.path)
        try tx.entries(datasetId: c.datasetId) { pick.add($0) }
        return pick.items
    }

    // Each in its own read snapshot.

    /// The entry at `path` in `versionId`; nil when absent or deleted.
    public func item(version versionId: VersionID?, path: PathBytes) throws -> TreeItem? {
        try catalog.reading { try item($0, version: versionId, path: path) }
    }

    /// The entries directly in folder `dir` of `versionId`, by name.
    public func children(version versionId: VersionID?, dir: PathBytes) throws -> [PathBytes: TreeItem] {
        try catalog.reading { try children($0, version: versionId, dir: dir) }
    }

    /// The folders directly in folder `dir` of `versionId`, by path.
    public func subfolders(version versionId: VersionID?, dir: PathBytes) throws -> Set<PathBytes> {
        try catalog.reading { try subfolders($0, version: versionId, dir: dir) }
    }

    /// The whole tree of a version, by path.
    public func allItems(version versionId: VersionID) throws -> [PathBytes: TreeItem] {
        try catalog.reading { try allItems($0, version: versionId) }
    }

    /// The one rule of a tree: of the rows written for a key, the one by the deepest version on
    /// the chain wins, and a deletion hides the key. Rows off the chain are ignored.
    private struct Visible<Key: Hashable> {
        let trees: VersionTrees
        let chain: Chain
        let key: (EntryRecord) -> Key
        var best: [Key: (depth: Int64, entry: EntryRecord)] = [:]

        init(trees: VersionTrees, chain: Chain, key: @escaping (EntryRecord) -> Key) {
            self.trees = trees
            self.chain = chain
            self.key = key
        }

        mutating func add(_ e: EntryRecord) {
            guard let d = trees.depth(of: e.versionId, on: chain) else { return }
            let k = key(e)
            if let b = best[k], b.depth >= d { return }
            best[k] = (d, e)
        }

        var items: [Key: TreeItem] {
            var out: [Key: TreeItem] = [:]
            for (k, b) in best where b.entry.kind != .deleted { out[k] = TreeItem(b.entry) }
            return out
        }
    }
}
