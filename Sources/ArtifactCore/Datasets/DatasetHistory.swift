import Foundation
@_exported import TabularSchemas

/// One version as `log` shows it.
public struct VersionLogEntry: Codable, Sendable, Equatable {
    public var id: String
    public var parents: [String]
    public var time: String
    public var authorUid: Int64
    public var author: String
    public var message: String
    public var branch: String
    public var changes: Int64
    /// Branches and tags that point here.
    public var refs: [String]
    /// Schemas of the tabular files this version added or changed, by path.
    public var schemas: NameKeyed<FileSchema>
    /// Schemas left out of `schemas` by a per-version limit (text output only; JSON has all).
    public var omittedSchemas = 0

    enum CodingKeys: String, CodingKey {
        case id, parents, time, authorUid = "author_uid", author, message, branch, changes, refs, schemas
    }
}

/// What changed between two versions.
public struct DatasetDiff: Codable, Sendable, Equatable {
    public struct FileChange: Codable, Sendable, Equatable {
        public var path: PathBytes
        public var kind: String
        public var fromSha256: String?
        public var toSha256: String?
        public var fromSize: Int64?
        public var toSize: Int64?
        public var columns: [ColumnChange]
        enum CodingKeys: String, CodingKey {
            case path, pathBytes = "path_bytes", kind, fromSha256 = "from_sha256", toSha256 = "to_sha256", fromSize = "from_size", toSize = "to_size", columns
        }

        public init(path: PathBytes, kind: String, fromSha256: String?, toSha256: String?, fromSize: Int64?, toSize: Int64?,
                    columns: [ColumnChange]) {
            self.path = path; self.kind = kind; self.fromSha256 = fromSha256; self.toSha256 = toSha256
            self.fromSize = fromSize; self.toSize = toSize; self.columns = columns
        }

        /// `path` as text, plus `path_bytes` (base64) when it is not UTF-8: `PathBytes.jsonFields`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            let fields = path.jsonFields("path")
            try c.encode(fields["path"]!, forKey: .path)
            try c.encodeIfPresent(fields["path_bytes"], forKey: .pathBytes)
            try c.encode(kind, forKey: .kind)
            try c.encodeIfPresent(fromSha256, forKey: .fromSha256)
            try c.encodeIfPresent(toSha256, forKey: .toSha256)
            try c.encodeIfPresent(fromSize, forKey: .fromSize)
            try c.encodeIfPresent(toSize, forKey: .toSize)
            try c.encode(columns, forKey: .columns)
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let b64 = try c.decodeIfPresent(String.self, forKey: .pathBytes), let data = Data(base64Encoded: b64) {
                path = PathBytes(Array(data))
            } else {
                path = PathBytes(try c.decode(String.self, forKey: .path))
            }
            kind = try c.decode(String.self, forKey: .kind)
            fromSha256 = try c.decodeIfPresent(String.self, forKey: .fromSha256)
            toSha256 = try c.decodeIfPresent(String.self, forKey: .toSha256)
            fromSize = try c.decodeIfPresent(Int64.self, forKey: .fromSize)
            toSize = try c.decodeIfPresent(Int64.self, forKey: .toSize)
            columns = try c.decode([ColumnChange].self, forKey: .columns)
        }
    }
    public var from: String
    public var to: String
    public var added: [FileChange]
    public var removed: [FileChange]
    public var changed: [FileChange]
}

/// `log`, `.log` and `diff` of a dataset.
public enum DatasetHistory {
    /// Text shows this many schemas per version; a version that adds 100,000 CSV files would
    /// otherwise print 100,000 lines. `--json` has them all.
    public static let schemasShownPerVersion = 10

    /// Which versions `log` shows (`git log`'s `BRANCH`, `-- PATH` and `-n`).
    public struct LogFilter: Sendable {
        /// Only the versions the branch's head descends from (its head first).
        public var branch: String?
        /// Only the versions that wrote this path or something under it.
        public var path: PathBytes?
        /// At most this many versions, the newest.
        public var limit: Int?
        public init(branch: String? = nil, path: PathBytes? = nil, limit: Int? = nil) {
            self.branch = branch; self.path = path; self.limit = limit
        }
    }

