@_spi(CatalogTables) import ArtifactCore
import ArtifactPipeline
import Foundation
import GRDB
import XCTest

/// A fresh store in its own temp folder for every test (the same approach as the core tests'
/// StoreTestCase), plus helpers to register runs and read back jobs, outputs and blobs.
class PipelineTestCase: XCTestCase {
    private(set) var root: String!
    private(set) var store: ArtifactStore!
    private(set) var queue: JobQueue!

    override func setUpWithError() throws {
        try super.setUpWithError()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("artifactfs-pipeline-unit-\(UUID().uuidString)").path
        store = try ArtifactStore(root: root, create: true)
        queue = JobQueue(catalog: store.catalog)
    }

    override func tearDownWithError() throws {
        queue = nil
        store = nil
        if let root { try? FileManager.default.removeItem(atPath: root) }
        root = nil
        try super.tearDownWithError()
    }

    // MARK: helpers

    func makeProject(_ name: String = "alpha") throws -> ProjectID {
        try XCTUnwrap(store.createProject(name: name, uid: 1000).id)
    }

    /// Stores `content` as a blob and describes it as a file at `path` under raw_source/.
    func entry(_ path: String, _ content: String) throws -> StagedEntry {
        let bytes = Array(content.utf8)
        let hash = try store.blobs.put(bytes)
        return StagedEntry(path: PathBytes(path), hash: hash, size: Int64(bytes.count), mode: 0o644,
                           mtimeNs: 1_700_000_000_000_000_000, uid: 1000, gid: 1000)
    }

    /// Registers a sealed run that has not been handed to the pipeline yet.
    func sealedRun(_ projectId: ProjectID, _ files: [(String, String)]) throws -> RunRecord {
        let entries = try files.map { try entry($0.0, $0.1) }
        return try RunRegistrar(catalog: store.catalog).register(projectId: projectId, entries: entries, uid: 1000,
                                                                 completed: false)
    }

    func run(_ id: RunID?) throws -> RunRecord {
        try XCTUnwrap(store.catalog.run(id: XCTUnwrap(id)))
    }

    func jobs(_ runId: RunID?, stage: String? = nil) throws -> [JobRecord] {
        try JobQueue(catalog: store.catalog).jobRecords(runId: XCTUnwrap(runId)).filter { stage == nil || $0.stage == stage }
    }

    func outputs(_ runId: RunID?, stage: String? = nil) throws -> [OutputRecord] {
        try store.catalog.outputs(runId: XCTUnwrap(runId)).filter { stage == nil || $0.stage == stage }
    }

    func refcount(_ hash: BlobHash) throws -> Int64? {
        try store.catalog.blob(hash)?.refcount
    }

    func blobContent(_ hash: BlobHash) throws -> String {
        let path = store.blobs.path(of: hash)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// A stage output already durable in the blob store. `JobQueue.Output` has no public
    /// memberwise initializer, so it is built through its public Codable conformance.
    func output(_ path: String, _ content: String) throws -> JobQueue.Output {
        let bytes = Array(content.utf8)
        let hash = try store.blobs.put(bytes)
        let json = try JSONSerialization.data(withJSONObject: ["path": path, "blob": hash.hex, "size": bytes.count, "mode": 0o644])
        return try JSONDecoder().decode(JobQueue.Output.self, from: json)
    }

    func sql<T>(_ body: (Database) throws -> T) throws -> T {
        try store.catalog.ownerWrite(body)
    }
}

/// Asserts that `text` is rejected with an error on `line` whose message holds every string of `contains`.
func assertRejected(_ text: String, line: Int?, _ contains: [String], file: StaticString = #filePath, line testLine: UInt = #line) {
    do {
        let p = try PipelineDefinition.parse(text)
        XCTFail("expected a PipelineDefinitionError, got a pipeline of \(p.stages.map(\.name))", file: file, line: testLine)
    } catch let e as PipelineDefinitionError {
        XCTAssertEqual(e.line, line, "wrong line for: \(e)", file: file, line: testLine)
        for s in contains {
            XCTAssertTrue(e.message.contains(s), "message \"\(e.message)\" should mention \"\(s)\"", file: file, line: testLine)
        }
        if let line { XCTAssertTrue(e.description.hasPrefix("line \(line): "), e.description, file: file, line: testLine) }
    } catch {
        XCTFail("expected a PipelineDefinitionError, got \(error)", file: file, line: testLine)
    }
}

/// The example of SPEC §4.
let specExample = """
    [[stage]]
    name = "words"
    command = ["sh", "-c", "wc -w < {input} > {output_dir}/{stem}.count"]
    inputs = "raw_source/**/*.txt"

    [[stage]]
    name = "report"
    command = ["python3", "report.py", "{input}", "{output_dir}"]
    inputs = "words/*.count"
    depends_on = ["words"]
    retries = 2
    timeout = "30s"

    """
