import Foundation
import GRDB
import Synchronization

/// Resolves committed trees. A version stores only what it changed (parent-relative
/// entries), so a commit of k files writes k rows whatever the size of the tree; a path in
/// version v is the entry of that path written by the deepest version on v's ancestor
/// chain. Chains never change once written, so they are cached.
public final class VersionTrees: Sendable {
    let catalog: Catalog
    private let cache = Mutex(Cache())
    private struct Cache {
        var chains: [Int64: Chain] = [:]
        /// Depth of every version a chain was built from. Versions are immutable, so it only
        /// grows (one entry per version: small next to the entries themselves).
        var depths: [Int64: Int64] = [:]
    }
    private static let cachedChains = 256

    /// A version's ancestors, itself included: `ancestors[d]` is the one at depth d. A version
    /// x is on the chain when `ancestors[depth(x)] == x`, an O(1) test with O(depth) memory.
    struct Chain {
        let datasetId: Int64
        let ancestors: [Int64]
    }

    public init(catalog: Catalog) { self.catalog = catalog }

    func chain(_ db: Database, _ versionId: Int64) throws -> Chain {
        if let c = cache.withLock({ $0.chains[versionId] }) { return c }
        guard let v = try VersionRecord.fetchOne(db, key: versionId) else {
            throw ArtifactError(.notFound, "no such version")
        }
        let ancestors: [Int64]
        if let parent = v.parentId, let pc = cache.withLock({ $0.chains[parent] }) {
            // A new head whose parent is cached (every commit): extend it.
            ancestors = pc.ancestors + [versionId]
        } else {
            // Walk up through the dataset's versions, read in one query; no recursion, so a
            // long history cannot exhaust a FUSE thread's stack.
            var parentOf: [Int64: Int64] = [:], depthOf: [Int64: Int64] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT id, parent_id, depth FROM version WHERE dataset_id = ? AND depth <= ?",
                                           arguments: [v.datasetId, v.depth])
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                depthOf[id] = row["depth"]
                if let p: Int64 = row["parent_id"] { parentOf[id] = p }
            }
            var list = [Int64](repeating: 0, count: Int(v.depth) + 1)
            var current: Int64? = versionId
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
    private func depth(of versionId: Int64, on c: Chain) -> Int64? {
        guard let d = cache.withLock({ $0.depths[versionId] }), d < c.ancestors.count, c.ancestors[Int(d)] == versionId else { return nil }
        return d
    }

    /// The entry at `path` in `versionId`; nil when absent or deleted.
    public func item(_ db: Database, version versionId: Int64?, path: PathBytes) throws -> TreeItem? {
        guard let versionId else { return nil }
        let c = try chain(db, versionId)
        let statement = try db.cachedStatement(sql: "SELECT * FROM entry WHERE dataset_id = ? AND path = ?")
        return try visible(EntryRecord.fetchCursor(statement, arguments: [c.datasetId, path]), on: c, by: \.path)[path]
    }

    /// The entries directly in folder `dir` of `versionId`, by name.
    public func children(_ db: Database, version versionId: Int64?, dir: PathBytes) throws -> [PathBytes: TreeItem] {
        guard let versionId else { return [:] }
        let c = try chain(db, versionId)
        let rows = try EntryRecord.fetchCursor(db, sql: "SELECT * FROM entry WHERE dataset_id = ? AND dir = ?", arguments: [c.datasetId, dir])
        return try visible(rows, on: c, by: \.name)
    }

    /// The folders directly in folder `dir` of `versionId`, by path: a folder's link count is
    /// 2 + their number, as on ext4. Reads only rows of paths that were ever folders there
    /// (partial index `entry_folders`), not the folder's files.
    public func subfolders(_ db: Database, version versionId: Int64?, dir: PathBytes) throws -> Set<PathBytes> {
        guard let versionId else { return [] }
        let c = try chain(db, versionId)
        let statement = try db.cachedStatement(sql: """
            SELECT * FROM entry WHERE dataset_id = ? AND path IN
                (SELECT path FROM entry WHERE dataset_id = ? AND dir = ? AND kind = 'dir')
            """)
        let rows = try EntryRecord.fetchCursor(statement, arguments: [c.datasetId, c.datasetId, dir])
        return Set(try visible(rows, on: c, by: \.path).values.filter { $0.isDirectory && !$0.path.isEmpty }.map(\.path))
    }

    /// Every file and folder under `dir` (recursively), by path.
    public func subtree(_ db: Database, version versionId: Int64?, dir: PathBytes) throws -> [TreeItem] {
        var out: [TreeItem] = []
        for (_, item) in try children(db, version: versionId, dir: dir) {
            out.append(item)
            if item.isDirectory { out += try subtree(db, version: versionId, dir: item.path) }
        }
        return out
    }

    /// The whole tree of a version, by path (for diff and verify).
    public func allItems(_ db: Database, version versionId: Int64) throws -> [PathBytes: TreeItem] {
        let c = try chain(db, versionId)
        // By dataset, not by an IN list of ancestors: a long history would outgrow SQLite's
        // statement length. Entries off the chain (other branches) are skipped in `visible`.
        return try visible(EntryRecord.fetchCursor(db, sql: "SELECT * FROM entry WHERE dataset_id = ?", arguments: [c.datasetId]),
                           on: c, by: \.path)
    }

    /// The one rule of a tree: of the rows written for a key, the one by the deepest version on
    /// chain `c` wins, and a deletion hides the key. Rows off the chain are ignored.
    private func visible<C: Cursor, Key: Hashable>(_ rows: C, on c: Chain, by key: (EntryRecord) -> Key) throws -> [Key: TreeItem]
    where C.Element == EntryRecord {
        var best: [Key: (depth: Int64, entry: EntryRecord)] = [:]
        while let e = try rows.next() {
            guard let d = depth(of: e.versionId, on: c) else { continue }
            let k = key(e)
            if let b = best[k], b.depth >= d { continue }
            best[k] = (d, e)
        }
        var out: [Key: TreeItem] = [:]
        for (k, b) in best where b.entry.kind != .deleted { out[k] = TreeItem(b.entry) }
        return out
    }
}