    /// Every version `filter` keeps, newest first, with at most `schemaLimit` schemas each (nil:
    /// all). Throws `.notFound` for a branch the dataset does not have.
    public static func log(catalog: Catalog, datasetId: DatasetID, filter: LogFilter = LogFilter(),
                           schemaLimit: Int? = nil) throws -> [VersionLogEntry] {
        try catalog.reading { tx in
            let all = try tx.versionsNewestFirst(datasetId: datasetId)
            var versions = all
            if let branch = filter.branch {
                guard let ref = try tx.refs(datasetId: datasetId).first(where: { $0.kind == .branch && $0.name == branch }) else {
                    throw ArtifactError(.notFound, "no such branch (artifactfs branch DATASET lists them)", path: "@\(branch)")
                }
                let byId = Dictionary(uniqueKeysWithValues: all.map { ($0.id!, $0) })
                var reachable = Set<VersionID>()
                var next = ref.versionId
                while let id = next, reachable.insert(id).inserted { next = byId[id]?.parentId }
                versions = versions.filter { reachable.contains($0.id!) }
            }
            if let path = filter.path {
                let touching = try tx.versionsTouching(datasetId: datasetId, path: path)
                versions = versions.filter { touching.contains($0.id!) }
            }
            if let limit = filter.limit { versions = Array(versions.prefix(limit)) }
            let names = Dictionary(uniqueKeysWithValues: all.map { ($0.id!, $0.name) })
            var refs: [VersionID: [String]] = [:]
            for r in try tx.refs(datasetId: datasetId) {
                guard let v = r.versionId else { continue }
                refs[v, default: []].append(r.kind == .branch ? "@\(r.name)" : "tag: \(r.name)")
            }
            // Until gc removes them (`VersionRetention`), a deleted branch's versions stay, named.
            for d in try tx.deletedBranches(datasetId: datasetId) {
                guard let name = d.version, let v = versions.first(where: { $0.name == name }) else { continue }
                refs[v.id!, default: []].append("deleted @\(d.name)")
            }
            var schemas: [VersionID: NameKeyed<FileSchema>] = [:]
            var omitted: [VersionID: Int] = [:]
            let shown = Set(versions.map { $0.id! })
            try tx.forEachSchema(datasetId: datasetId) { vid, path, text in
                guard shown.contains(vid) else { return }
                if let limit = schemaLimit, schemas[vid, default: NameKeyed()].count >= limit {
                    omitted[vid, default: 0] += 1
                    return
                }
                if let s = try? JSONDecoder().decode(FileSchema.self, from: Data(text.utf8)) {
                    schemas[vid, default: NameKeyed()][path] = s
                }
            }
            return versions.map { v in
                VersionLogEntry(id: v.name, parents: v.parentId.flatMap { names[$0] }.map { [$0] } ?? [],
                                time: iso8601(v.createdAt), authorUid: v.authorUid, author: userName(v.authorUid),
                                message: v.message, branch: v.branch, changes: v.changes, refs: refs[v.id!] ?? [],
                                schemas: schemas[v.id!] ?? NameKeyed(), omittedSchemas: omitted[v.id!] ?? 0)
            }
        }
    }

    /// The log drawn as a graph, like `git log --graph`: one lane per line of descent.
    /// `oneline`: each version on one line, as `git log --graph --oneline`.
    public static func graph(_ entries: [VersionLogEntry], graph: Bool = true, oneline: Bool = false) -> String {
        if entries.isEmpty { return "(no versions yet)\n" }
        var out = ""
        var lanes: [String?] = []
        for e in entries {
            var lane: Int
            if graph {
                var matching = lanes.indices.filter { lanes[$0] == e.id }
                if matching.isEmpty { lanes.append(e.id); matching = [lanes.count - 1] }
                lane = matching[0]
                // Lines of descent that meet at this version join its lane.
                for k in matching.dropFirst().reversed() {
                    var line = ""
                    for j in 0..<lanes.count {
                        if j == k { line += "/ " } else if j == k - 1 { line += "|" } else if j > k { line += " /" } else { line += "| " }
                    }
                    out += line.trimmingCharacters(in: .whitespaces) + "\n"
                    lanes.remove(at: k)
                }
                lane = min(lane, lanes.count - 1)
            } else {
                lane = 0
            }
            let prefix = graph ? lanes.indices.map { $0 == lane ? "* " : "| " }.joined() : ""
            let cont = graph ? lanes.indices.map { _ in "| " }.joined() : ""
            let refs = e.refs.isEmpty ? "" : " (\(e.refs.joined(separator: ", ")))"
            if oneline {
                out += prefix + Self.oneline([e])
                if graph {
                    if let parent = e.parents.first { lanes[lane] = parent } else { lanes.remove(at: lane) }
                }
                continue
            }
            out += "\(prefix)version \(e.id)\(refs)\n"
            out += "\(cont)Author: \(e.author) (uid \(e.authorUid))\n"
            out += "\(cont)Date:   \(e.time)\n"
            out += "\(cont)\n"
            for line in e.message.split(separator: "\n", omittingEmptySubsequences: false) { out += "\(cont)    \(line)\n" }
            for (name, s) in e.schemas.sorted {
                let path = name.quoted
                let cols = s.columns.map { "\($0.name):\($0.type)" }.joined(separator: ", ")
                out += "\(cont)    schema \(path): \(plural(s.rows, "row")) [\(cols)]\(s.error.map { " (\($0))" } ?? "")\n"
            }
            if e.omittedSchemas > 0 {
                out += "\(cont)    ... and \(e.omittedSchemas) more tabular files (artifactfs log --json lists every schema)\n"
            }
            if graph {
                if let parent = e.parents.first { lanes[lane] = parent } else { lanes.remove(at: lane) }
                if !lanes.isEmpty { out += lanes.indices.map { _ in "| " }.joined().trimmingCharacters(in: .whitespaces) + "\n" }
            } else {
                out += "\n"
            }
        }
        return out
    }

