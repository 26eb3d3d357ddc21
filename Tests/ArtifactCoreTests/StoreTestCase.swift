@_spi(CatalogTables) import ArtifactCore
import Foundation
import GRDB
import XCTest

/// A fresh store in its own temp folder for every test, removed in tearDown even when the
/// test fails.
class StoreTestCase: XCTestCase {
    private(set) var root: String!
    private(set) var store: ArtifactStore!

    /// 2026-11-21 14:30:05 UTC, so run ids are predictable: 20261121T143005Z-001.
    static let baseTime = Date(timeIntervalSince1970: 1_795_271_405)

    override func setUpWithError() throws {
        try super.setUpWithError()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("artifactfs-unit-\(UUID().uuidString)").path
        store = try ArtifactStore(root: root, create: true)
    }

    override func tearDownWithError() throws {
        store = nil
        if let root { try? FileManager.default.removeItem(atPath: root) }
        root = nil
        try super.tearDownWithError()
    }

    // MARK: helpers

    func makeProject(_ name: String = "alpha", uid: Int64 = 1000) throws -> ProjectID {
        try XCTUnwrap(store.createProject(name: name, uid: uid).id)
    }

    /// Stores `content` as a blob and describes it as a file at `path` under raw_source/.
    func entry(_ path: String, _ content: String, mode: Int64 = 0o644) throws -> StagedEntry {
        let bytes = Array(content.utf8)
        let hash = try store.blobs.put(bytes)
        return StagedEntry(path: PathBytes(path), hash: hash, size: Int64(bytes.count), mode: mode,
                           mtimeNs: 1_700_000_000_000_000_000, uid: 1000, gid: 1000)
    }

    func register(_ projectId: ProjectID, _ entries: [StagedEntry], directories: [String] = [],
                  completed: Bool = true, cleanup: [(path: String, ino: UInt64)] = [],
                  now: Date = StoreTestCase.baseTime) throws -> RunRecord {
        try RunRegistrar(catalog: store.catalog).register(
            projectId: projectId, entries: entries, directories: directories.map { StagedDirectory(relativePath: PathBytes($0)) }, uid: 1000,
            completed: completed, cleanup: cleanup.map { (PathBytes($0.path), $0.ino) }, now: now)
    }

    /// Writes a file below a project's incoming/ folder on disk, creating its folders.
    @discardableResult
    func stage(_ projectId: ProjectID, _ relativePath: String, _ content: String, mode: Int = 0o644) throws -> String {
        let full = store.staging.incomingPath(projectId: projectId) + "/" + relativePath
        let fm = FileManager.default
        try fm.createDirectory(atPath: pathParent(full), withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: full, contents: Data(content.utf8)), "cannot write \(full)")
        try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
        return full
    }

    func hash(_ content: String) throws -> BlobHash {
        // From a scratch file rather than put(), which would leave an orphan blob behind.
        let path = root + "/hash-\(UUID().uuidString)"
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try BlobStore.hash(fileAt: PathBytes(path)).0
    }

    func blobFileCount() throws -> Int { try store.blobs.allHashes().count }

    func inode(_ path: String) throws -> UInt64 {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return try XCTUnwrap((attrs[.systemFileNumber] as? NSNumber)?.uint64Value)
    }

    func sql<T>(_ body: (Database) throws -> T) throws -> T {
        try store.catalog.ownerWrite(body)
    }
}

/// Asserts that `body` throws an `ArtifactError` with `code`.
func XCTAssertArtifactError<T>(_ code: ArtifactError.Code, _ body: @autoclosure () throws -> T,
                               _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected ArtifactError(.\(code)) but nothing was thrown. \(message)", file: file, line: line)
    } catch let error as ArtifactError {
        XCTAssertEqual(error.code, code, "\(error) \(message)", file: file, line: line)
    } catch {
        XCTFail("expected ArtifactError(.\(code)), got \(error). \(message)", file: file, line: line)
    }
}

extension BlobStore {
    /// Paths of every temp file of the store: those in `tmp/` and the `.put-` files in the
    /// fan-out folders and `packs/` (what gc counts as leftovers).
    func tempFiles() -> [String] {
        var out = tempFilesInTmp() + packFilesOnDisk().temps
        for fan in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where fan.count == 2 {
            let folder = root + "/" + fan
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix(BlobStore.fanoutTempPrefix) {
                out.append(folder + "/" + name)
            }
        }
        return out
    }
}
