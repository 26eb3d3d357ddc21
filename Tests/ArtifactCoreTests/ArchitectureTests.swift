import Foundation
import XCTest

/// The module rules of STYLE.md that the compiler does not enforce, checked on the sources:
/// the catalog is the only door to its tables, and dependencies point one way.
final class ArchitectureTests: XCTestCase {
    /// `Sources/`, found from this file's place in the checkout.
    private let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// Every Swift file under `Sources/`, by path relative to it.
    private func swiftFiles() throws -> [(path: String, text: String)] {
        let e = try XCTUnwrap(FileManager.default.enumerator(atPath: sources.path))
        var out: [(String, String)] = []
        while let p = e.nextObject() as? String {
            guard p.hasSuffix(".swift") else { continue }
            out.append((p, try String(contentsOf: sources.appendingPathComponent(p), encoding: .utf8)))
        }
        XCTAssertGreaterThan(out.count, 40, "the sources were not found at \(sources.path)")
        return out
    }

    /// SQL and GRDB live in the catalog's folder, and in the pipeline's two files that own its
    /// tables; everyone else calls typed methods.
    func testOnlyTheCatalogAndTableOwnersSeeTheDatabase() throws {
        let owners = ["ArtifactCore/Catalog/", "ArtifactPipeline/JobQueue.swift", "ArtifactPipeline/PipelineTables.swift"]
        for (path, text) in try swiftFiles() where !owners.contains(where: { path.hasPrefix($0) }) {
            XCTAssertFalse(text.contains("import GRDB"), "\(path) imports GRDB; give the catalog a typed method instead")
            XCTAssertFalse(text.contains("ownerRead") || text.contains("ownerWrite"), "\(path) opens the catalog's database")
        }
    }

    /// The FUSE adapter never sees the pipeline; the core sees neither.
    func testDependenciesPointOneWay() throws {
        for (path, text) in try swiftFiles() {
            if path.hasPrefix("ArtifactFUSE/") || path.hasPrefix("ArtifactCore/") {
                XCTAssertFalse(text.contains("import ArtifactPipeline"), "\(path) imports the pipeline")
            }
            if path.hasPrefix("ArtifactCore/") {
                XCTAssertFalse(text.contains("import ArtifactFUSE") || text.contains("import CFuse3"), "\(path) imports FUSE")
            }
        }
    }
}