    /// One line per version, like `git log --oneline`: id, refs, the message's first line.
    public static func oneline(_ entries: [VersionLogEntry]) -> String {
        entries.map { e in
            let refs = e.refs.isEmpty ? "" : " (\(e.refs.joined(separator: ", ")))"
            let subject = e.message.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return "\(e.id)\(refs) \(subject)\n"
        }.joined()
    }

    public static func logText(catalog: Catalog, datasetId: DatasetID) throws -> String {
        graph(try log(catalog: catalog, datasetId: datasetId, schemaLimit: schemasShownPerVersion))
    }

    /// Files added, removed and changed from `a` to `b`, with column changes of tabular files.
    public static func diff(catalog: Catalog, trees: VersionTrees, from a: VersionRecord, to b: VersionRecord) throws -> DatasetDiff {
        let (left, right) = try catalog.reading { tx in
            (try trees.allItems(tx, version: a.id!), try trees.allItems(tx, version: b.id!))
        }
        return compare(from: a.name, left, to: b.name, right)
    }

    /// Files added, removed and changed from `a` to the working tree of a branch (`@NAME`): its
    /// head plus what the next commit would record (`DatasetCommitter.pendingChanges`), so
    /// written files are hashed and tabular ones read for their columns.
    public static func diff(catalog: Catalog, committer: DatasetCommitter, from a: VersionRecord,
                            workingTree branchId: RefID) throws -> DatasetDiff {
        let trees = committer.worktrees.trees
        let pending = try committer.pendingChanges(branch: branchId)
        let (left, head, name) = try catalog.reading { tx in
            let (ref, _) = try committer.worktrees.head(tx, branchId)
            return (try trees.allItems(tx, version: a.id!), try ref.versionId.map { try trees.allItems(tx, version: $0) } ?? [:], ref.name)
        }
        var right = head
        for change in pending { right[change.path] = change.next }
        // A path whose folder is gone is gone too (each removal is a row, but be sure).
        right = right.filter { path, _ in
            var dir = path.parent
            while !dir.isEmpty {
                guard right[dir]?.isDirectory == true else { return false }
                dir = dir.parent
            }
            return true
        }
        return compare(from: a.name, left, to: "@\(name)", right)
    }

    /// What changed from tree `left` (named `a`) to tree `right` (named `b`): files only (a
    /// folder is not a change of its own), by bytes, kind, mode, owner and `user.*`
    /// attributes: what a version records of a file.
    static func compare(from a: String, _ left: [PathBytes: TreeItem], to b: String, _ right: [PathBytes: TreeItem]) -> DatasetDiff {
        func schema(_ item: TreeItem?) -> FileSchema? {
            item?.schema.flatMap { try? JSONDecoder().decode(FileSchema.self, from: Data($0.utf8)) }
        }
        var diff = DatasetDiff(from: a, to: b, added: [], removed: [], changed: [])
        for path in Set(left.keys).union(right.keys).sorted() {
            let l = left[path], r = right[path]
            if l?.kind == .dir && r?.kind == .dir { continue }
            let lf = l?.kind.fileKind != nil ? l : nil, rf = r?.kind.fileKind != nil ? r : nil
            if lf == nil && rf == nil { continue }
            var change = DatasetDiff.FileChange(path: path, kind: "", fromSha256: lf?.blob?.hex, toSha256: rf?.blob?.hex,
                                                fromSize: lf?.size, toSize: rf?.size,
                                                columns: SchemaInference.columnChanges(from: schema(lf), to: schema(rf)))
            if lf == nil { change.kind = "added"; diff.added.append(change) }
            else if rf == nil { change.kind = "removed"; diff.removed.append(change) }
            else if lf!.blob != rf!.blob || lf!.mode != rf!.mode || lf!.kind != rf!.kind || lf!.uid != rf!.uid || lf!.gid != rf!.gid
                        || UserXattrs(encoded: lf!.xattrs) != UserXattrs(encoded: rf!.xattrs) {
                change.kind = "changed"; diff.changed.append(change)
            }
        }
        return diff
    }

    public static func diffText(_ d: DatasetDiff) -> String {
        var out = ""
        let all = (d.added.map { ("A", $0) } + d.removed.map { ("D", $0) } + d.changed.map { ("M", $0) }).sorted { $0.1.path < $1.1.path }
        for (mark, c) in all {
            out += "\(mark) \(c.path.quoted)\n"
            // Column changes matter for changed files; an added or removed file's schema is in `log`.
            for col in c.columns where mark == "M" {
                switch col.kind {
                case .added: out += "    + column \(col.column) (\(col.to ?? "?"))\n"
                case .removed: out += "    - column \(col.column) (\(col.from ?? "?"))\n"
                case .typeChanged: out += "    ~ column \(col.column): \(col.from ?? "?") -> \(col.to ?? "?")\n"
                }
            }
        }
        if all.isEmpty { out = "no differences between \(d.from) and \(d.to)\n" }
        return out
    }

    public static func iso8601(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    static func userName(_ uid: Int64) -> String {
        guard let pw = getpwuid(uid_t(uid)), let name = pw.pointee.pw_name else { return String(uid) }
        return String(validatingCString: name) ?? String(uid)  // a user name, not a file name
    }
}
