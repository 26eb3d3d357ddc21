import Foundation
import GRDB

/// Checks a store: every referenced blob exists and hashes to its name, reference counts
/// match the rows that refer to them, and rows point at blobs the catalog knows.
/// Read-only; safe while the store is mounted.
public struct Verifier {
    public struct Problem: Codable, Sendable, Equatable {
        public var kind: String
        public var blob: String?
        public var detail: String
    }

    public struct Report: Codable, Sendable {
        public var blobsChecked = 0
        public var filesChecked = 0
        public var problems: [Problem] = []
        /// Blobs on disk that nothing refers to (left by an interrupted seal); `gc` removes them.
        public var orphans: [String] = []
        public var ok: Bool { problems.isEmpty }

        enum CodingKeys: String, CodingKey {
            case ok, problems, orphans
            case blobsChecked = "blobs_checked", filesChecked = "files_checked"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(blobsChecked, forKey: .blobsChecked)
            try c.encode(filesChecked, forKey: .filesChecked)
            try c.encode(problems, forKey: .problems)
            try c.encode(orphans, forKey: .orphans)
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            blobsChecked = try c.decode(Int.self, forKey: .blobsChecked)
            filesChecked = try c.decode(Int.self, forKey: .filesChecked)
            problems = try c.decode([Problem].self, forKey: .problems)
            orphans = try c.decode([String].self, forKey: .orphans)
        }
    }

    let store: ArtifactStore
    public init(store: ArtifactStore) { self.store = store }

    /// `progress` is called after each blob with (done, total).
    public func run(progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        var report = Report()
        let blobs = try store.catalog.blobs()
        let counted = try store.catalog.countedReferences()
        report.filesChecked = Int(counted.values.reduce(0, +))
        let known = Set(blobs.map(\.hash))

        for (i, blob) in blobs.enumerated() {
            guard let hash = BlobHash(hex: blob.hash) else {
                report.problems.append(Problem(kind: "bad_name", blob: blob.hash, detail: "catalog holds a blob name that is not a SHA-256"))
                continue
            }
            let refs = counted[blob.hash] ?? 0
            if refs != blob.refcount {
                report.problems.append(Problem(kind: "refcount_mismatch", blob: blob.hash,
                                               detail: "refcount is \(blob.refcount) but \(refs) rows refer to it"))
            }
            if refs > 0 || blob.refcount > 0 {
                switch store.blobs.check(hash, expectedSize: blob.size) {
                case .ok: break
                case .missing:
                    report.problems.append(Problem(kind: "missing_blob", blob: blob.hash, detail: "referenced blob is not in objects/"))
                case .wrongSize(let actual):
                    report.problems.append(Problem(kind: "corrupt_blob", blob: blob.hash,
                                                   detail: "size is \(actual), catalog says \(blob.size)"))
                case .wrongHash(let actual):
                    report.problems.append(Problem(kind: "corrupt_blob", blob: blob.hash,
                                                   detail: "content hashes to \(actual.hex)"))
                }
            }
            report.blobsChecked += 1
            progress(i + 1, blobs.count)
        }
        for (hash, n) in counted where !known.contains(hash) {
            report.problems.append(Problem(kind: "unknown_blob", blob: hash, detail: "\(n) rows refer to a blob the catalog does not list"))
        }
        let leftovers = try store.catalog.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM file WHERE superseded_by IS NOT NULL AND superseded_by NOT IN (SELECT id FROM file)") ?? 0 }
        if leftovers > 0 {
            report.problems.append(Problem(kind: "dangling_superseded_by", blob: nil, detail: "\(leftovers) rows are superseded by a row that does not exist"))
        }
        // Datasets: every pointer and parent names a version of the same dataset, and every
        // committed file names its content.
        let datasetChecks: [(String, String)] = [
            ("dangling_ref", "SELECT COUNT(*) FROM ref r WHERE r.version_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version v WHERE v.id = r.version_id AND v.dataset_id = r.dataset_id)"),
            ("dangling_parent", "SELECT COUNT(*) FROM version c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version p WHERE p.id = c.parent_id AND p.dataset_id = c.dataset_id AND p.depth = c.depth - 1)"),
            ("file_entry_without_blob", "SELECT COUNT(*) FROM entry WHERE kind IN ('file', 'symlink') AND blob IS NULL"),
            ("worktree_blob_unknown", "SELECT COUNT(*) FROM worktree_change w WHERE w.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blob b WHERE b.hash = w.blob)"),
        ]
        for (kind, sql) in datasetChecks {
            let n = try store.catalog.read { try Int.fetchOne($0, sql: sql) ?? 0 }
            if n > 0 { report.problems.append(Problem(kind: kind, blob: nil, detail: "\(n) dataset rows fail this check")) }
        }
        let referenced = Set(counted.keys)
        report.orphans = try store.blobs.allHashes().map(\.hex).filter { !referenced.contains($0) }.sorted()
        report.problems.sort { ($0.kind, $0.blob ?? "") < ($1.kind, $1.blob ?? "") }
        return report
    }
}
