import Foundation

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
        let malformed = try store.catalog.malformedBlobNames()
        let known = Set(blobs.map(\.hash.hex)).union(malformed)
        for name in malformed {
            report.problems.append(Problem(kind: "bad_name", blob: name, detail: "catalog holds a blob name that is not a SHA-256"))
        }

        for (i, blob) in blobs.enumerated() {
            let hash = blob.hash
            let refs = counted[hash.hex] ?? 0
            if refs != blob.refcount {
                report.problems.append(Problem(kind: "refcount_mismatch", blob: hash.hex,
                                               detail: "refcount is \(blob.refcount) but \(refs) rows refer to it"))
            }
            if refs > 0 || blob.refcount > 0 {
                switch store.blobs.check(hash, expectedSize: blob.size) {
                case .ok: break
                case .missing:
                    report.problems.append(Problem(kind: "missing_blob", blob: hash.hex, detail: "referenced blob is not in objects/"))
                case .wrongSize(let actual):
                    report.problems.append(Problem(kind: "corrupt_blob", blob: hash.hex,
                                                   detail: "size is \(actual), catalog says \(blob.size)"))
                case .wrongHash(let actual):
                    report.problems.append(Problem(kind: "corrupt_blob", blob: hash.hex,
                                                   detail: "content hashes to \(actual.hex)"))
                }
            }
            report.blobsChecked += 1
            progress(i + 1, blobs.count)
        }
        for (hash, n) in counted where !known.contains(hash) {
            report.problems.append(Problem(kind: "unknown_blob", blob: hash, detail: "\(n) rows refer to a blob the catalog does not list"))
        }
        for (kind, rows) in try store.catalog.danglingRows() where rows > 0 {
            report.problems.append(Problem(kind: kind.rawValue, blob: nil, detail: kind.detail(rows)))
        }
        let referenced = Set(counted.keys)
        report.orphans = try store.blobs.allHashes().map(\.hex).filter { !referenced.contains($0) }.sorted()
        report.problems.sort { ($0.kind, $0.blob ?? "") < ($1.kind, $1.blob ?? "") }
        return report
    }
}
